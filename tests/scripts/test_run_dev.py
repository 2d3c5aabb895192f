"""`make run` (scripts/run-dev.sh) as a developer meets it: the login and the demo keys are the
last lines once the web app and the worker are up, one log line per request, and Ctrl-C stops
everything with exit status 0 (so `make` prints no "Error 143")."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, wait_for

KEY_RE = re.compile(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def dev_env(tmp_path: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "BIN": str(Path(sys.executable).parent),
        "CRM_KEYS_VAR_DIR": str(tmp_path / "var"),
        "CRM_KEYS_READ_DOTENV": "0",
        "DJANGO_DEBUG": "1",
        "SECRET_KEY": "dev-secret-key-for-this-test-only",
        "API_KEY_PEPPER": "dev-pepper",
        "PORT": str(free_port()),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    return env


class Output:
    """Collects a process's output lines in a thread."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


def test_make_run_prints_the_login_last_logs_one_line_per_request_and_stops_cleanly(
    dev_env: dict[str, Any],
) -> None:
    process = subprocess.Popen(
        ["bash", "scripts/run-dev.sh"],
        cwd=ROOT,
        env=dev_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
        # A terminal's foreground job has SIGINT at its default; a job started in the
        # background of a non-interactive shell (a CI runner) inherits it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out = Output(process)
    try:
        assert wait_for(lambda: any(line.startswith("Try: curl") for line in out.lines)), out.text()
        site = f"http://127.0.0.1:{dev_env['PORT']}"
        lines = [line for line in out.lines if line.strip()]
        started = next(i for i, line in enumerate(lines) if "Starting development server" in line)
        login = next(i for i, line in enumerate(lines) if line.startswith("Log in: "))
        assert started < login  # printed after the server is up...
        assert lines[-1].startswith("Try: curl")  # ...and last
        assert f"Log in: {site}/admin/  username: admin  password: intellicon-demo" in lines[login]
        keys = KEY_RE.findall("\n".join(lines[login:]))
        assert len(set(keys)) == 3

        before = len(out.lines)
        assert get(f"{site}/no-such-page/") == 404
        assert get(f"{site}/api/v1/contacts/") == 401
        assert get(f"{site}/api/v1/contacts/", Authorization=f"Bearer {keys[1]}") == 200
        assert wait_for(lambda: sum("/api/v1/contacts/" in line for line in out.lines) >= 2)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        status = process.wait(timeout=120)
        out.thread.join(timeout=10)
    requests = out.lines[before:]
    assert sum("/no-such-page/" in line for line in requests) == 1, out.text()
    assert sum("/api/v1/contacts/" in line for line in requests) == 2, out.text()
    assert "Traceback" not in out.text()
    assert status == 0, out.text()
    assert out.lines[-1] == "Stopped."
    # Nothing it started is left running.
    assert subprocess.run(["pgrep", "-g", str(process.pid)], check=False).returncode == 1
