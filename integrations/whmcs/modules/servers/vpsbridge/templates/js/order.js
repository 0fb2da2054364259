/* vpsbridge order form helpers (configure-product page).
 * Fills the "Initial Operating System" and "Initial SSH Key" custom fields from a searchable OS
 * gallery and a key picker (saved key, pasted key, or an Ed25519 key generated in the browser with
 * Web Crypto - the private key never leaves the browser), and adds range sliders to numeric
 * configurable options. Data comes from vpsbridge through the ClientAreaFooterOutput hook. */
(function () {
  'use strict';
  var node = document.getElementById('vpsbridge-order-config');
  if (!node) { return; }
  var config = JSON.parse(node.textContent || '{}');

  function field(id) { return id ? document.querySelector('[name="customfield[' + id + ']"]') : null; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }

  // --- OS gallery ---------------------------------------------------------------------------
  var osInput = field(config.osFieldId);
  if (osInput) {
    var box = el('div', { 'class': 'vpsbridge-os-gallery' });
    if (config.error) { box.appendChild(el('p', { 'class': 'vpsbridge-error' }, config.error)); }
    var search = el('input', { type: 'search', 'class': 'vpsbridge-os-search form-control', placeholder: 'Search operating systems', 'aria-label': 'Search operating systems' });
    var grid = el('div', { 'class': 'vpsbridge-os-grid', role: 'list' });
    (config.templates || []).forEach(function (t) {
      // Panels often put the version in the name already ("AlmaLinux 9 Minimal"): do not repeat it.
      var label = t.name + (t.version && t.name.indexOf(String(t.version)) < 0 ? ' ' + t.version : '');
      var b = el('button', { type: 'button', 'class': 'vpsbridge-os', 'data-id': String(t.id), 'data-search': label.toLowerCase(), 'aria-pressed': String(String(t.id) === osInput.value), role: 'listitem' }, label);
      b.addEventListener('click', function () {
        osInput.value = String(t.id);
        grid.querySelectorAll('.vpsbridge-os').forEach(function (o) { o.setAttribute('aria-pressed', String(o === b)); });
      });
      grid.appendChild(b);
    });
    search.addEventListener('input', function () {
      var q = search.value.trim().toLowerCase();
      grid.querySelectorAll('.vpsbridge-os').forEach(function (o) { o.hidden = q !== '' && o.getAttribute('data-search').indexOf(q) === -1; });
    });
    box.appendChild(search);
    box.appendChild(grid);
    osInput.type = 'hidden';
    osInput.parentNode.insertBefore(box, osInput);
  }

  // --- SSH key picker -----------------------------------------------------------------------
  var keyInput = field(config.keyFieldId);
  if (keyInput) {
    var keys = el('div', { 'class': 'vpsbridge-keys' });
    var select = el('select', { 'class': 'form-control', 'aria-label': 'SSH key' });
    select.appendChild(el('option', { value: '' }, 'No SSH key (password login)'));
    (config.sshKeys || []).forEach(function (k) { select.appendChild(el('option', { value: String(k.id) }, k.name)); });
    select.appendChild(el('option', { value: '__paste' }, 'Paste a public key'));
    if (window.crypto && window.crypto.subtle) {
      select.appendChild(el('option', { value: '__generate' }, 'Generate a new Ed25519 key'));
    }
    var paste = el('textarea', { rows: '3', hidden: 'hidden', placeholder: 'ssh-ed25519 AAAA... you@example' });
    var note = el('p', { hidden: 'hidden' });
    select.addEventListener('change', function () {
      paste.hidden = select.value !== '__paste';
      note.hidden = true;
      if (select.value === '__generate') { generate(); } else if (select.value !== '__paste') { keyInput.value = select.value; }
    });
    paste.addEventListener('input', function () { keyInput.value = paste.value.trim(); });
    keys.appendChild(select);
    keys.appendChild(paste);
    keys.appendChild(note);
    keyInput.type = 'hidden';
    keyInput.parentNode.insertBefore(keys, keyInput);

    function b64(bytes) { var s = ''; bytes.forEach(function (c) { s += String.fromCharCode(c); }); return btoa(s); }
    function sshString(bytes) {
      var out = new Uint8Array(4 + bytes.length);
      new DataView(out.buffer).setUint32(0, bytes.length);
      out.set(bytes, 4);
      return out;
    }
    function generate() {
      window.crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']).then(function (pair) {
        return Promise.all([
          window.crypto.subtle.exportKey('raw', pair.publicKey),
          window.crypto.subtle.exportKey('pkcs8', pair.privateKey)
        ]);
      }).then(function (exported) {
        var type = new TextEncoder().encode('ssh-ed25519');
        var a = sshString(type), b = sshString(new Uint8Array(exported[0]));
        var blob = new Uint8Array(a.length + b.length); blob.set(a, 0); blob.set(b, a.length);
        keyInput.value = 'ssh-ed25519 ' + b64(blob) + ' generated-at-order';
        var pem = '-----BEGIN PRIVATE KEY-----\n' + b64(new Uint8Array(exported[1])).replace(/(.{64})/g, '$1\n') + '\n-----END PRIVATE KEY-----\n';
        var link = el('a', { href: URL.createObjectURL(new Blob([pem], { type: 'application/x-pem-file' })), download: 'vps-ed25519.pem' }, 'Download your private key now');
        note.textContent = 'A new key pair was created in your browser. The private key is not sent anywhere: ';
        note.appendChild(link);
        note.hidden = false;
      }).catch(function () {
        note.textContent = 'This browser cannot generate Ed25519 keys; paste a public key instead.';
        note.hidden = false;
        select.value = '__paste';
        paste.hidden = false;
      });
    }
  }

  // --- sliders for numeric configurable options -----------------------------------------------
  var wanted = (config.sliders || []).map(function (s) { return s.toLowerCase(); });
  document.querySelectorAll('select[name^="configoption["]').forEach(function (sel) {
    var label = document.querySelector('label[for="' + sel.id + '"]');
    var name = label ? label.textContent.split('|')[0].trim().toLowerCase() : '';
    if (wanted.indexOf(name) === -1 || sel.options.length < 2) { return; }
    var range = el('input', { type: 'range', min: '0', max: String(sel.options.length - 1), step: '1', 'class': 'vpsbridge-slider', 'aria-label': name });
    range.value = String(sel.selectedIndex);
    range.addEventListener('input', function () { sel.selectedIndex = Number(range.value); sel.dispatchEvent(new Event('change', { bubbles: true })); });
    sel.addEventListener('change', function () { range.value = String(sel.selectedIndex); });
    sel.parentNode.insertBefore(range, sel);
  });
})();
