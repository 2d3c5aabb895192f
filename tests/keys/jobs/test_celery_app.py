"""The Celery app's wiring: every scheduled job is a registered task, the rotation and expiry
entries run when the product says, the broker needs no server unless REDIS_URL is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.conf import settings

from crm_keys.celery import app
from keys import tasks
from keys.conf import key_settings
from tests.helpers import ROOT


def test_every_scheduled_job_is_a_registered_task_and_runjob_knows_it():
    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        short = entry["task"].rsplit(".", 1)[1]
        assert short in tasks.JOBS, name


def test_the_rotation_and_expiry_jobs_are_scheduled():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["revoke-grace-ended"]["task"] == "keys.tasks.revoke_grace_ended"
    assert schedule["revoke-grace-ended"]["schedule"] == timedelta(minutes=1)
    assert schedule["record-expiries"]["schedule"] == timedelta(minutes=1)
    assert schedule["daily-reminders"]["task"] == "keys.tasks.daily_reminders"
    assert isinstance(schedule["daily-reminders"]["schedule"], crontab)
    # A run left queued while the worker was down is worth nothing once the next one is due
    # (each run catches up on everything), so stale minute runs expire instead of piling up.
    for name in ("revoke-grace-ended", "record-expiries"):
        assert 0 < schedule[name]["options"]["expires"] <= 60


def test_tasks_are_acknowledged_late_and_the_broker_is_retried_forever():
    assert app.conf.broker_connection_max_retries is None
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    for name in ("revoke_grace_ended", "record_expiries", "daily_reminders"):
        assert tasks.JOBS[name].acks_late is True
        assert hasattr(tasks.JOBS[name], "delay_on_commit")


def test_broker_is_redis_when_configured_else_the_filesystem_under_var():
    var = Path(settings.VAR_DIR).resolve()
    assert Path(app.conf.beat_schedule_filename).resolve().is_relative_to(var)
    if os.environ.get("REDIS_URL"):
        assert app.conf.broker_url == os.environ["REDIS_URL"]
    else:
        assert app.conf.broker_url == "filesystem://"
        options = app.conf.broker_transport_options
        for folder in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            assert Path(options[folder]).resolve().is_relative_to(var), folder
            assert Path(options[folder]).is_dir(), folder


def test_usage_is_flushed_every_10_seconds():
    """What a Redis restart without persistence can lose is what was shipped since the last
    flush (README, Operations): the flush interval bounds it."""
    entry = settings.CELERY_BEAT_SCHEDULE["flush-usage"]
    assert entry["schedule"] == timedelta(seconds=10)
    assert 0 < entry["options"]["expires"] < 10


def test_a_task_whose_worker_died_goes_to_another_worker_within_10_minutes():
    """With Redis, a task whose worker was killed stays unacked for the broker's visibility
    timeout (kombu's default: an hour). Set to 10 minutes: a daily job comes back the same
    morning, and a redelivered send_outbox finds the dead sender's claim on its mail expired."""
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CRM_KEYS_READ_DOTENV": "0",
        "DJANGO_DEBUG": "1",
    }
    code = (
        "import json, crm_keys.settings as s; "
        "print(json.dumps([s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    broker, options = json.loads(result.stdout)
    assert broker == "redis://127.0.0.1:6379/0"
    assert options == {"visibility_timeout": 600}
    assert options["visibility_timeout"] > key_settings.OUTBOX_CLAIM_SECONDS
    for name in ("daily-reminders", "prune-usage"):  # nothing else would run them that day
        assert "expires" not in settings.CELERY_BEAT_SCHEDULE[name].get("options", {})
