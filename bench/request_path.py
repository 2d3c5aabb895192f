"""Section "requests": A / B / C rounds through the WSGI handler, query counts, rejected
requests, and the pyinstrument profile of B."""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from bench.data import Fixture
from bench.wsgi import Caller, make_environ, postgres_round_trips, redis_round_trips


@dataclass
class Variant:
    name: str
    label: str
    group: str  # "detail", "list" or "rejected"
    environ: dict[str, Any]
    expect: int
    baseline: str | None  # the variant whose time this one's overhead is measured against
    context: Callable[[], AbstractContextManager[Any]] = nullcontext
    per_round: list[float] = field(default_factory=list)  # µs per request, one per round
    cpu_per_round: list[float] = field(default_factory=list)  # CPU µs (this process) per request


@contextmanager
def usage_tracking_off() -> Iterator[None]:
    """B without the usage recorder (the rest of B unchanged): the cost of tracking."""
    from keys.usage import recorder

    with mock.patch.object(recorder, "record_request", lambda *args, **kwargs: None):
        yield


@contextmanager
def caller_recording_off() -> Iterator[None]:
    """B without recording the key's client and errors (usage counts unchanged): the cost of
    "who is calling"."""
    from keys.usage import recorder

    with mock.patch.object(recorder, "record_caller", lambda *args, **kwargs: None):
        yield


def variants(fx: Fixture) -> list[Variant]:
    cid = fx.contact_id
    bearer = {"Authorization": f"Bearer {fx.crm_key}"}
    api_key = {"Authorization": f"Api-Key {fx.drf_key}"}
    detail_a = f"/api/bench-a/contacts/{cid}/"
    detail_b = f"/api/v1/contacts/{cid}/"
    detail_c = f"/api/bench-c/contacts/{cid}/"
    return [
        Variant("A", "no authentication", "detail", make_environ(detail_a), 200, None),
        Variant(
            "B",
            "crm-keys (as deployed)",
            "detail",
            make_environ(detail_b, headers=bearer),
            200,
            "A",
        ),
        Variant(
            "B-notrack",
            "crm-keys without usage tracking",
            "detail",
            make_environ(detail_b, headers=bearer),
            200,
            "A",
            usage_tracking_off,
        ),
        Variant(
            "B-nocallers",
            "crm-keys without clients/errors recording",
            "detail",
            make_environ(detail_b, headers=bearer),
            200,
            "A",
            caller_recording_off,
        ),
        Variant(
            "B-xapikey",
            "crm-keys, X-API-Key header",
            "detail",
            make_environ(detail_b, headers={"X-API-Key": fx.crm_key}),
            200,
            "A",
        ),
        Variant(
            "C",
            "djangorestframework-api-key HasAPIKey",
            "detail",
            make_environ(detail_c, headers=api_key),
            200,
            "A",
        ),
        Variant(
            "A-list",
            "no authentication (list of 50)",
            "list",
            make_environ("/api/bench-a/contacts/"),
            200,
            None,
        ),
        Variant(
            "B-list",
            "crm-keys (list of 50)",
            "list",
            make_environ("/api/v1/contacts/", headers=bearer),
            200,
            "A-list",
        ),
        Variant(
            "C-list",
            "HasAPIKey (list of 50)",
            "list",
            make_environ("/api/bench-c/contacts/", headers=api_key),
            200,
            "A-list",
        ),
        Variant(
            "B-badsum",
            "crm-keys, bad checksum -> 401",
            "rejected",
            make_environ(detail_b, headers={"Authorization": f"Bearer {fx.crm_key_bad_checksum}"}),
            401,
            None,
        ),
        Variant(
            "B-revoked",
            "crm-keys, revoked key -> 401",
            "rejected",
            make_environ(detail_b, headers={"Authorization": f"Bearer {fx.crm_key_revoked}"}),
            401,
            None,
        ),
        Variant(
            "B-unknown",
            "crm-keys, unknown public id -> 401",
            "rejected",
            make_environ(detail_b, headers={"Authorization": f"Bearer {fx.crm_key_unknown}"}),
            401,
            None,
        ),
        Variant(
            "B-wrongsecret",
            "crm-keys, known id, wrong secret -> 401",
            "rejected",
            make_environ(detail_b, headers={"Authorization": f"Bearer {fx.crm_key_wrong_secret}"}),
            401,
            None,
        ),
        Variant(
            "C-malformed",
            "HasAPIKey, malformed key -> 403",
            "rejected",
            make_environ(detail_c, headers={"Authorization": f"Api-Key {fx.drf_key_malformed}"}),
            403,
            None,
        ),
        Variant(
            "C-revoked",
            "HasAPIKey, revoked key -> 403",
            "rejected",
            make_environ(detail_c, headers={"Authorization": f"Api-Key {fx.drf_key_revoked}"}),
            403,
            None,
        ),
    ]


def _check(call: Caller, v: Variant) -> str | None:
    with v.context():
        status, _headers, body = call.call_full(v.environ)
    if status != v.expect:
        return f"expected {v.expect}, got {status}: {body[:300]!r}"
    return None


def _queries(call: Caller, v: Variant) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    is_postgres = connection.vendor == "postgresql"
    with v.context(), redis_round_trips.counting() as redis_calls:
        if is_postgres:
            with postgres_round_trips.counting() as pg_calls:
                call(v.environ)
            pg_count: int | None = pg_calls.count
        else:
            pg_count = None
        with CaptureQueriesContext(connection) as ctx:
            call(v.environ)
        redis_count = redis_calls.count
    if is_postgres:
        redis_count //= 2  # two requests were counted
    return {
        "queries": len(ctx.captured_queries),
        "postgres_statements": pg_count,
        "sql": [q["sql"][:400] for q in ctx.captured_queries],
        "redis_round_trips": redis_count,
    }


def run(app: Any, fx: Fixture, *, rounds: int, per_round: int, log: Callable[[str], None]) -> dict:
    call = Caller(app)
    vs = variants(fx)
    errors: dict[str, str] = {}
    for v in vs:
        problem = _check(call, v)
        if problem:
            errors[v.name] = problem
            log(f"  ! {v.name}: {problem}")
    active = [v for v in vs if v.name not in errors]
    # Warm-up: import paths, caches, the SQLite page cache, the PostgreSQL plan cache.
    for v in active:
        with v.context():
            for _ in range(max(20, per_round // 10)):
                call(v.environ)
    query_info = {v.name: _queries(call, v) for v in active}

    counts = {"detail": per_round, "rejected": per_round, "list": max(10, per_round // 2)}
    deadline = time.monotonic() + 60 * 30
    load_per_round: list[float] = []
    # A new order every round (seeded, so runs are comparable): periodic work in this process
    # -- the usage shipper thread wakes every second -- then lands on every variant alike. In a
    # fixed order it fell in step with the rounds and slowed one variant (A, the first) by
    # ~200 µs for twenty rounds at a time.
    order = random.Random(14)
    for r in range(rounds):
        load_per_round.append(os.getloadavg()[0])
        this_round = active[:]
        order.shuffle(this_round)
        for v in this_round:
            n = counts[v.group]
            bad = 0
            with v.context():
                gc.collect()
                c0 = time.process_time_ns()
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    if call(v.environ) != v.expect:
                        bad += 1
                elapsed = time.perf_counter_ns() - t0
                cpu = time.process_time_ns() - c0
            if bad:
                errors.setdefault(v.name, f"{bad} unexpected statuses in round {r}")
            v.per_round.append(elapsed / n / 1000)
            v.cpu_per_round.append(cpu / n / 1000)
        log(
            f"  round {r + 1}/{rounds} (load {load_per_round[-1]:.2f}): "
            + " ".join(f"{v.name}={v.per_round[-1]:.0f}" for v in active)
        )
        if time.monotonic() > deadline:
            log("  time limit reached; stopping rounds early")
            break

    medians = {v.name: statistics.median(v.per_round) for v in active}
    cpu_medians = {v.name: statistics.median(v.cpu_per_round) for v in active}
    mins = {v.name: min(v.per_round) for v in active}
    by_name = {v.name: v for v in active}
    results: dict[str, Any] = {}
    for v in active:
        med = medians[v.name]
        entry: dict[str, Any] = {
            "label": v.label,
            "group": v.group,
            "expect": v.expect,
            "median_us": round(med, 1),
            "min_us": round(min(v.per_round), 1),
            "max_us": round(max(v.per_round), 1),
            "requests_per_s": round(1e6 / med, 1),
            "rounds_us": [round(x, 1) for x in v.per_round],
            "requests_per_round": counts[v.group],
            "cpu_median_us": round(cpu_medians[v.name], 1),
            **query_info[v.name],
        }
        if v.baseline and v.baseline in medians:
            entry["overhead_us"] = round(med - medians[v.baseline], 1)
            # Robust to drift and to noise from other processes: the overhead measured against
            # the baseline round run just before it, median over rounds.
            base = by_name[v.baseline].per_round
            pairs = [x - y for x, y in zip(v.per_round, base, strict=False)]
            entry["overhead_paired_us"] = round(statistics.median(pairs), 1)
            entry["overhead_min_us"] = round(mins[v.name] - mins[v.baseline], 1)
            # CPU time of this process hardly moves when other processes compete for the
            # cores; it leaves out time spent waiting on PostgreSQL or Redis.
            entry["overhead_cpu_us"] = round(cpu_medians[v.name] - cpu_medians[v.baseline], 1)
            cpu_base = by_name[v.baseline].cpu_per_round
            cpu_pairs = [x - y for x, y in zip(v.cpu_per_round, cpu_base, strict=False)]
            entry["overhead_cpu_paired_us"] = round(statistics.median(cpu_pairs), 1)
        results[v.name] = entry

    def ratio(b: str, c: str, field: str = "overhead_us") -> float | None:
        bo = results.get(b, {}).get(field)
        co = results.get(c, {}).get(field)
        if bo is None or co is None or co <= 0:
            return None
        return round(bo / co, 2)

    def cost(field: str) -> float | None:
        with_it = results.get("B", {}).get(field)
        without = results.get("B-nocallers", {}).get(field)
        return None if with_it is None or without is None else round(with_it - without, 1)

    unknown, wrong = by_name.get("B-unknown"), by_name.get("B-wrongsecret")
    unknown_minus_wrong = (
        round(
            statistics.median(
                x - y for x, y in zip(unknown.per_round, wrong.per_round, strict=False)
            ),
            1,
        )
        if unknown and wrong
        else None
    )
    return {
        "variants": results,
        "unknown_minus_wrong_secret_paired_us": unknown_minus_wrong,
        # The 1-minute load average at the start of each round: other processes on the
        # machine move every figure above.
        "load_average": {
            "min": round(min(load_per_round), 2),
            "median": round(statistics.median(load_per_round), 2),
            "max": round(max(load_per_round), 2),
            "per_round": [round(x, 2) for x in load_per_round],
        },
        # What recording each key's client and errors adds to B (B minus B-nocallers).
        "callers_cost_us": {
            estimator or "median": cost(f"overhead_{estimator}us")
            for estimator in ("", "paired_", "cpu_")
        },
        "ratio_detail": ratio("B", "C"),
        "ratio_detail_notrack": ratio("B-notrack", "C"),
        "ratio_list": ratio("B-list", "C-list"),
        "ratios": {
            estimator: {
                "detail": ratio("B", "C", f"overhead_{estimator}us"),
                "list": ratio("B-list", "C-list", f"overhead_{estimator}us"),
                "detail_notrack": ratio("B-notrack", "C", f"overhead_{estimator}us"),
            }
            for estimator in ("", "paired_", "min_", "cpu_", "cpu_paired_")
        },
        "rounds": rounds,
        "errors": errors,
    }


# --- Profile ----------------------------------------------------------------------------------

ROOT = str(Path(__file__).resolve().parent.parent)
OUR_PACKAGES = tuple(f"{ROOT}/{package}/" for package in ("keys", "crm_keys", "audit"))


def _walk_inclusive(frame: Any, active: frozenset, totals: dict) -> None:
    path = frame.file_path or ""
    short = frame.file_path_short or path
    if path.startswith(OUR_PACKAGES):
        short = "*" + short  # crm-keys' own code
    ident = (frame.function, short)
    if ident not in active:
        totals[ident] = totals.get(ident, 0.0) + frame.time
        active = active | {ident}
    for child in frame.children:
        _walk_inclusive(child, active, totals)


def profile(app: Any, fx: Fixture, *, requests: int, path_txt: str, log: Callable) -> dict:
    from pyinstrument import Profiler

    call = Caller(app)
    v = next(v for v in variants(fx) if v.name == "B")
    a = next(v for v in variants(fx) if v.name == "A")
    out: dict[str, Any] = {"requests": requests}
    texts = []
    for variant in (v, a):
        for _ in range(200):
            call(variant.environ)
        profiler = Profiler(interval=0.001)
        gc.collect()
        profiler.start()
        for _ in range(requests):
            call(variant.environ)
        profiler.stop()
        session = profiler.last_session
        root = session.root_frame()
        totals: dict = {}
        if root is not None:
            _walk_inclusive(root, frozenset(), totals)
        per_req = {
            f"{fn} ({path})": round(t / requests * 1e6, 1)
            for (fn, path), t in sorted(totals.items(), key=lambda kv: -kv[1])
        }
        ours = {k: us for k, us in per_req.items() if "(*" in k}
        out[variant.name] = {
            "wall_us_per_request": round(session.duration / requests * 1e6, 1),
            "top_inclusive_us": dict(list(per_req.items())[:40]),
            "crm_keys_functions_us": dict(list(ours.items())[:30]),
        }
        out.setdefault("_per_req", {})[variant.name] = per_req
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        texts.append(
            f"===== variant {variant.name} ({variant.label}): {requests} requests, "
            f"{out[variant.name]['wall_us_per_request']} µs/request under the profiler =====\n"
            + "Inclusive µs per request, crm-keys code:\n"
            + "\n".join(f"  {us:8.1f}  {k}" for k, us in ours.items())
            + "\n\nInclusive µs per request, top frames:\n"
            + "\n".join(f"  {us:8.1f}  {k}" for k, us in list(per_req.items())[:40])
            + "\n\n"
            + text
        )
    per_b, per_a = out.pop("_per_req").values()
    delta = {k: round(us - per_a.get(k, 0.0), 1) for k, us in per_b.items()}
    delta = dict(sorted(delta.items(), key=lambda kv: -kv[1])[:40])
    out["delta_B_minus_A_us"] = delta
    head = (
        "Where B's overhead goes: inclusive µs per request, B minus A, by function "
        "(a function that opens the request's first DB connection carries the connect cost; "
        "* marks crm-keys' own code):\n"
        + "\n".join(f"  {us:+8.1f}  {k}" for k, us in delta.items())
    )
    with open(path_txt, "w", encoding="utf-8") as fh:
        fh.write(head + "\n\n" + "\n\n".join(texts))
    log(f"  profile written to {path_txt}")
    return out
