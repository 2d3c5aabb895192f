"""The ``apikey`` options whose text the command reads itself (the key-page settings are read by
the model, ``settings_cli``): a person (``--as``, ``--owner``), ``--expires``, ``--grace``,
``--leaked`` and ``--search``. A value given is a value used: an empty one is refused, never
taken for the default, and every refusal starts with the option that gave the value."""

from __future__ import annotations

import getpass
import re
from datetime import date, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from keys import selectors, services
from keys.models import ExpiryPolicy

EXPIRES_HELP = (
    "never, 30d, 90d, 1y, or a date YYYY-MM-DD (today or later: the key works through the "
    "end of that day); default: the key policy's default expiry (90d unless changed)"
)
GRACE_HELP = (
    "how long the old key keeps working: <n>s, <n>m, <n>h or <n>d (e.g. 1h, 24h, 7d), more "
    "than 0 and at most 30 days; default 24h"
)
_GRACE = re.compile(r"([0-9]{1,7})([smhd])")
_GRACE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# A full key is 56 characters; a scanner's line around it may add a little.
LEAKED_MAX_CHARS = 1000


def parse_grace(text: str) -> timedelta:
    match = _GRACE.fullmatch(text.strip())
    if not match:
        raise CommandError(
            f"--grace {text[:20]!r}: expected <n>s, <n>m, <n>h or <n>d (e.g. 1h, 24h, 7d), a "
            "grace period of more than 0 and at most 30 days."
        )
    grace = timedelta(**{_GRACE_UNITS[match.group(2)]: int(match.group(1))})
    if not timedelta(0) < grace <= services.MAX_GRACE:
        raise CommandError(f"--grace: {services.GRACE_MESSAGE}")
    return grace


def parse_expires(text: str) -> tuple[str, date | None]:
    text = text.strip()
    if text in (
        ExpiryPolicy.NEVER,
        ExpiryPolicy.DAYS_30,
        ExpiryPolicy.DAYS_90,
        ExpiryPolicy.YEAR_1,
    ):
        return text, None
    try:
        return ExpiryPolicy.CUSTOM, date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--expires {text[:20]!r}: expected {EXPIRES_HELP}.") from None


def find_person(username: str, option: str) -> Any:
    """The active user named ``username`` (for --as and --owner). An empty name is refused:
    ``--as "$USER"`` with an empty variable must not run as the system operator."""
    if not username.strip():
        raise CommandError(f"{option}: Give a username (it is empty).")
    if "\x00" in username or len(username) > 150:
        raise CommandError(f"{option}: No user {username[:40]!r}.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"{option}: No user {username[:150]!r}.")
    if not user.is_active:
        raise CommandError(f"{option}: {user.get_username()} is deactivated.")
    return user


def read_leaked_key(value: str, stdin: Any) -> str:
    """``--leaked KEY``, or ``--leaked -``: the key from standard input (typed without echo at
    a terminal), so it is not in the process list or the shell's history."""
    if value != "-":
        return value.strip()
    if stdin is None:
        raise CommandError("--leaked -: Standard input is closed; there is no key to read.")
    if stdin.isatty():
        text = getpass.getpass("Leaked key (not shown): ")
    else:
        text = stdin.read(LEAKED_MAX_CHARS + 1)
    if len(text) > LEAKED_MAX_CHARS:
        raise CommandError(
            f"--leaked -: Expected one key on standard input, not more than {LEAKED_MAX_CHARS} "
            "characters."
        )
    if not text.strip():
        raise CommandError("--leaked -: No key on standard input.")
    return text.strip()


def check_search(text: str | None) -> None:
    if text is None:
        return
    if "\x00" in text:
        raise CommandError("--search: Must not contain NUL characters.")
    if len(text) > selectors.KEY_SEARCH_MAX_LENGTH:
        raise CommandError(
            f"--search: At most {selectors.KEY_SEARCH_MAX_LENGTH} characters (no name or "
            "description is longer)."
        )
