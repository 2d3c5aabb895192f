"""Section "http": gunicorn (2 workers) on 127.0.0.1 with the benchmark database, a bounded
load generator, then the usage flush and an exact count check."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import Fixture
from bench.jobs import flush_until, usage_total

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _raw_request(path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _one(port: int, raw: bytes, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(raw)
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return int(data[9:12]) if data[:5] == b"HTTP/" else 0


async def _load(port: int, raw: bytes, total: int, concurrency: int, timeout: float) -> dict:
    issued = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures = 0

    async def worker() -> None:
        nonlocal issued, failures
        while issued < total:
            issued += 1
            t0 = time.perf_counter()
            try:
                status = await _one(port, raw, timeout)
            except (OSError, TimeoutError):
                failures += 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    ok = sum(c for s, c in statuses.items() if 200 <= s < 300)
    return {
        "requests": issued,
        "completed": len(latencies),
        "connection_failures": failures,
        "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": pct(0.50) if latencies else None,
        "p99_ms": pct(0.99) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": len(latencies) - ok + failures,
    }


def _wait_ready(port: int, timeout: float) -> bool:
    raw = _raw_request("/api/v1/key/", port, {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if asyncio.run(_one(port, raw, 2.0)) in (401, 200):
                return True
        except (OSError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def _parse_wrk(text: str) -> dict[str, Any]:
    def unit_ms(value: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s|m)", value)
        if not m:
            return float("nan")
        n, unit = float(m.group(1)), m.group(2)
        return round(n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 2)

    out: dict[str, Any] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+\w+)", text):
        out["completed"] = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["requests_per_s"] = float(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M):
            out[f"p{pct}_ms"] = unit_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else "none"
    return out


def run(fx: Fixture, *, requests: int, concurrency: int, wrk_seconds: int, log: Callable) -> dict:
    from django.conf import settings

    from keys.conf import key_settings

    port = free_port()
    log_path = Path(settings.VAR_DIR) / f"gunicorn-{os.environ.get('BENCH_BACKEND', 'sqlite')}.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    cmd = [
        gunicorn,
        "--workers",
        "2",
        "--bind",
        f"{HOST}:{port}",
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
        "--no-control-socket",  # never take over another instance's (see README)
        "--graceful-timeout",
        "15",
        "--timeout",
        "60",
        "crm_keys.wsgi:application",
    ]
    result: dict[str, Any] = {"workers": 2, "concurrency": concurrency, "port": port}
    ship_interval = float(key_settings.USAGE_SHIP_INTERVAL)
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        try:
            if not _wait_ready(port, 30):
                result["error"] = f"gunicorn did not answer within 30s (see {log_path})"
                log("  http: " + result["error"])
                return result
            path = f"/api/v1/contacts/{fx.contact_id}/"
            before = usage_total([fx.crm_key_http_id])
            raw = _raw_request(path, port, {"Authorization": f"Bearer {fx.crm_key_http}"})
            load = asyncio.run(
                asyncio.wait_for(_load(port, raw, requests, concurrency, 10.0), timeout=900)
            )
            result["python_client"] = load
            log(
                f"  http (python client): {load['completed']:,} requests in {load['seconds']}s = "
                f"{load['requests_per_s']} req/s, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, "
                f"non-2xx {load['non_2xx']}"
            )
            wrk_before = {
                "detail": usage_total([fx.crm_key_wrk_id]),
                "list": usage_total([fx.crm_key_wrk_list_id]),
            }
            if wrk_seconds and shutil.which("wrk"):
                for name, wrk_path, key in (
                    ("wrk", path, fx.crm_key_wrk),
                    ("wrk_list", "/api/v1/contacts/", fx.crm_key_wrk_list),
                ):
                    result[name] = {"path": wrk_path, **_wrk(port, wrk_path, key, wrk_seconds)}
                    log(f"  http ({name} {wrk_seconds}s): {result[name]}")
            # Let the workers' usage shippers run, then stop them gracefully (shutdown ships
            # what is left, where the recorder does that).
            time.sleep(max(2.0, 3 * ship_interval))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    expected = result["python_client"]["completed"]
    total, _seconds, calls = flush_until([fx.crm_key_http_id], before + expected, timeout=30)
    counted = total - before
    result["usage_counted"] = counted
    result["usage_exact"] = counted == expected
    result["flush_calls"] = calls
    log(
        f"  http: usage after flush {counted:,} of {expected:,} sent "
        f"({'exact' if counted == expected else 'NOT exact'})"
    )
    for name, key_id in (("wrk", fx.crm_key_wrk_id), ("wrk_list", fx.crm_key_wrk_list_id)):
        if name in result and "completed" in result[name]:
            kind = "detail" if name == "wrk" else "list"
            wrk_total = usage_total([key_id]) - wrk_before[kind]
            # wrk stops on a clock: requests in flight at the stop are served (and counted)
            # but not reported, so up to `concurrency` more than wrk's figure is correct.
            result[name]["usage_counted"] = wrk_total
            result[name]["usage_minus_reported"] = wrk_total - result[name]["completed"]
    return result


def _wrk(port: int, path: str, key: str, seconds: int, concurrency: int = 16) -> dict[str, Any]:
    """One wrk run (2 threads) against ``path`` with ``key``; its parsed figures."""
    cmd = [
        "wrk",
        "-t2",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-H",
        f"Authorization: Bearer {key}",
        f"http://{HOST}:{port}{path}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return {"seconds": seconds, **_parse_wrk(done.stdout)}
