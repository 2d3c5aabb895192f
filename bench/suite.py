"""One backend's benchmark, in its own process (Django settings are per process).

Started by bench/run.py with BENCH_BACKEND=sqlite|postgres; writes its results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("requests", "profile", "admin", "grace", "flush", "http", "hungredis")

FULL = {
    "keys": 10_000,
    "contacts": 1_000,
    # Many short rounds: on a shared machine a burst of other work then spoils a few rounds of
    # every variant alike instead of one variant's long block.
    "rounds": 120,
    "per_round": 50,
    "profile_requests": 3_000,
    "busy_keys": 250,
    "days": 90,
    "admin_repeat": 5,
    "grace_due": 10_000,
    "flush_requests": 1_000_000,
    "flush_keys": 1_000,
    "http_requests": 20_000,
    "http_concurrency": 16,
    "wrk_seconds": 10,
    "hung_seconds": 10,
}
QUICK = {
    **FULL,
    "keys": 1_000,
    "contacts": 200,
    "rounds": 6,
    "per_round": 50,
    "profile_requests": 300,
    "busy_keys": 20,
    "days": 7,
    "admin_repeat": 2,
    "grace_due": 500,
    "flush_requests": 50_000,
    "flush_keys": 200,
    "http_requests": 1_000,
    "wrk_seconds": 2,
    "hung_seconds": 3,
}


def log(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile-out", required=True)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from bench import data, faults, http_load, jobs, request_path

    cfg = QUICK if args.quick else FULL
    backend = os.environ.get("BENCH_BACKEND", "sqlite")
    db = settings.DATABASES["default"]
    out: dict[str, Any] = {
        "backend": backend,
        "database": f"{db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}",
        "conn_max_age": db.get("CONN_MAX_AGE", 0),
        "redis": bool(settings.REDIS_URL),
        "config": cfg,
        "python": platform.python_version(),
        "django": django.get_version(),
        "sections": {},
    }

    def save() -> None:
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))

    t0 = time.perf_counter()
    log(
        f"[{backend}] building data: {cfg['keys']:,} keys of each library, {cfg['contacts']:,} contacts"
    )
    fx = data.build(n_keys=cfg["keys"], n_contacts=cfg["contacts"])
    out["data"] = fx.counts
    log(f"[{backend}] data ready in {time.perf_counter() - t0:.1f}s: {fx.counts}")
    app = get_wsgi_application()

    sections = [s for s in SECTIONS if s in args.only] if args.only else list(SECTIONS)
    for section in sections:
        load_before = [round(x, 2) for x in os.getloadavg()]
        log(f"[{backend}] section {section} (load average {load_before[0]:.2f})")
        t0 = time.perf_counter()
        try:
            if section == "requests":
                res = request_path.run(
                    app, fx, rounds=cfg["rounds"], per_round=cfg["per_round"], log=log
                )
            elif section == "profile":
                res = request_path.profile(
                    app, fx, requests=cfg["profile_requests"], path_txt=args.profile_out, log=log
                )
            elif section == "admin":
                res = jobs.admin(
                    fx,
                    busy_keys=cfg["busy_keys"],
                    days=cfg["days"],
                    repeat=cfg["admin_repeat"],
                    log=log,
                )
            elif section == "grace":
                res = jobs.grace(fx, due=cfg["grace_due"], log=log)
            elif section == "flush":
                res = jobs.flush(
                    fx, requests=cfg["flush_requests"], keys=cfg["flush_keys"], log=log
                )
            elif section == "hungredis":
                res = faults.run(fx, seconds=cfg["hung_seconds"], log=log)
            else:
                res = http_load.run(
                    fx,
                    requests=cfg["http_requests"],
                    concurrency=cfg["http_concurrency"],
                    wrk_seconds=cfg["wrk_seconds"],
                    log=log,
                )
        except Exception as exc:
            traceback.print_exc()
            res = {"available": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        res["section_seconds"] = round(time.perf_counter() - t0, 1)
        # Other processes on the machine distort every figure; say how busy it was.
        res["load_average_before"] = load_before
        res["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        out["sections"][section] = res
        save()
    data.flush_redis()
    save()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
