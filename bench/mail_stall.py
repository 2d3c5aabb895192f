"""How long an unrelated revoke takes while the mail server stalls (issue 17, item 1).

A fake mail server accepts connections and never answers. `runjob daily_reminders` runs with
the SMTP backend pointed at it (one key due for an expiry reminder); once it has connected,
`apikey revoke` of another key runs from the command line and is timed.

    .venv/bin/python bench/mail_stall.py                  # SQLite under a temporary folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/mail_stall.py

The PostgreSQL run drops and creates its own database, crm_keys_mail_stall. Not part of
`make bench` (each run waits for a stall of STALL seconds).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STALL = int(os.environ.get("STALL", "60"))


def stalling_server() -> tuple[int, threading.Event, threading.Event]:
    """A TCP server that accepts and never answers; closes its connections after STALL s."""
    listener = socket.create_server(("127.0.0.1", 0))
    connected, done = threading.Event(), threading.Event()

    def serve() -> None:
        conns = []
        listener.settimeout(0.2)
        deadline = None
        while not done.is_set():
            try:
                conn, _ = listener.accept()
                conns.append(conn)
                connected.set()
                deadline = deadline or time.monotonic() + STALL
            except TimeoutError:
                pass
            if deadline and time.monotonic() > deadline:
                break
        for conn in conns:
            conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], connected, done


def main() -> None:
    var = Path(tempfile.mkdtemp(prefix="mail-stall-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        "CRM_KEYS_READ_DOTENV": "0",
        "CRM_KEYS_VAR_DIR": str(var),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "mail-stall-bench-secret-key",
        "API_KEY_ALERT_RECIPIENTS": "ops@example.com",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
    }
    env.pop("REDIS_URL", None)
    backend = "sqlite"
    if env.get("DATABASE_URL", "").startswith("postgres"):
        backend = "postgresql"
        server = env["DATABASE_URL"].rsplit("/", 1)[0]
        subprocess.run(
            [
                "psql",
                env["DATABASE_URL"],
                "-q",
                "-c",
                "DROP DATABASE IF EXISTS crm_keys_mail_stall",
            ],
            check=True,
        )
        subprocess.run(
            ["psql", env["DATABASE_URL"], "-q", "-c", "CREATE DATABASE crm_keys_mail_stall"],
            check=True,
        )
        env["DATABASE_URL"] = f"{server}/crm_keys_mail_stall"

    def manage(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            **kwargs,  # type: ignore[arg-type]
        )

    manage("migrate", "--noinput", check=True)
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    manage("apikey", "create", "--name", "Due", "--preset", "website-form", "--expires", soon)
    manage("apikey", "create", "--name", "Unrelated", "--preset", "website-form")

    port, connected, done = stalling_server()
    env["EMAIL_PORT"] = str(port)
    job = subprocess.Popen(
        [sys.executable, "manage.py", "runjob", "daily_reminders"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not connected.wait(120):
        sys.exit("the job never connected to the mail server")
    time.sleep(0.5)  # the job is now waiting on the mail server
    started = time.monotonic()
    revoke = manage("apikey", "revoke", "2", "--yes")
    took = time.monotonic() - started
    done.set()
    job.wait(timeout=STALL + 60)
    print(f"backend: {backend}; stall: {STALL}s")
    print(f"apikey revoke (unrelated key) during the stall: {took:.1f}s, exit {revoke.returncode}")
    if revoke.returncode:
        print("  " + (revoke.stderr.strip().splitlines() or [""])[-1])
    print(f"runjob daily_reminders: exit {job.returncode}")


if __name__ == "__main__":
    main()
