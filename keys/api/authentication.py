"""DRF authentication: an API key from the request headers -> (principal, key), or 401.

The shape of django-rest-knox's ``knox/auth.py``: the header gives a credential, the credential
a key (``lookup``), the key a principal, and ``authenticate_header`` makes failures 401s.
Cost on the hot path: header parsing and the checksum are checked in memory (a malformed key
never reaches the database); then the key comes from the lookup (the key cache, or one indexed
query); then one HMAC and a constant-time compare. Nothing is written. The per-key rules
(browser use, IP allowlist, rate limit) and the per-IP failure gate are ``protections``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl

from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from crm_keys.net import client_ip, limiter_bucket

from .. import crypto
from ..models import APIKey, KeyStatus
from .lookup import lookup
from .protections import MSG_TOO_MANY_FAILURES, enforce_key_rules, failures

# Longest header value we look at; anything longer cannot be a key (56 chars) and is refused
# without further work.
MAX_CREDENTIAL_LENGTH = 256
KEY_PARAM_NAMES = frozenset(
    {"api_key", "apikey", "api-key", "key", "access_token", "token", "x-api-key"}
)

MSG_MISSING = (
    "No API key provided. Send it in the 'Authorization: Bearer <key>' header "
    "or the 'X-API-Key: <key>' header."
)
MSG_IN_URL = (
    "API keys are not accepted in the URL or the request body, where they end up in logs. "
    "Send the key in the 'Authorization: Bearer <key>' or 'X-API-Key: <key>' header."
)
MSG_SCHEME = (
    "Unsupported authorization scheme. Use 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
)
MSG_EMPTY = "The API key is empty."
MSG_MALFORMED = "Malformed API key: expected the form icrm_<public id>_<secret>."
MSG_CHECKSUM = "Invalid API key: its checksum does not match (mistyped or truncated key)."
MSG_AMBIGUOUS = "Two different API keys were sent (Authorization and X-API-Key). Send exactly one."
MSG_UNKNOWN = "Invalid API key: no such key."
MSG_REVOKED = "This API key has been revoked."
MSG_EXPIRED = "This API key expired on {when}."
MSG_GRACE_ENDED = "This API key was replaced by rotation; its grace period ended on {when}."


class KeyPrincipal:
    """``request.user`` for a key-authenticated request: the integration, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, key: APIKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"api-key:{self.key.public_id}"


def _refuse(message: str, code: str) -> AuthenticationFailed:
    return AuthenticationFailed(detail=message, code=code)


def _key_in_url_or_body(request: HttpRequest) -> bool:
    query = request.META.get("QUERY_STRING", "")
    if query and (
        crypto.hides_key(query) or any(name.lower() in KEY_PARAM_NAMES for name in request.GET)
    ):
        return True
    if not request.META.get("CONTENT_LENGTH"):
        return False
    # Read the raw body (cached by Django), not request.POST or request.data: a key-shaped value
    # is refused before anything is parsed into data, whatever the content type (a key in a JSON
    # field would otherwise be stored and exported). Parsing a form here would also leave DRF
    # an empty stream and turn a clear 415 into a confusing 400.
    try:
        body = request.body
    except Exception:  # an unreadable or oversized body is DRF's to refuse
        return False
    if _body_hides_key(body):
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        names = {
            name.lower() for name, _ in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        }
        return bool(names & KEY_PARAM_NAMES)
    if content_type.startswith("multipart/form-data"):
        return any(f'name="{name}"'.encode() in body.lower() for name in KEY_PARAM_NAMES)
    return False


# JSON string escapes: "\u005f" is "_" once parsed, "\/" is "/".
_JSON_ESCAPE_RE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\(.)")


def _body_hides_key(body: bytes) -> bool:
    """A key's shape in the body as sent, JSON-unescaped, or percent-decoded (once or twice)."""
    if not body:
        return False
    if crypto.looks_like_key(body):
        return True
    if b"\\" not in body and b"%" not in body and b"+" not in body:
        return False  # nothing that could hide one: the common case costs one search
    text = body.decode("utf-8", "replace")
    if "\\" in text:
        text = _JSON_ESCAPE_RE.sub(
            lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), text
        )
    return crypto.hides_key(text)


def credential_from_headers(request: HttpRequest) -> str | None:
    """The key the client sent, or None when it sent none. Raises AuthenticationFailed for a
    credential that is present but unusable (wrong scheme, empty, too long, two keys)."""
    meta = request.META
    authorization = meta.get("HTTP_AUTHORIZATION")
    header_key = meta.get("HTTP_X_API_KEY")
    bearer = None
    if authorization is not None:
        if len(authorization) > MAX_CREDENTIAL_LENGTH:
            raise _refuse(MSG_MALFORMED, "malformed")
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110 §11.1)
            if header_key is None:
                raise _refuse(MSG_SCHEME, "unsupported_scheme")
        else:
            bearer = value.strip()
            if not bearer:
                raise _refuse(MSG_EMPTY, "empty")
    if header_key is not None:
        if len(header_key) > MAX_CREDENTIAL_LENGTH:
            raise _refuse(MSG_MALFORMED, "malformed")
        header_key = header_key.strip()
        if not header_key:
            raise _refuse(MSG_EMPTY, "empty")
        if bearer is not None and bearer != header_key:
            raise _refuse(MSG_AMBIGUOUS, "ambiguous")
    return bearer if bearer is not None else header_key


def refusal_for_status(key: APIKey, now: Any) -> AuthenticationFailed | None:
    status = key.status_at(now)
    if status == KeyStatus.ACTIVE:
        return None
    if status == KeyStatus.EXPIRED:
        # As the admin and the CLI show it: "2027-01-15, end of day UTC" for a chosen date.
        return _refuse(MSG_EXPIRED.format(when=key.expiry_text()), "expired")
    if key.revoked_at is None or (
        key.grace_ends_at is not None and key.grace_ends_at <= key.revoked_at
    ):
        return _refuse(MSG_GRACE_ENDED.format(when=_when(key.grace_ends_at)), "grace_ended")
    return _refuse(MSG_REVOKED, "revoked")


def _when(moment: Any) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _check_credential(request: HttpRequest) -> APIKey | None:
    if "HTTP_AUTHORIZATION" in request.META or "HTTP_X_API_KEY" in request.META:
        request.api_key_presented = True  # counted in usage even when unusable (empty, too long)
    raw = credential_from_headers(request)
    if raw is None:
        if _key_in_url_or_body(request):
            request.api_key_presented = True
            raise _refuse(MSG_IN_URL, "key_in_url")
        return None
    request.api_key_presented = True
    if _key_in_url_or_body(request):
        raise _refuse(MSG_IN_URL, "key_in_url")
    try:
        public_id = crypto.parse_key(raw)
    except crypto.KeyFormatError as exc:
        raise _refuse(
            MSG_CHECKSUM if exc.reason == "checksum" else MSG_MALFORMED, exc.reason
        ) from None
    key = lookup(public_id)
    # An unknown id does the same work as a wrong secret, so timing tells them apart no better
    # than the (identical) response does. Only after the secret matched may we say more.
    matched = crypto.key_matches(raw, key.key_hash if key is not None else crypto.DUMMY_HASH)
    if key is None or not matched:
        raise _refuse(MSG_UNKNOWN, "unknown")
    request.api_key = key
    if time.time() >= key.works_until:  # revoked, expired or out of grace: say which
        refusal = refusal_for_status(key, timezone.now())
        if refusal is not None:
            raise refusal
    return key


def authenticate_request(request: HttpRequest) -> APIKey | None:
    """The whole check, usable outside DRF. Returns the key, None for no credential, or raises
    (401 AuthenticationFailed, 403 PermissionDenied, 429 Throttled). Sets ``request.api_key``
    once the secret matched (even for a revoked or expired key) so usage is counted for it, and
    ``request.api_key_presented`` when any credential was sent.

    A client address with too many failed attempts is refused before any key lookup, unless
    the key was already seen to work from that address (``protections.FailureGate``)."""
    ip = client_ip(request)
    request.api_client_ip = ip or ""  # the usage recorder names the key's client by it
    bucket = limiter_bucket(ip)
    wait = failures.retry_after(bucket)
    if wait is not None and not _known_good(request, bucket):
        request.api_key_presented = True
        raise Throttled(wait=wait, detail=MSG_TOO_MANY_FAILURES)
    try:
        key = _check_credential(request)
    except AuthenticationFailed:
        wait = failures.record_failure(bucket)
        matched = getattr(request, "api_key", None)
        if matched is not None:
            # The right secret, but revoked or expired: no longer good from here, and the
            # caller (who holds the key) is told why rather than "too many failures".
            failures.forget(bucket, matched.public_id)
            raise
        if wait is not None:
            raise Throttled(wait=wait, detail=MSG_TOO_MANY_FAILURES) from None
        raise
    if key is not None:
        enforce_key_rules(request, key, ip)
        failures.remember_good(bucket, key)
    return key


def _known_good(request: HttpRequest, bucket: str) -> bool:
    """While the address is throttled: is this exactly a key seen to work from it? In memory
    only (header parsing, checksum, one HMAC): no lookup for anything else."""
    try:
        raw = credential_from_headers(request)
        if raw is None:
            return False
        return failures.is_known_good(bucket, crypto.parse_key(raw), raw)
    except (AuthenticationFailed, crypto.KeyFormatError):
        return False


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[KeyPrincipal, APIKey] | None:
        key = authenticate_request(request._request)
        if key is None:
            return None
        return KeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
