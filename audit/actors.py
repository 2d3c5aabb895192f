"""Who did something: an admin user, a CLI operator (or a person through ``--as``), or a
background job."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from crm_keys.net import client_ip


@dataclass(frozen=True)
class Actor:
    label: str  # "alice", "cli:root", "system:revoke_grace_ended"
    user: Any = None  # the Django user, when there is one
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = request.user if request.user.is_authenticated else None
        return cls(
            label=user.get_username() if user else "anonymous",
            user=user,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )

    @classmethod
    def cli(cls, user: Any = None) -> Actor:
        """The command line: the system operator (``cli:<OS user>``), or, with ``--as``, that
        person, recorded by username with the OS user who ran the command."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        if user is not None:
            return cls(label=user.get_username(), user=user, user_agent=f"manage.py (cli:{name})")
        return cls(label=f"cli:{name}")

    @classmethod
    def system(cls, job: str = "") -> Actor:
        return cls(label=f"system:{job}" if job else "system")

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)
