"""What the command line does when its standard output fails: a key that cannot be printed is
not created (or rotated), and a reader that stops early (``| head``) is no error at all.

Each test runs ``manage.py`` in another process, with its stdout really full, closed or a pipe
whose reader has gone, as an ops script or a shell gives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.models import AuditEntry
from keys.models import APIKey
from tests.helpers import bearer, generate, manage

pytestmark = pytest.mark.django_db(transaction=True)

FAILING_STDOUT = ["full", "closed", "broken-pipe"]
# Python buffers a pipe's or a file's output unless PYTHONUNBUFFERED is set (make run sets it):
# a failure shows at a write or at a flush, and both are covered.
BUFFERING = [pytest.param({"PYTHONUNBUFFERED": ""}, id="buffered"), {"PYTHONUNBUFFERED": "1"}]


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("stdout", FAILING_STDOUT)
def test_create_makes_no_key_when_the_key_cannot_be_printed(
    tmp_path: Path, stdout: str, env: dict[str, str]
) -> None:
    code, _, err = manage(
        tmp_path,
        *["apikey", "create", "--name", "lost", "--preset", "website-form"],
        stdout=stdout,
        **env,
    )
    assert code == 1
    assert "nothing was created" in one_line_error(err)
    assert "Generated" not in err  # nothing claims a key exists
    assert not APIKey.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("stdout", FAILING_STDOUT)
def test_rotate_changes_nothing_when_the_new_key_cannot_be_printed(
    tmp_path: Path, stdout: str, env: dict[str, str], api
) -> None:
    generated = generate("Kept")
    code, _, err = manage(
        tmp_path,
        *["apikey", "rotate", str(generated.key.pk), "--grace", "1h"],
        stdout=stdout,
        **env,
    )
    assert code == 1
    assert "nothing was rotated" in one_line_error(err)
    old = APIKey.objects.get()
    assert old.replaced_by_id is None and old.grace_ends_at is None
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["generated"]
    response = api.get("/api/v1/contacts/", **bearer(generated.full_key))
    assert response.status_code == 200 and "Sunset" not in response


def test_create_and_rotate_print_the_key_when_stdout_works(tmp_path: Path, api) -> None:
    code, out, err = manage(tmp_path, "apikey", "create", "--name", "ok", "--preset", "full")
    assert code == 0 and "Generated" in err
    assert api.get("/api/v1/contacts/", **bearer(out.strip())).status_code == 200
    code, new, err = manage(tmp_path, "apikey", "rotate", str(APIKey.objects.get().pk))
    assert code == 0 and "Rotated" in err
    assert api.get("/api/v1/leads/", **bearer(new.strip())).status_code == 200


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize(
    "args", [["apikey", "show", "{pk}"], ["apikey", "list"], ["audit", "export"]]
)
def test_a_reader_that_stops_early_ends_the_command_quietly(
    tmp_path: Path, args: list, env: dict[str, str]
) -> None:
    """``apikey show 5 | head -30``: no traceback, no message; the exit status of a command
    stopped by SIGPIPE (141), as coreutils give under ``set -o pipefail``."""
    key = generate("Shown").key
    argv = [a.format(pk=key.pk) for a in args]
    code, _, err = manage(tmp_path, *argv, stdout="broken-pipe", **env)
    assert err == ""
    assert code == 141


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_output_that_cannot_be_written_is_one_line_and_non_zero(
    tmp_path: Path, stdout: str, env: dict[str, str]
) -> None:
    generate("Exported")
    code, _, err = manage(tmp_path, "audit", "export", stdout=stdout, **env)
    assert code == 1
    assert "standard output" in one_line_error(err)


def test_leaked_key_read_from_stdin(tmp_path: Path) -> None:
    """``--leaked -``: the key never appears on the command line (ps, shell history)."""
    generated = generate("Leaked")
    code, out, err = manage(
        tmp_path, "apikey", "revoke", "--leaked", "-", "--yes", stdin=generated.full_key + "\n"
    )
    assert (code, err) == (0, "")
    assert "Revoked" in out and generated.full_key not in out
    assert APIKey.objects.get().revoked_at is not None


@pytest.mark.parametrize("env", BUFFERING)
def test_an_error_after_output_into_a_gone_reader_adds_no_traceback(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """``audit verify --json`` prints its result, then fails on a broken chain. Buffered, the
    result is still in memory when the error is reported: what is left must not add an
    "Exception ignored ... BrokenPipeError" at exit. Unbuffered, the write itself meets the
    gone reader and the command stops there, as any Unix tool stopped by SIGPIPE."""
    from tests.audit.test_chain import raw_sql

    generate("Tampered")
    raw_sql("UPDATE audit_auditentry SET message = 'rewritten'")
    code, _, err = manage(tmp_path, "audit", "verify", "--json", stdout="broken-pipe", **env)
    if env["PYTHONUNBUFFERED"]:
        assert (code, err) == (141, "")
    else:
        assert code == 1
        assert "Audit chain BROKEN" in one_line_error(err)
