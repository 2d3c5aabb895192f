"""`manage.py check --deploy` is clean with production settings."""

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.helpers import ENV_REDIS_URL, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def run_check(extra_env, read_dotenv="0"):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        **extra_env,
    }
    if read_dotenv is not None:
        env["CRM_KEYS_READ_DOTENV"] = read_dotenv
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "SECRET_KEY": "p" * 20 + "-production-secret-key-with-enough-entropy-8f3k2j5h7g9",
    "API_KEY_PEPPER": "pepper-from-a-secret-store",
    "ALLOWED_HOSTS": "crm.example.com",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SITE_URL": "https://crm.example.com",
}


def test_check_deploy_is_clean_with_production_settings():
    result = run_check(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_a_debug_deployment():
    result = run_check({**PRODUCTION, "DJANGO_DEBUG": "1"})
    assert result.returncode != 0
    assert "DEBUG" in result.stdout + result.stderr


def test_missing_secret_key_is_a_clear_error():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run_check(env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


# --- Redis persistence (issue 17, item 4) ---------------------------------------------------


@contextlib.contextmanager
def own_redis(tmp_path, *config):
    """A redis-server of this test's own on a free port (never the shared one), with ``config``."""
    binary = shutil.which("redis-server")
    if binary is None:
        if ENV_REDIS_URL:  # the PostgreSQL + Redis run: the server must be there
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed (the embedded default needs no Redis)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), *config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        assert wait_for(lambda: _pings(client)), "redis-server did not start"
        yield f"redis://:secret-in-url@127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pings(client):
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (["--save", "", "--appendonly", "no"], "keys.W001"),  # the fault-injection run's Redis
        (["--save", "60 1", "--appendonly", "no"], "keys.W002"),  # snapshots only
        (["--save", "", "--appendonly", "yes", "--appendfsync", "no"], "keys.W002"),
        (["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"], None),
        (["--save", "", "--appendonly", "yes", "--appendfsync", "always"], None),
    ],
)
def test_check_deploy_warns_about_a_redis_that_forgets(tmp_path, config, expected):
    with own_redis(tmp_path, *config) as url:
        result = run_check({**PRODUCTION, "REDIS_URL": url})
    output = result.stdout + result.stderr
    assert "secret-in-url" not in output
    if expected is None:
        assert result.returncode == 0, output
        assert "no issues" in result.stdout
    else:
        assert result.returncode != 0
        assert expected in output and "appendfsync everysec" in output
        assert expected != "keys.W001" or "neither AOF nor RDB" in output


def test_check_deploy_says_when_it_cannot_reach_redis():
    result = run_check({**PRODUCTION, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert result.returncode != 0
    assert "keys.W003" in result.stdout + result.stderr


def test_check_deploy_warns_when_the_pepper_falls_back_to_the_secret_key():
    """Without API_KEY_PEPPER the key hashes use SECRET_KEY: rotating the secret key (routine
    after a leak) would then invalidate every API key at once."""
    env = {k: v for k, v in PRODUCTION.items() if k != "API_KEY_PEPPER"}
    result = run_check(env)
    assert result.returncode != 0
    assert "API_KEY_PEPPER is not set" in result.stdout + result.stderr


def _stray_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DJANGO_DEBUG=1\nALLOWED_HOSTS=*\n")
    return {"CRM_KEYS_DOTENV": str(dotenv)}


@pytest.mark.parametrize("entry_point", ["crm_keys.wsgi", "crm_keys.celery"])
def test_a_stray_dotenv_does_not_turn_debug_on_in_the_serving_processes(tmp_path, entry_point):
    """gunicorn (the WSGI app) and Celery never read a .env nobody asked for."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        **PRODUCTION,
        **_stray_dotenv(tmp_path),
    }
    code = f"import {entry_point}, django.conf as c; print('DEBUG', c.settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def test_a_stray_dotenv_read_by_the_command_line_is_flagged_by_check_deploy(tmp_path):
    """manage.py reads the development .env (README's commands work as written); on a server,
    `check --deploy` then says loudly that a .env was read and DEBUG is on."""
    result = run_check({**PRODUCTION, **_stray_dotenv(tmp_path)}, read_dotenv=None)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DEBUG" in output and str(tmp_path / ".env") in output


def test_a_dotenv_read_on_purpose_is_flagged_by_check_deploy(tmp_path):
    result = run_check({**PRODUCTION, **_stray_dotenv(tmp_path)}, read_dotenv="1")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DEBUG" in output and str(tmp_path / ".env") in output


def test_check_deploy_warns_without_site_url():
    """Alert and reminder e-mails link to the admin from SITE_URL: without it the links would be
    relative paths nobody can open from a mail."""
    env = {k: v for k, v in PRODUCTION.items() if k != "SITE_URL"}
    result = run_check(env)
    assert result.returncode != 0
    assert "SITE_URL is not set" in result.stdout + result.stderr
