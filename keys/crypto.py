"""Key material: make a key, check its format and checksum, hash it.

No database, and no settings read at import: the pepper is read on first use, and again after
a settings change.

Format: ``icrm_<public_id>_<secret><checksum>``
  public_id  12 chars of [0-9A-Za-z], stored in clear, identifies the key
  secret     32 chars of [0-9A-Za-z] from ``secrets`` (~190 bits)
  checksum   6 chars: CRC32 (unsigned) of everything before it, base62, left-padded with "0"
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, unquote_plus

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import key_settings

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "icrm"
PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + 1 + PUBLIC_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH  # 56

_KEY_RE = re.compile(
    rf"{PREFIX}_([0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}})"
)
_PUBLIC_ID_RE = re.compile(rf"[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}}")


class KeyFormatError(ValueError):
    """The string is not a well-formed key. ``reason`` is "malformed" or "checksum"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NewKey:
    full: str
    public_id: str

    def __repr__(self) -> str:  # never let the secret reach a log through repr()
        return f"NewKey(public_id={self.public_id!r})"


def _random_string(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def base62(number: int, width: int) -> str:
    """``number`` in base62 (0-9, A-Z, a-z), left-padded with "0" to ``width``."""
    if number < 0:
        raise ValueError("base62 takes a non-negative number")
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")


# Every two-digit base62 string, by value: the checksum is three lookups, not a digit loop (it
# runs on every request; 62**6 > 2**32, so six digits always hold a CRC32).
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
_PAIR = len(_PAIRS)  # 62**2


def checksum(body: str) -> str:
    """CRC32 (unsigned) of ``body`` as 6 base62 characters (``base62(crc, 6)``)."""
    high, low = divmod(zlib.crc32(body.encode("ascii")), _PAIR * _PAIR)
    middle, low = divmod(low, _PAIR)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def new_public_id() -> str:
    return _random_string(PUBLIC_ID_LENGTH)


def make_key(public_id: str | None = None) -> NewKey:
    """A fresh key. ``public_id`` may be given (the caller retries on a collision)."""
    public_id = public_id or new_public_id()
    if not _PUBLIC_ID_RE.fullmatch(public_id):
        raise ValueError("public_id must be 12 characters of [0-9A-Za-z]")
    body = f"{PREFIX}_{public_id}_{_random_string(SECRET_LENGTH)}"
    return NewKey(full=body + checksum(body), public_id=public_id)


def parse_key(raw: str) -> str:
    """Check format and checksum without any I/O; return the public id or raise KeyFormatError."""
    if len(raw) != KEY_LENGTH:
        raise KeyFormatError("malformed")
    match = _KEY_RE.fullmatch(raw)
    if match is None:
        raise KeyFormatError("malformed")
    if not hmac.compare_digest(raw[-CHECKSUM_LENGTH:], checksum(raw[:-CHECKSUM_LENGTH])):
        raise KeyFormatError("checksum")
    return match.group(1)


_KEY_SHAPE_RE = re.compile(
    rf"{PREFIX}_[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}}_[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}"
)
_KEY_SHAPE_BYTES_RE = re.compile(_KEY_SHAPE_RE.pattern.encode())


_KEY_TOKEN_RE = re.compile(rf"(?<![0-9A-Za-z_]){_KEY_SHAPE_RE.pattern}(?![0-9A-Za-z_])")


def key_tokens(text: str) -> list[str]:
    """The distinct key-shaped tokens in pasted text (``Bearer icrm_…``, ``X-API-Key: icrm_…``,
    a log line), in order, checksum or not. A run of key characters longer than a key is no
    key: its edges are unknown."""
    return list(dict.fromkeys(_KEY_TOKEN_RE.findall(text)))


def looks_like_key(value: str | bytes) -> bool:
    """True when ``value`` contains something with the shape of one of our keys (checksum or
    not: a mistyped key is still a leaked one), for refusing keys sent where they do not
    belong, e.g. the query string. Mere text with the ``icrm_`` prefix is not a key."""
    if isinstance(value, bytes):
        return _KEY_SHAPE_BYTES_RE.search(value) is not None
    return _KEY_SHAPE_RE.search(value) is not None


def hides_key(text: str, *, decodings: int = 2) -> bool:
    """``looks_like_key`` of ``text`` or of what up to ``decodings`` rounds of URL decoding
    make of it (``icrm%5F…``, every byte encoded, encoded twice): for URLs."""
    for _ in range(decodings + 1):
        if looks_like_key(text):
            return True
        if "%" not in text and "+" not in text:
            return False
        text = unquote_plus(text)
    return False


def _pepper() -> bytes:
    # Read when called, never at import. Without a pepper of its own, SECRET_KEY serves.
    return (key_settings.PEPPER or settings.SECRET_KEY).encode()


@lru_cache(maxsize=8)
def _keyed(pepper: bytes) -> hmac.HMAC:
    """HMAC-SHA256 already keyed with ``pepper``: each hash copies it (``HMAC.copy``, as the
    standard library suggests for digests sharing a prefix) rather than keying a new one, which
    costs OpenSSL a digest lookup by name and two contexts per request."""
    return hmac.new(pepper, digestmod=hashlib.sha256)


# Keyed with the configured pepper on first use; forgotten when the settings change (tests).
# Reading the pepper from the settings on every request cost a third of the hash.
_configured: hmac.HMAC | None = None


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: object) -> None:
    global _configured
    if setting in ("API_KEYS", "SECRET_KEY"):
        _configured = None


def hash_key(full: str, *, pepper: bytes | None = None) -> str:
    """HMAC-SHA256 of the full key under the server-side pepper, as 64 hex characters."""
    global _configured
    if pepper is not None:
        mac = _keyed(pepper).copy()
    else:
        if _configured is None:
            _configured = _keyed(_pepper())
        mac = _configured.copy()
    mac.update(full.encode())
    return mac.hexdigest()


def key_matches(full: str, stored_hash: str, *, pepper: bytes | None = None) -> bool:
    """Constant-time comparison of ``full``'s hash with ``stored_hash``."""
    return hmac.compare_digest(hash_key(full, pepper=pepper), stored_hash)


# Compared against when the public id is unknown, so an unknown id costs the same work as a
# wrong secret and the two cannot be told apart by timing.
DUMMY_HASH = "0" * 64


def public_id_from_ref(text: str) -> str:
    """What an admin pastes -> the public id: ``icrm_<public id>…`` (display form), a full key,
    or the bare public id. Anything else comes back stripped, unchanged."""
    text = text.strip().rstrip("…").removesuffix("...")
    if text.startswith(f"{PREFIX}_"):
        text = text[len(PREFIX) + 1 :].split("_", 1)[0]
    return text


def is_public_id(text: str) -> bool:
    return _PUBLIC_ID_RE.fullmatch(text) is not None


# A full key, or anything shaped like its start: icrm_<public id>_<secret…>.
_SECRET_AFTER_ID_RE = re.compile(rf"{PREFIX}_([0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})_[0-9A-Za-z]*")


# A run of characters that may be a key written in percent-encoding (once or more: "%255F" is
# "%5F" once decoded). The shortest thing ``strip_secrets`` cuts, "icrm_<public id>_", is 18.
_ENCODED_RUN_RE = re.compile(r"[0-9A-Za-z_%]{18,}")
_DECODE_ROUNDS = 5


def percent_decoded(text: str) -> str:
    """``text`` percent-decoded until nothing changes (at most a few rounds): what a string
    written once, twice or more in a URL decodes to."""
    for _ in range(_DECODE_ROUNDS):
        if "%" not in text:
            break
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def strip_secrets(text: str, *, marker: str = "…") -> str:
    """``text`` with every ``icrm_<public id>_<secret>`` cut back to ``icrm_<public id>`` plus
    ``marker``: what may be shown of a key in a URL or a log line. A key written
    percent-encoded (``icrm%5F…``, every character, twice over) is found too: the run holding
    it is replaced by its decoded, cut-back form."""

    def cut(decoded: str) -> str:
        return _SECRET_AFTER_ID_RE.sub(lambda m: f"{PREFIX}_{m.group(1)}{marker}", decoded)

    text = cut(text)
    if "%" not in text:
        return text

    def cut_run(match: re.Match[str]) -> str:
        run = match.group(0)
        cleaned = cut(percent_decoded(run))
        return cleaned if cleaned != percent_decoded(run) else run

    return _ENCODED_RUN_RE.sub(cut_run, text)


def holds_secret(text: str) -> bool:
    """True when ``text`` holds a key's secret, written plainly or percent-encoded."""
    return strip_secrets(text) != text


def display_id(public_id: str) -> str:
    """How admins and logs name a key: ``icrm_<public_id>…``."""
    return f"{PREFIX}_{public_id}…"
