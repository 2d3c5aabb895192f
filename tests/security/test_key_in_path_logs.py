"""A key sent in the URL path (by mistake, or percent-encoded to slip past a filter) is refused
with a 401 saying why, and its secret reaches no log: not gunicorn's access or error log, not
runserver's access log, not any line through our logging filter."""

from __future__ import annotations

import logging
from urllib.parse import unquote

import pytest

from crm_keys.redact import RedactKeysFilter, redact
from keys import crypto
from tests.helpers import gunicorn, http


def _forms(key: str) -> list[str]:
    every_byte = "".join(f"%{b:02X}" for b in key.encode())
    return [
        key,
        key.replace("_", "%5F"),
        key.replace("_", "%5f"),
        every_byte,
        every_byte.replace("%", "%25"),  # encoded twice
    ]


def _unhidden(text: str) -> str:
    """What a reader of the log can recover: the text decoded up to three times."""
    out = [text]
    for _ in range(3):
        out.append(unquote(out[-1]))
    return "\n".join(out)


@pytest.mark.django_db(transaction=True)
def test_a_key_in_the_path_is_refused_and_redacted_from_gunicorns_logs(tmp_path):
    leaked = crypto.make_key().full
    secret = leaked.split("_", 2)[2]
    public_id = crypto.parse_key(leaked)
    with gunicorn(tmp_path) as base:
        for form in _forms(leaked):
            for path in (
                f"/api/v1/contacts/{form}/",
                f"/api/{form}",
                f"/api/v1/contacts/?q={form}",
            ):
                status, body = http(base, path)
                assert status == 401, (path, body)
                assert b"not accepted in the URL" in body
    logs = "\n".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert public_id in logs  # the lines are still there, naming the key by its public id
    assert secret not in _unhidden(logs)
    assert secret[:16] not in _unhidden(logs)


@pytest.mark.parametrize("form", range(5))
def test_the_logging_filter_redacts_every_encoding(form):
    leaked = crypto.make_key().full
    secret = leaked.split("_", 2)[2]
    line = f"GET /api/v1/contacts/{_forms(leaked)[form]}/ HTTP/1.1"
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s', (line, 401), None
    )
    RedactKeysFilter().filter(record)
    assert secret not in _unhidden(record.getMessage())
    assert crypto.parse_key(leaked) in record.getMessage()


@pytest.mark.parametrize(
    "text", ["GET /api/v1/contacts/?search=icrm_ HTTP/1.1", "100% done", "a%20b %ZZ icrm_abc"]
)
def test_text_without_a_key_is_left_alone(text):
    assert redact(text) == text
