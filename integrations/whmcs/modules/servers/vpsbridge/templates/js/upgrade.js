/*
 * vpsbridge for WHMCS - upgrade page: disks are never shrunk.
 *
 * hooks.php writes the rules vpsbridge computed (#vpsbridge-upgrade-disks: [{id, disabled, warning}])
 * for the configurable options of the service being upgraded. Each option's smaller choices are
 * disabled, in a <select> or as radio buttons named configoption[ID], and the warning is shown under
 * the option. A package change to a smaller disk is refused anyway; this stops the client paying first.
 */
(function () {
    'use strict';

    function rules() {
        var node = document.getElementById('vpsbridge-upgrade-disks');
        if (!node) {
            return [];
        }
        try {
            var parsed = JSON.parse(node.textContent || '[]');
            return Array.isArray(parsed) ? parsed : [];
        } catch (e) {
            return [];
        }
    }

    function apply(rule) {
        var name = 'configoption[' + rule.id + ']';
        var blocked = {};
        rule.disabled.forEach(function (id) { blocked[String(id)] = true; });
        var fields = document.querySelectorAll('[name="' + name + '"]');
        var anchor = null;
        Array.prototype.forEach.call(fields, function (field) {
            var choices = field.tagName === 'SELECT' ? Array.prototype.slice.call(field.options) : [field];
            choices.forEach(function (choice) {
                if (blocked[String(choice.value)]) {
                    choice.disabled = true;
                    choice.setAttribute('data-vpsbridge-disabled', '1');
                    if (choice.selected || choice.checked) {
                        choice.selected = false;
                        choice.checked = false;
                    }
                }
            });
            if (field.tagName === 'SELECT' && field.selectedIndex >= 0 && field.options[field.selectedIndex].disabled) {
                var first = Array.prototype.filter.call(field.options, function (o) { return !o.disabled; })[0];
                if (first) {
                    field.value = first.value;
                }
            }
            anchor = field.tagName === 'SELECT' ? field : (field.closest('label') || field);
        });
        if (!anchor || !rule.warning) {
            return;
        }
        var note = document.createElement('div');
        note.className = 'alert alert-warning vpsbridge-disk-warning';
        note.setAttribute('data-option', String(rule.id));
        note.textContent = rule.warning;
        anchor.parentNode.insertBefore(note, anchor.nextSibling);
    }

    function run() {
        rules().forEach(apply);
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', run);
    } else {
        run();
    }
})();
