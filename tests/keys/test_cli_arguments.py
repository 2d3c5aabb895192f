"""What the command line refuses, and how: an argument it cannot parse is one line on stderr
(exit 2, pointing at --help), a refused value names the option that gave it, and a value that
would quietly change what the command does (an empty ``--as``, an empty ``--expires``) is an
error rather than a default."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from audit.models import AuditEntry
from keys import services
from keys.models import APIKey, KeyStatus
from tests.helpers import ACTOR, ROOT, generate, person

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra = {} if stdin is None else {"stdin": io.StringIO(stdin)}
    call_command("apikey", *args, stdout=out, stderr=err, **extra)
    return out.getvalue().strip(), err.getvalue()


def command_line(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``manage.py ARGV`` as the shell runs it (the same entry point, in this process)."""
    argv_ = ["manage.py", *argv]
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(argv_).fetch_command(argv_[1]).run_from_argv(argv_)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


# --- C. argument errors: one line, exit 2 -------------------------------------------------------

PARSE_ERRORS = [
    (["apikey", "create", "--name", "x", "--preset", "full", "--expires", "-5d"], "--expires"),
    (["apikey", "create", "--name", "ok"], "--scope --preset"),
    (["apikey", "create", "--name", "ok", "--preset", "nope"], "'nope'"),
    (["apikey", "update", "1", "--mute-alerts", "--unmute-alerts"], "--unmute-alerts"),
    (["apikey"], "required"),
    (["apikey", "policy", "show", "--as", "narrow"], "--as narrow"),
    (["apikey", "update", "1", "--alert-error-rate", "-inf"], "--alert-error-rate"),
    (["runjob", "nope"], "'nope'"),
    (["runjob"], "NAME"),
    (["audit", "verify", "--expect-head", "-1:00"], "--expect-head"),
    (["audit"], "required"),
    (["unlock_login", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("argv", "named"), PARSE_ERRORS)
def test_an_argument_error_is_one_line_and_exit_2(capsys: Any, argv: list, named: str) -> None:
    code, out, err = command_line(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "usage:" not in err
    assert named in err and "--help" in err


def test_a_value_starting_with_a_dash_says_how_to_pass_it(capsys: Any) -> None:
    _, _, err = command_line(
        capsys, "apikey", "create", "--name", "x", "--preset", "full", "--expires", "-5d"
    )
    assert "--expires=" in err
    with pytest.raises(CommandError, match=r"^--expires '-5d': expected never"):
        run("create", "--name", "x", "--preset", "full", "--expires=-5d")
    assert not APIKey.objects.exists()


def test_an_argument_error_from_the_shell_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "apikey", "create", "--name", "ok"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm_keys.test_settings"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--preset" in result.stderr


def test_help_still_prints_the_usage(capsys: Any) -> None:
    code, out, _ = command_line(capsys, "apikey", "rotate", "--help")
    assert code == 0
    assert "usage:" in out and "--grace" in out


# --- B. --as and --owner: given means given ----------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
@pytest.mark.parametrize(
    "command",
    [
        ["create", "--name", "X", "--preset", "full"],
        ["update", "{pk}", "--name", "X"],
        ["scopes", "{pk}", "--scope", "leads:view"],
        ["rotate", "{pk}"],
        ["revoke", "{pk}", "--yes"],
        ["policy", "set", "--require-description"],
    ],
)
def test_an_empty_as_is_refused_not_the_system_operator(command: list, value: str) -> None:
    key = generate("Kept").key
    before = AuditEntry.objects.count()
    with pytest.raises(CommandError, match=r"^--as: ") as refused:
        run(*[a.format(pk=key.pk) for a in command], "--as", value)
    assert "\n" not in str(refused.value)
    assert AuditEntry.objects.count() == before
    key.refresh_from_db()
    assert key.status == KeyStatus.ACTIVE and key.name == "Kept"
    assert APIKey.objects.count() == 1


@pytest.mark.parametrize("command", [["create", "--name", "X", "--preset", "full"], ["update"]])
def test_an_empty_owner_is_refused(command: list) -> None:
    key = generate("Kept").key
    args = command if command[0] == "create" else ["update", str(key.pk)]
    with pytest.raises(CommandError, match=r"^--owner: "):
        run(*args, "--owner", "")
    assert APIKey.objects.count() == 1


# --- D. a refusal names the option that gave the value ------------------------------------------

INTERNAL_FIELD = re.compile(r"\b[a-z]+_[a-z_]+: ")


@pytest.fixture
def ninety_days() -> None:
    services.policy_update(data={"max_lifetime_days": 90}, actor=ACTOR)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "X", "--preset", "full", "--expires", "never"], "^--expires: "),
        (["create", "--name", "X", "--preset", "full", "--expires", "1y"], "^--expires: "),
        (["policy", "set", "--max-lifetime", "0"], "^--max-lifetime: "),
        (["policy", "set", "--rotation-days", "0"], "^--rotation-days: "),
        (["policy", "set", "--rotation-days", "99999d"], "^--rotation-days: "),
        (["policy", "set", "--default-expiry", "1y"], "^--default-expiry: "),
        (
            ["policy", "set", "--ip-allowlist-for", "frobnicate"],
            "^--ip-allowlist-for: Unknown action 'frobnicate'",
        ),
    ],
)
def test_a_refusal_names_the_option(ninety_days: None, args: list, message: str) -> None:
    with pytest.raises(CommandError, match=message) as refused:
        run(*args)
    assert not INTERNAL_FIELD.search(str(refused.value)), refused.value
    assert not APIKey.objects.exists()


def test_a_refusal_about_a_value_not_given_names_no_option() -> None:
    """Rotating copies the key's permissions: the ceiling refusal is not about a --scope."""
    key = generate("Wide", scopes={"contacts": ["view", "create"]}).key
    person("narrow", "keys.rotate_apikey", "keys.add_apikey", "crm.view_contact")
    with pytest.raises(CommandError) as refused:
        run("rotate", str(key.pk), "--as", "narrow")
    assert str(refused.value).startswith("A person can grant a key only")
    with pytest.raises(CommandError, match=r"^--preset: A person can grant"):
        run("create", "--name", "X", "--preset", "full", "--as", "narrow")
    with pytest.raises(CommandError, match=r"^--scope: A person can grant"):
        run("create", "--name", "X", "--scope", "leads:view", "--as", "narrow")


def test_a_grace_beyond_30_days_names_grace(make_key: Any) -> None:
    key, _ = make_key()
    with pytest.raises(CommandError, match=r"^--grace: .*at most 30 days"):
        run("rotate", str(key.pk), "--grace", "31d")
    out, _ = run("rotate", str(key.pk), "--grace", "8d")  # <n>d and <n>h are documented
    assert out.startswith("icrm_")


def test_rotate_help_documents_every_grace_form(capsys: Any) -> None:
    _, out, _ = command_line(capsys, "apikey", "rotate", "--help")
    text = " ".join(out.split())
    assert all(form in text for form in ("<n>s", "<n>m", "<n>h", "<n>d", "at most 30 days"))


# --- E. smaller refusals -------------------------------------------------------------------------


def test_an_empty_expires_is_an_error_not_the_default() -> None:
    with pytest.raises(CommandError, match=r"^--expires '': expected"):
        run("create", "--name", "X", "--preset", "full", "--expires", "")
    assert not APIKey.objects.exists()


def test_a_search_longer_than_any_description_is_refused(make_key: Any) -> None:
    make_key(name="Findable")
    with pytest.raises(CommandError, match=r"^--search: At most 1000 characters"):
        run("list", "--search", "a" * 100_000)
    out, _ = run("list", "--search", "F" + "x" * 999)
    assert "Findable" not in out  # the longest search allowed runs (and matches nothing here)
    assert "Findable" in run("list", "--search", "findable")[0]


@pytest.mark.parametrize(
    "name", ["\u202egnp.exe", "pay\u200broll", "\u2066admin\u2069", "\ufeffBOM", "soft\xadhyphen"]
)
def test_names_with_invisible_format_characters_are_refused(name: str, make_key: Any) -> None:
    with pytest.raises(CommandError, match=r"^--name: .*invisible"):
        run("create", "--name", name, "--preset", "full")
    key, _ = make_key(name="Kept")
    with pytest.raises(CommandError, match=r"^--name: .*invisible"):
        run("update", str(key.pk), "--name", name)
    key.refresh_from_db()
    assert key.name == "Kept"


PERSIAN_WITH_ZWNJ = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", as written


def test_joiners_that_scripts_and_emoji_need_are_kept() -> None:
    """ZWNJ writes Persian and Indic words correctly; ZWJ joins emoji sequences."""
    names = {PERSIAN_WITH_ZWNJ, "Team 👩\u200d💻"}
    for name in names:
        run("create", "--name", name, "--preset", "full")
    assert set(APIKey.objects.values_list("name", flat=True)) == names


def test_an_infinite_error_rate_is_refused_once(make_key: Any) -> None:
    key, _ = make_key()
    with pytest.raises(CommandError) as refused:
        run("update", str(key.pk), "--alert-error-rate", "inf")
    assert str(refused.value).count("percentage") == 1


def test_revoke_leaked_reads_the_key_from_stdin(make_key: Any) -> None:
    key, full = make_key()
    out, _ = run("revoke", "--leaked", "-", "--yes", stdin=f"  {full}\n")
    assert "Revoked" in out
    key.refresh_from_db()
    assert key.status == KeyStatus.REVOKED
    assert "reported leaked" in AuditEntry.objects.get(action="revoked").message


@pytest.mark.parametrize("stdin", ["", "\n", "not a key\n", "x" * 100_000])
def test_revoke_leaked_with_nothing_usable_on_stdin(make_key: Any, stdin: str) -> None:
    key, _ = make_key()
    with pytest.raises(CommandError, match=r"^--leaked") as refused:
        run("revoke", "--leaked", "-", "--yes", stdin=stdin)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300
    key.refresh_from_db()
    assert key.status == KeyStatus.ACTIVE
