/* vpsbridge "Add credit" form (client area product overview).
 * Posts the amount to client.php (same origin, so the session cookie and Origin check apply) and
 * shows the invoice vpsbridge raised for it; the credit reaches the panel once that invoice is paid.
 * Everything shown is set as text, never as HTML. */
(function () {
  'use strict';
  var form = document.getElementById('vpsbridge-credit');
  if (!form || !window.fetch || !window.FormData) { return; }
  var out = form.querySelector('.vpsbridge-credit-result');
  var button = form.querySelector('button[type="submit"]');

  function show(text, invoiceId) {
    out.textContent = text;
    if (invoiceId) {
      out.appendChild(document.createTextNode(' '));
      var link = document.createElement('a');
      link.href = 'viewinvoice.php?id=' + invoiceId;
      link.textContent = 'Pay invoice #' + invoiceId;
      out.appendChild(link);
    }
    out.hidden = false;
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var data = new FormData(form);
    data.delete('go');
    button.disabled = true;
    fetch(form.action, { method: 'POST', body: data, credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        var invoiceId = body && body.invoice_id ? parseInt(body.invoice_id, 10) : 0;
        if (body && body.ok && invoiceId > 0) {
          show('Invoice #' + invoiceId + ' was created; the credit is added once it is paid.', invoiceId);
        } else {
          show((body && body.error) ? String(body.error) : 'The credit could not be requested.', 0);
        }
      })
      .catch(function () { show('The credit could not be requested right now.', 0); })
      .then(function () { button.disabled = false; });
  });
})();
