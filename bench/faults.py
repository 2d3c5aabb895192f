"""Section "hungredis": what a hung Redis (alive, not answering: SIGSTOP) does to requests and
to a revocation.

The section starts its own redis-server on a free port (never the machine's shared one) and
gunicorn (2 workers) on the benchmark database with REDIS_URL pointing at it. Then:

1. wrk 5 s with a key that has a per-key rate limit (a Redis call on every request) and with a
   plain key: Redis healthy.
2. SIGSTOP Redis; the same two wrk runs (10 s): throughput and p50/p99 with Redis hung.
3. Still hung, the revocation: a client keeps calling the API with a key the workers have
   cached while ``manage.py apikey revoke`` runs, once with the same var dir as the workers
   ("same machine") and once with another ("other machine": only Redis could carry the
   change). Counted: 200s to requests sent after the command returned (stale), its duration
   and exit status.
4. SIGCONT, stop everything.

PostgreSQL only: several machines share a database only there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import Fixture
from bench.http_load import HOST, _one, _raw_request, _wait_ready, _wrk, free_port

ROOT = Path(__file__).resolve().parent.parent


def _start_redis(port: int, folder: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host=HOST, port=port, socket_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            return server
        except redis.RedisError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def _keys(fx: Fixture) -> dict[str, Any]:
    from audit.actors import Actor
    from keys import services

    actor = Actor(label="bench")
    scopes = {"contacts": ["view"]}
    limited = services.key_generate(name="bench hung: rate-limited", scopes=scopes, actor=actor)
    services.key_update(key=limited.key, data={"rate_limit_per_minute": 1_000_000_000}, actor=actor)
    return {
        "limited": limited.full_key,
        "plain": services.key_generate(name="bench hung: plain", scopes=scopes, actor=actor),
        "same": services.key_generate(name="bench hung: same", scopes=scopes, actor=actor),
        "other": services.key_generate(name="bench hung: other", scopes=scopes, actor=actor),
    }


async def _hammer(port: int, key: str, stop: asyncio.Event, concurrency: int = 4) -> list:
    """(sent at, status) of every request until ``stop``; each request on its own connection."""
    raw = _raw_request("/api/v1/key/", port, {"Authorization": f"Bearer {key}"})
    seen: list[tuple[float, int]] = []

    async def worker() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = await _one(port, raw, 10.0)
            except (OSError, TimeoutError):
                status = 0
            seen.append((sent, status))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


async def _revoke_while_hammering(port: int, key: Any, env: dict[str, str]) -> dict[str, Any]:
    stop = asyncio.Event()
    hammer = asyncio.create_task(_hammer(port, key.full_key, stop))
    await asyncio.sleep(1.0)
    started = time.monotonic()
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "apikey",
        "revoke",
        key.key.public_id,
        "--yes",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await cli.communicate()
    returned = time.monotonic()
    await asyncio.sleep(3.0)
    stop.set()
    seen = await hammer
    after = [status for sent, status in seen if sent > returned]
    return {
        "cli_seconds": round(returned - started, 2),
        "cli_exit_status": cli.returncode,
        "cli_stderr": err.decode(errors="replace").strip()[-400:],
        "served_while_cli_ran": sum(1 for s, st in seen if started <= s <= returned and st == 200),
        "requests_after_cli_returned": len(after),
        "stale_200_after_cli_returned": sum(1 for st in after if st == 200),
        "statuses_after": {str(st): after.count(st) for st in sorted(set(after))},
    }


def run(fx: Fixture, *, seconds: int, log: Callable[[str], None]) -> dict[str, Any]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return {"available": False, "reason": "needs PostgreSQL (run with DATABASE_URL)"}
    if not shutil.which("redis-server") or not shutil.which("wrk"):
        return {"available": False, "reason": "needs redis-server and wrk on the PATH"}
    folder = Path(tempfile.mkdtemp(prefix="crm-keys-bench-hung-"))
    redis_port, port = free_port(), free_port()
    redis_server = _start_redis(redis_port, folder)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log_path = folder / "gunicorn.log"
    result: dict[str, Any] = {"workers": 2, "redis_port": redis_port}
    with open(log_path, "w") as log_file:
        web = subprocess.Popen(
            [
                *(gunicorn, "-w", "2", "-b", f"{HOST}:{port}", "--timeout", "60"),
                *("--log-level", "warning", "crm_keys.wsgi:application"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        stopped = False
        try:
            if not _wait_ready(port, 30):
                return {"available": False, "error": f"gunicorn did not start ({log_path})"}
            keys = _keys(fx)
            path = f"/api/v1/contacts/{fx.contact_id}/"
            for name in ("limited", "plain"):
                key = keys[name] if name == "limited" else keys[name].full_key
                result[f"healthy_{name}"] = _wrk(port, path, key, max(2, seconds // 2))
                log(f"  hungredis healthy {name}: {result[f'healthy_{name}']}")
            for name in ("same", "other"):  # the workers cache these keys now
                _wrk(port, "/api/v1/key/", keys[name].full_key, 1)
            os.kill(redis_server.pid, signal.SIGSTOP)
            stopped = True
            time.sleep(0.5)
            for name in ("limited", "plain"):
                key = keys[name] if name == "limited" else keys[name].full_key
                result[f"hung_{name}"] = _wrk(port, path, key, seconds)
                log(f"  hungredis hung {name}: {result[f'hung_{name}']}")
            other_var = folder / "other-machine"
            other_var.mkdir()
            for name, cli_env in (
                ("same", env),
                ("other", {**env, "CRM_KEYS_VAR_DIR": str(other_var)}),
            ):
                outcome = asyncio.run(_revoke_while_hammering(port, keys[name], cli_env))
                result[f"revoke_{name}_machine"] = outcome
                log(f"  hungredis revoke ({name} machine): {outcome}")
        finally:
            if stopped:
                os.kill(redis_server.pid, signal.SIGCONT)
            web.send_signal(signal.SIGTERM)
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                web.kill()
            redis_server.terminate()
            redis_server.wait(timeout=10)
    result["available"] = True
    return result
