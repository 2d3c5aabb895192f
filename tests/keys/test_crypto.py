import hashlib
import hmac
import re
import zlib
from typing import Any

import pytest

from keys import crypto


def test_key_has_the_documented_format():
    new = crypto.make_key()
    assert re.fullmatch(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}", new.full)
    assert new.full.split("_")[1] == new.public_id
    assert len(new.full) == crypto.KEY_LENGTH == 56


def test_checksum_is_base62_crc32_of_everything_before_it():
    new = crypto.make_key()
    body, check = new.full[:-6], new.full[-6:]
    value = zlib.crc32(body.encode()) & 0xFFFFFFFF
    decoded = 0
    for ch in check:
        decoded = decoded * 62 + crypto.ALPHABET.index(ch)
    assert decoded == value


@pytest.mark.parametrize(
    ("number", "expected"), [(0, "000000"), (61, "00000z"), (62, "000010"), (2**32 - 1, "4gfFC3")]
)
def test_base62_alphabet_order_and_padding(number, expected):
    assert crypto.base62(number, 6) == expected


@pytest.mark.parametrize("crc", [0, 61, 62, 3843, 3844, 62**4 - 1, 62**4, 62**5, 2**31, 2**32 - 1])
def test_checksum_is_base62_of_the_crc_at_every_digit_boundary(crc, monkeypatch):
    monkeypatch.setattr(crypto.zlib, "crc32", lambda data: crc)
    assert crypto.checksum("icrm_anything") == crypto.base62(crc, 6)


def test_checksum_matches_the_digit_by_digit_encoding_for_many_keys():
    for _ in range(2000):
        body = crypto.make_key().full[:-6]
        assert crypto.checksum(body) == crypto.base62(zlib.crc32(body.encode()), 6)


def test_parse_accepts_a_fresh_key_and_returns_its_public_id():
    new = crypto.make_key()
    assert crypto.parse_key(new.full) == new.public_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1],
        lambda k: k + "a",
        lambda k: k.replace("icrm_", "ICRM_"),
        lambda k: k.replace("_", "-"),
        lambda k: "x" * 56,
        lambda k: k[:20] + "é" + k[21:],
        lambda k: "",
    ],
)
def test_parse_refuses_malformed(mangle):
    with pytest.raises(crypto.KeyFormatError) as exc:
        crypto.parse_key(mangle(crypto.make_key().full))
    assert exc.value.reason == "malformed"


def test_one_changed_character_fails_the_checksum():
    full = crypto.make_key().full
    i = 30
    changed = full[:i] + ("A" if full[i] != "A" else "B") + full[i + 1 :]
    with pytest.raises(crypto.KeyFormatError) as exc:
        crypto.parse_key(changed)
    assert exc.value.reason == "checksum"


def test_hash_is_keyed_by_the_pepper():
    full = crypto.make_key().full
    h1 = crypto.hash_key(full, pepper=b"one")
    assert len(h1) == 64
    assert h1 != crypto.hash_key(full, pepper=b"two")
    assert crypto.key_matches(full, h1, pepper=b"one")
    assert not crypto.key_matches(full, h1, pepper=b"two")


@pytest.mark.parametrize(
    "pepper", [b"", b"p", b"x" * 64, b"y" * 65, b"z" * 500, "p\u00e9pper \U0001f511".encode()]
)
def test_hash_is_hmac_sha256_of_the_key_under_the_pepper(pepper):
    full = crypto.make_key().full
    expected = hmac.new(pepper, full.encode(), hashlib.sha256).hexdigest()
    assert crypto.hash_key(full, pepper=pepper) == expected
    assert crypto.hash_key(full, pepper=pepper) == expected  # the keyed state is not consumed


def test_hash_follows_a_changed_pepper_setting(settings):
    full = crypto.make_key().full
    settings.API_KEYS = {**settings.API_KEYS, "PEPPER": "first pepper"}
    first = crypto.hash_key(full)
    assert first == hmac.new(b"first pepper", full.encode(), hashlib.sha256).hexdigest()
    settings.API_KEYS = {**settings.API_KEYS, "PEPPER": "second pepper"}
    assert (
        crypto.hash_key(full)
        == hmac.new(b"second pepper", full.encode(), hashlib.sha256).hexdigest()
    )


def test_repr_never_shows_the_secret():
    new = crypto.make_key()
    assert new.full not in repr(new)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABCDEFGHIJKL", "ABCDEFGHIJKL"),
        (" icrm_ABCDEFGHIJKL… ", "ABCDEFGHIJKL"),
        ("icrm_ABCDEFGHIJKL...", "ABCDEFGHIJKL"),
        ("icrm_ABCDEFGHIJKL_" + "s" * 38, "ABCDEFGHIJKL"),
        ("Website form", "Website form"),
    ],
)
def test_public_id_from_what_an_admin_pastes(text, expected):
    assert crypto.public_id_from_ref(text) == expected


@pytest.mark.parametrize(
    "written",
    [
        lambda k: k,
        lambda k: k.replace("_", "%5F"),
        lambda k: k.replace("_", "%5f"),
        lambda k: "".join(f"%{ord(c):02x}" for c in k),
        lambda k: k.replace("_", "%255F"),
        lambda k: "%2569crm" + k[4:],
    ],
)
def test_strip_secrets_finds_a_key_however_it_is_percent_encoded(written: Any) -> None:
    full = crypto.make_key().full
    public_id = crypto.parse_key(full)
    text = f"GET /admin/?q={written(full)}&o=1 HTTP/1.1"
    cleaned = crypto.strip_secrets(text)
    assert cleaned == f"GET /admin/?q=icrm_{public_id}…&o=1 HTTP/1.1"
    assert crypto.holds_secret(text) and not crypto.holds_secret(cleaned)


def test_strip_secrets_leaves_other_encoded_text_alone() -> None:
    text = "GET /admin/?q=caf%C3%A9%20icrm_&name=100%25 HTTP/1.1"
    assert crypto.strip_secrets(text) == text and not crypto.holds_secret(text)
