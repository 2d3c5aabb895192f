"""Helpers for the rotation and expiry jobs: keys made through the real services, at a moved
clock when a test needs them already due."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import time_machine
from django.core.management import call_command
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry
from keys import services
from keys.models import APIKey

ACTOR = Actor(label="test-admin", ip="127.0.0.1", user_agent="pytest")


def generate(name: str = "Integration", **kwargs: object) -> services.Generated:
    kwargs.setdefault("scopes", {"contacts": ["view"]})
    return services.key_generate(name=name, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def rotated_keys_due(count: int, *, ago: timedelta = timedelta(hours=2)) -> list[APIKey]:
    """``count`` old keys rotated ``ago`` with a one-hour grace, so their grace has ended now
    (by the real clock, which a worker thread also reads)."""
    olds = []
    with time_machine.travel(timezone.now() - ago, tick=False):
        for i in range(count):
            rotated = services.key_rotate(
                key=generate(f"Due {i}").key, grace=timedelta(hours=1), actor=ACTOR
            )
            olds.append(rotated.old_key)
    return olds


def audit_count(key: APIKey, action: str) -> int:
    return AuditEntry.objects.filter(key_id=key.pk, action=action).count()


def chain_ok() -> bool:
    out = io.StringIO()
    call_command("audit", "verify", "--json", stdout=out)
    return json.loads(out.getvalue())["ok"]


def wait_for(condition: Callable[[], bool]) -> bool:
    """Poll for another thread's work. The limit only stops a hang; nothing asserts on time."""
    for _ in range(1200):
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def at(when: datetime) -> time_machine.travel:
    return time_machine.travel(when, tick=False)
