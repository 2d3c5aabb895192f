'use strict';
// Admin searches: a full API key pasted into the search box is cut back to its public id
// before the search leaves the browser, so the secret never reaches the address bar, the
// history or a server log. (The server redirects any URL that still carries one.)
(function () {
    const FULL_KEY = /icrm_([0-9A-Za-z]{12})_[0-9A-Za-z]*/g;

    // A key pasted percent-encoded (icrm%5F…, even twice over) is a full key too.
    function decoded(text) {
        for (let round = 0; round < 5 && text.indexOf('%') !== -1; round++) {
            let next;
            try { next = decodeURIComponent(text); } catch (e) { break; }
            if (next === text) { break; }
            text = next;
        }
        return text;
    }

    function strip(input) {
        let cleaned = input.value.replace(FULL_KEY, 'icrm_$1');
        const plain = decoded(cleaned);
        if (plain.replace(FULL_KEY, 'icrm_$1') !== plain) {
            cleaned = plain.replace(FULL_KEY, 'icrm_$1');
        }
        if (cleaned === input.value) { return false; }
        input.value = cleaned;
        return true;
    }

    function warn(form) {
        if (form.querySelector('.key-search-guard')) { return; }
        const home = document.querySelector('#site-name a');
        const leaked = (home ? home.getAttribute('href') : '/admin/') + 'keys/apikey/revoke-leaked/';
        const note = document.createElement('p');
        note.className = 'key-search-guard help';
        note.setAttribute('role', 'status');
        note.append('That was a full API key: only its public id is searched, so the secret stays ' +
            'out of the address bar, the history and the logs. If it leaked, ');
        const link = document.createElement('a');
        link.href = leaked;
        link.textContent = 'revoke it by its value';
        note.append(link, '.');
        form.append(note);
    }

    document.addEventListener('DOMContentLoaded', function () {
        const form = document.getElementById('changelist-search');
        const input = document.getElementById('searchbar');
        if (!form || !input) { return; }
        input.addEventListener('paste', function () {
            // After the paste has landed in the box.
            setTimeout(function () { if (strip(input)) { warn(form); } }, 0);
        });
        input.addEventListener('input', function () { if (strip(input)) { warn(form); } });
        form.addEventListener('submit', function () { if (strip(input)) { warn(form); } });
    });
})();
