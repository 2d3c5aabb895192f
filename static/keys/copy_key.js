'use strict';
// Show-once page: the Copy button, and select-all when the key field gets focus.
(function () {
    function legacyCopy(input) {
        input.focus();
        input.select();
        try { return document.execCommand('copy'); } catch (e) { return false; }
    }

    document.addEventListener('click', function (event) {
        const btn = event.target.closest('[data-copy-target]');
        if (!btn) { return; }
        const input = document.getElementById(btn.dataset.copyTarget);
        const status = document.getElementById(btn.dataset.copyStatus);
        function done(ok) {
            if (status) {
                status.textContent = ok
                    ? 'Copied to the clipboard. Paste it into the external system now.'
                    : 'Could not copy automatically: the key is selected, press Ctrl+C (⌘C on a Mac).';
            }
            if (ok) { btn.textContent = 'Copied'; }
        }
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(input.value).then(
                function () { done(true); },
                function () { done(legacyCopy(input)); }
            );
        } else {
            done(legacyCopy(input));
        }
    });

    // Leaving the page wipes the key from it, so a back/forward cache snapshot (which some
    // browsers keep even for no-store pages) cannot show it again.
    window.addEventListener('pagehide', function () {
        document.querySelectorAll('.key-once-input').forEach(function (input) {
            input.value = '';
            input.placeholder = 'The key is no longer displayed.';
        });
    });

    document.addEventListener('focusin', function (event) {
        if (event.target.classList && event.target.classList.contains('key-once-input')) {
            event.target.select();
        }
    });
})();
