"""scripts/run-web.sh, the documented way to run the web app under gunicorn: two instances on
one host each keep a control socket of their own (gunicorn's default path is shared: the
second instance takes it over and removes it when it exits)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, process_env, wait_for

SCRIPT = ROOT / "scripts" / "run-web.sh"
GUNICORNC = Path(shutil.which("gunicornc", path=str(ROOT / ".venv" / "bin")) or "gunicornc")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a Unix socket path must stay under 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="web-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start(var: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = process_env(
        var, BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", HOME=str(var / "home"), **extra
    )
    env.pop("XDG_RUNTIME_DIR", None)  # gunicorn's default socket would go there
    server = subprocess.Popen(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert wait_for(lambda: answers(port) or server.poll() is not None)
    assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
    return server


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/key/", timeout=2)
    except urllib.error.HTTPError:
        return True  # 401: it is up
    except OSError:
        return False
    return True


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def master_pid(socket_path: Path) -> int:
    result = subprocess.run(
        [str(GUNICORNC), "-s", str(socket_path), "-c", "show all", "-j"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)["arbiter"]["pid"]


def test_two_instances_keep_their_own_control_sockets(short_dir):
    first_port, second_port = free_port(), free_port()
    first = start(short_dir, first_port)
    try:
        second = start(short_dir, second_port)
        try:
            first_socket = short_dir / f"gunicorn-127.0.0.1_{first_port}.ctl"
            second_socket = short_dir / f"gunicorn-127.0.0.1_{second_port}.ctl"
            assert master_pid(first_socket) == first.pid
            assert master_pid(second_socket) == second.pid
        finally:
            stop(second)
        assert not second_socket.exists()
        assert master_pid(first_socket) == first.pid  # still there, still the first one's
        assert not (short_dir / "home" / ".gunicorn").exists()  # the shared default is unused
    finally:
        stop(first)
    assert not first_socket.exists()


def test_the_control_socket_can_be_turned_off(short_dir):
    server = start(short_dir, free_port(), GUNICORN_CONTROL_SOCKET="off")
    try:
        assert list(short_dir.glob("*.ctl")) == []
        assert not (short_dir / "home" / ".gunicorn").exists()
    finally:
        stop(server)
