'use strict';
// Permission matrix: row/column toggles, presets that fill the matrix, a live summary.
// The matrix is plain checkboxes, so the form works without this script.
(function () {
    function boxes(root, selector) {
        return Array.prototype.slice.call(root.querySelectorAll(selector));
    }

    function toggle(list) {
        // Permissions the person does not hold (disabled) are never ticked from here.
        list = list.filter(function (b) { return !b.disabled; });
        const allOn = list.every(function (b) { return b.checked; });
        list.forEach(function (b) { b.checked = !allOn; });
    }

    function current(widget) {
        const scopes = {};
        boxes(widget, 'tbody tr[data-module]').forEach(function (tr) {
            const actions = boxes(tr, 'td[data-action] input:checked').map(function (b) {
                return b.closest('td').dataset.action;
            });
            if (actions.length) { scopes[tr.dataset.module] = actions; }
        });
        return scopes;
    }

    function sameScopes(a, b) {
        const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
        if (ka.join() !== kb.join()) { return false; }
        return ka.every(function (m) { return a[m].slice().sort().join() === b[m].slice().sort().join(); });
    }

    function update(widget) {
        const all = boxes(widget, 'tbody input[type=checkbox]');
        const on = all.filter(function (b) { return b.checked; }).length;
        const summary = widget.querySelector('.scope-summary');
        if (summary) {
            // Calm on a fresh form; a warning only once the admin has emptied the matrix; and
            // nothing when the server already said it (its error is right above the matrix).
            const row = widget.closest('.form-row');
            const serverError = row && row.querySelector('.errorlist');
            const touched = widget.dataset.touched === 'yes';
            if (on > 0) {
                summary.textContent = on + ' of ' + all.length + ' permissions selected.';
            } else if (touched) {
                summary.textContent = 'No permission selected: a key needs at least one.';
            } else {
                summary.textContent = serverError ? '' : 'No permission selected yet.';
            }
            summary.classList.toggle('scope-summary--empty', on === 0 && touched);
        }
        const warning = widget.querySelector('.scope-full-warning');
        if (warning) { warning.hidden = !(all.length && on === all.length); }
        const scopes = current(widget);
        boxes(widget, 'button.scope-preset').forEach(function (btn) {
            btn.setAttribute('aria-pressed', String(sameScopes(scopes, JSON.parse(btn.dataset.scopes))));
        });
    }

    function apply(widget, scopes, capped) {
        // Presets and roles arrive capped by the ceiling; ``capped`` names what was left out.
        boxes(widget, 'tbody tr[data-module]').forEach(function (tr) {
            const granted = scopes[tr.dataset.module] || [];
            boxes(tr, 'td[data-action]').forEach(function (td) {
                const box = td.querySelector('input');
                if (!box.disabled) { box.checked = granted.indexOf(td.dataset.action) !== -1; }
            });
        });
        const note = widget.querySelector('.scope-capped-note');
        if (note) {
            note.textContent = capped
                ? 'Left out, because you do not hold it yourself: ' + capped + '.'
                : '';
            note.hidden = !capped;
        }
    }

    function init(widget) {
        widget.addEventListener('click', function (event) {
            const btn = event.target.closest('button');
            if (!btn || !widget.contains(btn)) { return; }
            if (btn.dataset.toggleRow) {
                toggle(boxes(widget, 'tr[data-module="' + btn.dataset.toggleRow + '"] input[type=checkbox]'));
            } else if (btn.dataset.toggleCol) {
                toggle(boxes(widget, 'tbody td[data-action="' + btn.dataset.toggleCol + '"] input[type=checkbox]'));
            } else if (btn.dataset.scopes !== undefined) {
                apply(widget, JSON.parse(btn.dataset.scopes), btn.dataset.capped);
            } else {
                return;
            }
            event.preventDefault();
            widget.dataset.touched = 'yes';
            update(widget);
        });
        widget.addEventListener('change', function (event) {
            const select = event.target.closest('select.scope-role-select');
            if (select && select.value) {
                const option = select.options[select.selectedIndex];
                apply(widget, JSON.parse(option.dataset.scopes), option.dataset.capped);
            }
            widget.dataset.touched = 'yes';
            update(widget);
        });
        update(widget);
    }

    function initExpiry() {
        // Typing a custom date selects "Custom date".
        const date = document.getElementById('id_expiry_date');
        const custom = document.querySelector('input[name="expiry_policy"][value="custom"]');
        if (date && custom) {
            date.addEventListener('input', function () { custom.checked = true; });
            date.addEventListener('focus', function () { custom.checked = true; });
        }
    }

    document.addEventListener('DOMContentLoaded', function () {
        boxes(document, '[data-scope-matrix]').forEach(init);
        initExpiry();
    });
    // Back/forward: the browser restores ticked boxes after the script ran (and a page from
    // the back/forward cache runs nothing at all): bring the hint in step with them.
    ['load', 'pageshow'].forEach(function (name) {
        window.addEventListener(name, function () {
            boxes(document, '[data-scope-matrix]').forEach(update);
        });
    });
})();
