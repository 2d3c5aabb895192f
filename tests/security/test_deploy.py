"""`manage.py check --deploy` is clean with production settings."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(extra_env):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "CRM_KEYS_READ_DOTENV": "0",
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        **extra_env,
    }
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
