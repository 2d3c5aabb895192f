"""What makes a new key's value appear once: one-time form tokens (a double submission creates
one key), the headers of a page that shows a key, and the address that page leaves in the
browser's history instead of the POST that made it."""

from __future__ import annotations

import hashlib
import secrets

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

_ISSUED = "keys_admin_nonces_issued"
_USED = "keys_admin_nonces_used"
_NONCES_KEPT = 50
_NONCE_TTL = 60 * 60 * 24
FORM_EXPIRED = "This form has expired. Check the key list, then submit this form once more."


def issue_form_nonce(request: HttpRequest) -> str:
    """A fresh token for a Generate/Rotate form, remembered in the user's session."""
    nonce = secrets.token_urlsafe(24)
    request.session[_ISSUED] = [*request.session.get(_ISSUED, [])[-(_NONCES_KEPT - 1) :], nonce]
    return nonce


def consume_form_nonce(request: HttpRequest, nonce: str) -> str:
    """Mark a token used *before* the key is created. Returns "ok", "used" or "unknown".

    The session records it for later submissions (reload, back button); ``cache.add`` is atomic,
    so two simultaneous submissions (double click) cannot both get "ok"."""
    used = request.session.get(_USED, [])
    if nonce in used:
        return "used"
    issued = request.session.get(_ISSUED, [])
    if nonce not in issued:
        return "unknown"
    digest = hashlib.sha256(nonce.encode()).hexdigest()
    if not cache.add(f"keys-admin-nonce:{digest}", 1, timeout=_NONCE_TTL):
        return "used"
    request.session[_ISSUED] = [n for n in issued if n != nonce]
    request.session[_USED] = [*used[-(_NONCES_KEPT - 1) :], nonce]
    request.session.save()
    return "ok"


def no_store(response: HttpResponse) -> HttpResponse:
    """Headers for a page that shows a key (or might have): never cached or framed. (Not
    ``Referrer-Policy: no-referrer``: Chromium then sends ``Origin: null`` and CSRF fails.)"""
    patch_cache_control(
        response, no_store=True, no_cache=True, must_revalidate=True, private=True, max_age=0
    )
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    response["X-Frame-Options"] = "DENY"
    return response
