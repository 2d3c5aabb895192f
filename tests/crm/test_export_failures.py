"""An export that fails: what can be checked before the first byte is a JSON 4xx/503; a failure
in the middle of the stream leaves a file that says it is incomplete and a response cut off
without its final chunk, so no client takes a truncated file for a whole one."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest
from django.db import connection

from crm.models import Contact
from crm_keys.csvstream import INTERRUPTED
from keys import services
from keys.scopes import PRESETS
from tests.helpers import bearer, gunicorn

ROWS = 20000  # ~6 MB: far more than socket buffers, so the stream is still running


@pytest.mark.django_db
def test_a_database_that_fails_before_the_first_byte_is_a_json_503(api, make_key):
    _, key = make_key({"contacts": ["export"]})
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE crm_contact RENAME TO crm_contact_away")
    response = api.get("/api/v1/contacts/export/", **bearer(key))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")


def _break_the_stream_midway() -> None:
    """Make the export's query fail after its first rows went out."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # A row the database cannot hand over (text that is not UTF-8: an OperationalError).
            cursor.execute(
                "UPDATE crm_contact SET company = CAST(X'FF' AS TEXT) WHERE id = "
                "(SELECT id FROM crm_contact ORDER BY id LIMIT 1 OFFSET 15000)"
            )
        else:
            # The database goes away under the server (its only other connection here).
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.mark.django_db(transaction=True)
def test_a_failure_mid_stream_is_detectable(tmp_path, actor):
    key = services.key_generate(name="Exporter", scopes=PRESETS["bi-tool"].scopes(), actor=actor)
    Contact.objects.bulk_create(
        Contact(first_name=f"F{i}", last_name="L" * 100, company="C" * 200) for i in range(ROWS)
    )
    if connection.vendor == "sqlite":
        _break_the_stream_midway()
    with gunicorn(tmp_path) as base:
        parts = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("GET", "/api/v1/contacts/export/", headers=bearer_header(key.full_key))
        response = conn.getresponse()
        assert response.status == 200  # the status line had gone before the failure
        assert response.getheader("Transfer-Encoding") == "chunked"
        received = response.read(4096)
        if connection.vendor != "sqlite":
            _break_the_stream_midway()
        with pytest.raises(http.client.IncompleteRead) as cut_off:
            while chunk := response.read(65536):
                received += chunk
        received += cut_off.value.partial
        conn.close()
    text = received.decode()
    assert text.startswith("id,first_name")
    assert text.endswith(INTERRUPTED)
    assert text.count("\n") < ROWS


def bearer_header(full_key: str) -> dict[str, str]:
    return {"Authorization": bearer(full_key)["HTTP_AUTHORIZATION"]}


@pytest.mark.django_db(transaction=True)
def test_a_whole_export_ends_cleanly(tmp_path, actor):
    key = services.key_generate(name="Exporter", scopes=PRESETS["bi-tool"].scopes(), actor=actor)
    Contact.objects.bulk_create(Contact(first_name=f"F{i}", last_name="L") for i in range(ROWS))
    with gunicorn(tmp_path) as base:
        parts = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("GET", "/api/v1/contacts/export/", headers=bearer_header(key.full_key))
        text = conn.getresponse().read().decode()
        conn.close()
    assert text.count("\r\n") == ROWS + 1
    assert "#ERROR" not in text
