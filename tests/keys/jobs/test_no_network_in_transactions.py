"""No network I/O (mail, Redis, HTTP) while a transaction — and with it a row lock, SQLite's
write lock or the audit chain's lock — is held: a slow or stalled server then delays only its
own work. Every socket operation of this process is watched while the services, the API and
every background job run against a real mail server (and real Redis where REDIS_URL is set)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from keys import services
from keys.api import lookup
from keys.models import ExpiryPolicy
from keys.tasks import JOBS
from keys.usage import recorder
from tests import smtp
from tests.helpers import (
    ACTOR,
    ENV_REDIS_URL,
    at,
    bearer,
    clear_usage_keys,
    generate,
    rotated_keys_due,
)

WATCHED = ("connect", "sendall", "send", "recv", "recv_into")


@pytest.fixture
def socket_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    """(operation, inside a transaction?) for every socket operation of this process's threads."""
    calls: list[tuple[str, bool]] = []

    def watch(name: str) -> Callable[..., Any]:
        real = getattr(socket.socket, name)

        def watched(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if self.family != socket.AF_UNIX:
                calls.append((name, connection.in_atomic_block))
            return real(self, *args, **kwargs)

        return watched

    for name in WATCHED:
        monkeypatch.setattr(socket.socket, name, watch(name))
    yield calls


@pytest.mark.django_db(transaction=True)
def test_no_socket_is_used_inside_a_transaction(settings, api, socket_calls):
    settings.REDIS_URL = ENV_REDIS_URL
    settings.API_KEYS = {
        **settings.API_KEYS,
        "ALERT_RECIPIENTS": ["ops@example.com"],
        "USAGE_SHIP_INTERVAL": 0,
    }
    lookup.cache.reset()
    recorder.reset()
    clear_usage_keys()
    with smtp.MailServer() as server:
        smtp.use(settings, server.port)
        # What every job has to do: a reminder, an unused-key alert, a grace end.
        with at(timezone.now() - timedelta(days=31)):
            generate("Unused")
        with at(timezone.now() - timedelta(days=26)):
            generate("Expiring", expiry_policy=ExpiryPolicy.DAYS_30)
        rotated_keys_due(1)
        # Every change a person makes, and some traffic.
        used = generate("Used")
        services.key_update_scopes(key=used.key, scopes={"leads": ["view"]}, actor=ACTOR)
        assert api.get("/api/v1/leads/", **bearer(used.full_key)).status_code == 200
        assert api.get("/api/v1/contacts/", **bearer(used.full_key)).status_code == 403
        rotated = services.key_rotate(key=used.key, grace=timedelta(hours=1), actor=ACTOR)
        services.key_revoke(key=rotated.key, actor=ACTOR)
        for name, job in JOBS.items():
            assert job.run() is not None, name
    assert len(server.messages) == 2  # the digest and the alert
    assert socket_calls, "no socket use was seen at all"
    inside = [name for name, in_transaction in socket_calls if in_transaction]
    assert inside == []
    recorder.reset()
    clear_usage_keys()
    lookup.cache.reset()
