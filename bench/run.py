"""`make bench`: the crm-keys benchmark. Runs each backend in its own process (SQLite always;
PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set), prints a summary table and writes
bench/results/latest.json. See bench/README.md.

    python bench/run.py [--quick] [--only SECTION] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from bench.suite import SECTIONS  # noqa: E402

CHILD_TIMEOUT = 60 * 60


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    out = RESULTS / f"{backend}.json"
    out.unlink(missing_ok=True)
    profile_out = RESULTS / f"profile-B-{backend}.txt"
    env = {**os.environ, "BENCH_BACKEND": backend, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable,
        "-m",
        "bench.suite",
        "--out",
        str(out),
        "--profile-out",
        str(profile_out),
    ]
    if args.quick:
        cmd.append("--quick")
    for section in args.only or []:
        cmd += ["--only", section]
    print(f"\n=== {backend} ===", flush=True)
    t0 = time.perf_counter()
    try:
        code = subprocess.run(cmd, cwd=ROOT, env=env, timeout=CHILD_TIMEOUT, check=False).returncode
    except subprocess.TimeoutExpired:
        code = -1
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result["exit_code"] = code
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return format(value, spec)
    return str(value)


def summary(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for backend, res in results["backends"].items():
        sections = res.get("sections", {})
        lines.append("")
        lines.append(
            f"## {backend}: {res.get('database', '?')}, Redis {'on' if res.get('redis') else 'off'}, "
            f"CONN_MAX_AGE={res.get('conn_max_age')}, data {res.get('data')}"
        )
        if sections:
            lines.append(
                "load average (1 min) at the start -> end of each section: "
                + ", ".join(f"{name} {load_note(sec)[13:]}" for name, sec in sections.items())
            )
        req = sections.get("requests")
        if req and "variants" in req:
            lines.append(
                f"{'variant':<12} {'what':<40} {'median µs':>10} {'req/s':>8} {'min-max µs':>15} "
                f"{'overhead µs':>12} {'paired':>7} {'cpu µs':>7} {'cpu +':>6} {'queries':>8} {'pg':>3} {'redis':>6}"
            )
            for name, v in req["variants"].items():
                lines.append(
                    f"{name:<12} {v['label'][:40]:<40} {fmt(v['median_us']):>10} "
                    f"{fmt(v['requests_per_s']):>8} "
                    f"{fmt(v['min_us']) + '-' + fmt(v['max_us']):>15} "
                    f"{fmt(v.get('overhead_us'), '+,.0f'):>12} "
                    f"{fmt(v.get('overhead_paired_us'), '+,.0f'):>7} "
                    f"{fmt(v.get('cpu_median_us')):>7} {fmt(v.get('overhead_cpu_us'), '+,.0f'):>6} "
                    f"{v['queries']:>8} {fmt(v.get('postgres_statements'), 'd'):>3} "
                    f"{v['redis_round_trips']:>6}"
                )
            load = req.get("load_average") or {}
            lines.append(
                "(B-A)/(C-A), target ≤ 0.20; B-A and C-A in µs, from the same rounds; load "
                f"average over the rounds min/median/max {fmt(load.get('min'), '.2f')} / "
                f"{fmt(load.get('median'), '.2f')} / {fmt(load.get('max'), '.2f')}"
            )
            if req.get("callers_cost_us"):
                lines.append(
                    "clients/errors recording (B - B-nocallers), µs: "
                    + ", ".join(f"{k} {fmt(v, '+.1f')}" for k, v in req["callers_cost_us"].items())
                )
            names = {
                "": "medians (B - A of the medians)",
                "paired_": "round-paired (median of B_r - A_r)",
                "min_": "best rounds (min - min)",
                "cpu_": "CPU time of this process (medians)",
                "cpu_paired_": "CPU time, round-paired",
            }
            variants = req["variants"]
            lines.append(
                f"  {'estimator':<38} {'detail B-A':>10} {'C-A':>6} {'ratio':>6}   "
                f"{'list B-A':>8} {'C-A':>6} {'ratio':>6}   {'no-tracking ratio':>17}"
            )
            for estimator, ratios in req.get("ratios", {}).items():
                if estimator not in names:
                    continue
                field = f"overhead_{estimator}us"

                def over(name: str, field: str = field, variants: dict = variants) -> Any:
                    return variants.get(name, {}).get(field)

                lines.append(
                    f"  {names[estimator]:<38} {fmt(over('B'), '+,.0f'):>10} "
                    f"{fmt(over('C'), '+,.0f'):>6} {fmt(ratios.get('detail'), '.2f'):>6}   "
                    f"{fmt(over('B-list'), '+,.0f'):>8} {fmt(over('C-list'), '+,.0f'):>6} "
                    f"{fmt(ratios.get('list'), '.2f'):>6}   "
                    f"{fmt(ratios.get('detail_notrack'), '.2f'):>17}"
                )
            unknown, wrong = variants.get("B-unknown"), variants.get("B-wrongsecret")
            if unknown and wrong:
                lines.append(
                    "timing of two refusals (401): unknown public id "
                    f"{fmt(unknown['median_us'])} µs, known id with a wrong secret "
                    f"{fmt(wrong['median_us'])} µs (medians; round-paired difference "
                    f"{fmt(req.get('unknown_minus_wrong_secret_paired_us'), '+,.1f')} µs)"
                )
            if req.get("errors"):
                lines.append(f"errors: {req['errors']}")
        prof = sections.get("profile")
        if prof and "B" in prof:
            top = list(prof["B"].get("crm_keys_functions_us", {}).items())[:8]
            lines.append("profile of B, crm-keys code (inclusive µs/request under the profiler):")
            lines += [f"  {us:7.1f}  {name}" for name, us in top]
        adm = sections.get("admin")
        if adm:
            if adm.get("available"):
                for page in ("list", "list_last_page", "search", "change_busy_key"):
                    p = adm.get(page)
                    if p and p.get("available"):
                        lines.append(
                            f"admin {page}: {p['median_ms']} ms, {p['queries']} queries "
                            f"({adm['keys']:,} keys, {adm['usage_rows']:,} usage rows)"
                        )
                    elif p:
                        lines.append(
                            f"admin {page}: {p.get('error') or 'HTTP ' + str(p.get('status'))}"
                        )
            else:
                lines.append(f"admin: not available ({adm.get('reason') or adm.get('error')})")
        grace = sections.get("grace")
        if grace:
            if grace.get("available"):
                lines.append(
                    f"grace job: {grace['due_keys']:,} due keys in {grace['seconds']} s "
                    f"({grace['revocations_recorded']:,} recorded, {grace['audit_entries']:,} audit "
                    f"entries), second run {grace['second_run_seconds']} s, "
                    f"{grace['queries_for_100_due']} queries for 100 due keys"
                )
            else:
                lines.append(
                    f"grace job: not available ({grace.get('reason') or grace.get('error')})"
                )
        fl = sections.get("flush")
        if fl:
            if fl.get("available"):
                lines.append(
                    f"usage flush: {fl['requests']:,} requests over {fl['keys']:,} keys: record "
                    f"{fl['record_us_per_request']} µs/request, ship {fl['ship_seconds']} s, flush "
                    f"{fl['flush_seconds']} s, exact: {fl['exact']}; record_request CPU "
                    f"{fl.get('record_cpu_us_counts_only')} µs counts only, "
                    f"{fl.get('record_cpu_us_with_callers')} µs with clients/errors"
                )
            else:
                lines.append(f"usage flush: skipped ({fl.get('reason') or fl.get('error')})")
        http = sections.get("http")
        if http:
            pc = http.get("python_client")
            if pc:
                lines.append(
                    f"HTTP load (gunicorn 2 workers, c={http['concurrency']}, python client): "
                    f"{pc['completed']:,} requests, {pc['requests_per_s']} req/s, p50 {pc['p50_ms']} ms, "
                    f"p99 {pc['p99_ms']} ms, non-2xx {pc['non_2xx']}, usage exact: "
                    f"{http.get('usage_exact', http.get('usage_check'))}"
                )
            for name, what in (("wrk", "detail"), ("wrk_list", "list of 50")):
                wrk = http.get(name)
                if wrk:
                    lines.append(
                        f"HTTP load (wrk {wrk.get('seconds')}s, {what}): "
                        f"{wrk.get('requests_per_s')} req/s, p50 {wrk.get('p50_ms')} ms, "
                        f"p99 {wrk.get('p99_ms')} ms, non-2xx {wrk.get('non_2xx')}, "
                        f"usage - reported {wrk.get('usage_minus_reported')}"
                    )
            if http.get("error"):
                lines.append(f"HTTP load: {http['error']}")
        hung = sections.get("hungredis")
        if hung:
            if hung.get("available"):
                for state in ("healthy", "hung"):
                    for name, what in (("limited", "rate-limited key"), ("plain", "plain key")):
                        w = hung.get(f"{state}_{name}") or {}
                        lines.append(
                            f"Redis {state} (wrk {w.get('seconds')}s, {what}): "
                            f"{w.get('requests_per_s')} req/s, p50 {w.get('p50_ms')} ms, "
                            f"p99 {w.get('p99_ms')} ms, non-2xx {w.get('non_2xx')}"
                        )
                for where in ("same", "other"):
                    r = hung.get(f"revoke_{where}_machine") or {}
                    lines.append(
                        f"revoke with Redis hung, CLI on the {where} machine: returned after "
                        f"{r.get('cli_seconds')} s (exit {r.get('cli_exit_status')}); "
                        f"{r.get('stale_200_after_cli_returned')} of "
                        f"{r.get('requests_after_cli_returned')} requests sent after it were "
                        "served (stale)"
                    )
            else:
                lines.append(
                    f"hung Redis: not available ({hung.get('reason') or hung.get('error')})"
                )
    return "\n".join(lines)


def load_note(section: dict[str, Any]) -> str:
    before = (section.get("load_average_before") or [None])[0]
    after = (section.get("load_average_after") or [None])[0]
    return f"load average {fmt(before, '.2f')} -> {fmt(after, '.2f')}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small data, few rounds (smoke run)")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run this section (repeatable)"
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        action="append",
        help="default: sqlite, plus postgres when DATABASE_URL is set",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        help="override CONN_MAX_AGE (what-if; default: the shipped settings)",
    )
    args = parser.parse_args()
    if args.conn_max_age is not None:
        os.environ["BENCH_CONN_MAX_AGE"] = str(args.conn_max_age)
    backends = args.backend or ["sqlite"] + (["postgres"] if os.environ.get("DATABASE_URL") else [])
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "commit": git_describe(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "only": args.only,
        "backends": {},
    }
    for backend in backends:
        results["backends"][backend] = run_backend(backend, args)
    profiles = [RESULTS / f"profile-B-{b}.txt" for b in backends]
    texts = [f"##### {p.stem}\n\n{p.read_text()}" for p in profiles if p.exists()]
    if texts:
        (RESULTS / "profile-B.txt").write_text("\n\n".join(texts))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n# Summary" + summary(results))
    print(f"\nJSON: {RESULTS / 'latest.json'}")
    failed = [b for b, r in results["backends"].items() if r.get("exit_code") != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
