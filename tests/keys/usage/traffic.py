"""Send a known mix of API requests through the real stack and remember what was sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rest_framework.test import APIClient

from audit.actors import Actor
from crm.models import Contact
from keys import crypto, services
from keys.models import (
    APIKey,
    KeyClient,
    RecentError,
    UnknownKeyUsageHour,
    UsageFlush,
    UsageHour,
)
from keys.usage import rows as usage_rows
from keys.usage import stats
from tests.helpers import bearer

LIST = "GET /api/v1/contacts/"
DETAIL = "GET /api/v1/contacts/{id}/"
CREATE = "POST /api/v1/contacts/"
DELETE = "DELETE /api/v1/contacts/{id}/"
OPPORTUNITIES = "GET /api/v1/opportunities/"
KEY_INFO = "GET /api/v1/key/"


@dataclass
class Sent:
    """What was sent: per key id, Counter of (endpoint, is_error); unknown-key requests."""

    per_key: dict[int, Counter] = field(default_factory=dict)
    unknown: int = 0

    def add(self, key: APIKey, endpoint: str, status: int) -> None:
        self.per_key.setdefault(key.pk, Counter())[(endpoint, status >= 400)] += 1

    def total(self, key: APIKey) -> int:
        return sum(self.per_key.get(key.pk, Counter()).values())

    def errors(self, key: APIKey) -> int:
        return sum(n for (_, err), n in self.per_key.get(key.pk, Counter()).items() if err)

    def by_endpoint(self, key: APIKey) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for (endpoint, err), n in self.per_key.get(key.pk, Counter()).items():
            sums = out.setdefault(endpoint, [0, 0])
            sums[0] += n
            sums[1] += n if err else 0
        return {e: (r, er) for e, (r, er) in out.items()}

    def merge(self, other: Sent) -> None:
        for key_id, counts in other.per_key.items():
            self.per_key.setdefault(key_id, Counter()).update(counts)
        self.unknown += other.unknown


@dataclass
class Fleet:
    website: APIKey
    website_full: str
    bi: APIKey
    bi_full: str
    revoked: APIKey
    revoked_full: str
    contact_id: int


def forget_stray_usage_rows() -> None:
    """Start from empty usage tables. A shipper thread left running by another test module
    (with the default ship interval) may have committed rows outside any test transaction."""
    UsageFlush.objects.all().delete()
    UnknownKeyUsageHour.objects.all().delete()


def make_fleet(name: str = "") -> Fleet:
    forget_stray_usage_rows()
    actor = Actor(label="test-admin")
    website = services.key_generate(
        name=f"Website form {name}", scopes={"contacts": ["view", "create"]}, actor=actor
    )
    bi = services.key_generate(
        name=f"BI tool {name}",
        scopes={"contacts": ["view", "export"], "leads": ["view"]},
        actor=actor,
    )
    gone = services.key_generate(name=f"Old {name}", scopes={"contacts": ["view"]}, actor=actor)
    services.key_revoke(key=gone.key, actor=actor, reason="test")
    contact = Contact.objects.create(first_name="Ada", last_name="Lovelace")
    return Fleet(
        website.key, website.full_key, bi.key, bi.full_key, gone.key, gone.full_key, contact.pk
    )


def send_mix(api: APIClient, fleet: Fleet, rounds: int = 1) -> Sent:
    """Per round: 25 requests with the three keys (successes, 403, 404, 401 for the revoked
    key), 5 with unknown, malformed or empty keys; plus one without a key, which is not counted."""
    sent = Sent()

    def call(key: APIKey | None, full: str, method: str, path: str, endpoint: str, **kw) -> int:
        response = getattr(api, method)(path, **bearer(full), **kw)
        assert response.status_code < 500, response.content
        if key is None:
            sent.unknown += 1
        else:
            sent.add(key, endpoint, response.status_code)
        return response.status_code

    cid = fleet.contact_id
    for _ in range(rounds):
        for _ in range(4):
            assert call(fleet.website, fleet.website_full, "get", "/api/v1/contacts/", LIST) == 200
        assert (
            call(fleet.website, fleet.website_full, "get", f"/api/v1/contacts/{cid}/", DETAIL)
            == 200
        )
        assert (
            call(fleet.website, fleet.website_full, "get", "/api/v1/contacts/999999/", DETAIL)
            == 404
        )
        for _ in range(2):
            status = call(
                fleet.website,
                fleet.website_full,
                "post",
                "/api/v1/contacts/",
                CREATE,
                data={"first_name": "Grace", "last_name": "Hopper"},
                format="json",
            )
            assert status == 201
        assert (
            call(
                fleet.website,
                fleet.website_full,
                "post",
                "/api/v1/contacts/",
                CREATE,
                data={},
                format="json",
            )
            == 400
        )
        assert (
            call(fleet.website, fleet.website_full, "get", "/api/v1/opportunities/", OPPORTUNITIES)
            == 403
        )
        assert call(fleet.website, fleet.website_full, "get", "/api/v1/key/", KEY_INFO) == 200

        for _ in range(6):
            assert call(fleet.bi, fleet.bi_full, "get", "/api/v1/contacts/", LIST) == 200
        assert call(fleet.bi, fleet.bi_full, "delete", f"/api/v1/contacts/{cid}/", DELETE) == 403
        assert call(fleet.bi, fleet.bi_full, "get", f"/api/v1/contacts/{cid}/", DETAIL) == 200

        for _ in range(3):
            assert call(fleet.revoked, fleet.revoked_full, "get", "/api/v1/contacts/", LIST) == 401
        assert call(fleet.revoked, fleet.revoked_full, "get", "/api/v1/key/", KEY_INFO) == 401

        for _ in range(2):
            assert call(None, crypto.make_key().full, "get", "/api/v1/contacts/", "") == 401
        assert call(None, "icrm_not-a-key", "get", "/api/v1/contacts/", "") == 401
        bad_checksum = fleet.bi_full[:-1] + ("A" if fleet.bi_full[-1] != "A" else "B")
        assert call(None, bad_checksum, "get", "/api/v1/contacts/", "") == 401
        # An empty header is a (broken) credential: counted as unknown.
        assert api.get("/api/v1/contacts/", HTTP_X_API_KEY="").status_code == 401
        sent.unknown += 1
        # No key at all: nothing was presented, nothing is counted.
        assert api.get("/api/v1/contacts/").status_code == 401
    return sent


def expected_top(sent: Sent, key) -> list[dict]:
    rows = sorted(sent.by_endpoint(key).items(), key=lambda item: (-item[1][0], item[0]))
    return [{"endpoint": e, "requests": r, "errors": er} for e, (r, er) in rows[:10]]


def assert_exact(sent: Sent, fleet: Fleet) -> None:
    """Every figure of every key equals what was sent; so does the unknown-key counter."""
    this_hour = usage_rows.hour_of(datetime.now(UTC))
    for key in (fleet.website, fleet.bi, fleet.revoked):
        key.refresh_from_db()
        total, errors = sent.total(key), sent.errors(key)
        figures = stats.key_usage(key)
        assert figures["total_requests"] == total
        assert figures["requests_24h"] == total
        assert figures["total_errors"] == errors
        assert figures["errors_24h"] == errors
        assert figures["error_rate"] == round(100 * errors / total, 2)
        assert figures["top_endpoints"] == expected_top(sent, key)
        assert len(figures["hourly"]) == 168
        assert figures["hourly"][-1] == {
            "hour": this_hour.isoformat(),
            "requests": total,
            "errors": errors,
        }
        assert sum(h["requests"] for h in figures["hourly"]) == total
        assert key.last_used_at is not None
        assert key.last_used_at <= datetime.now(UTC)
        rows = {
            (r.endpoint, r.requests, r.errors)
            for r in UsageHour.objects.filter(key=key, hour=this_hour)
        }
        assert rows == {(e, r, er) for e, (r, er) in sent.by_endpoint(key).items()}
        assert stats.key_request_counts(key) == {
            "total_requests": total,
            "requests_24h": total,
        }
        # Its clients add up to the same requests, and each error is kept once.
        assert sum(KeyClient.objects.filter(key=key).values_list("requests", flat=True)) == total
        assert RecentError.objects.filter(key=key).count() == min(errors, 50)
    assert stats.requests_24h_by_key([fleet.website.pk, fleet.bi.pk, fleet.revoked.pk]) == {
        k.pk: sent.total(k) for k in (fleet.website, fleet.bi, fleet.revoked)
    }
    assert stats.unknown_key_requests()["requests_24h"] == sent.unknown
    assert UnknownKeyUsageHour.objects.get(hour=this_hour).requests == sent.unknown
