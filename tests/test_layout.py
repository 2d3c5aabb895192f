"""The shape of the house holds: small modules, one reader of API_KEYS, no import-time side
effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGES = ("keys", "audit", "crm", "crm_keys")


def python_files(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_400_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files(package)
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_keys_keeps_at_most_14_modules_at_its_top_level() -> None:
    assert len(list((ROOT / "keys").glob("*.py"))) <= 14


def test_only_keys_conf_reads_the_api_keys_setting() -> None:
    readers = {
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in python_files(package)
        if "settings.API_KEYS" in p.read_text()
    }
    assert readers == {"keys/conf.py"}


def test_importing_settings_creates_no_folder(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {**os.environ, "CRM_KEYS_VAR_DIR": str(var), "DJANGO_DEBUG": "1"}
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)  # the embedded default: SQLite and the filesystem broker under var/
    subprocess.run(
        [sys.executable, "-c", "import crm_keys.settings"], cwd=ROOT, env=env, check=True
    )
    assert not var.exists()
    # Django's startup (any manage.py command) makes them.
    subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "crm_keys.settings"},
        check=True,
        capture_output=True,
    )
    assert (var / "celery-broker" / "out").is_dir()
