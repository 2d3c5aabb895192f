"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in each app."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_keys.settings")

app = Celery("crm_keys")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _announce_ready(**kwargs: object) -> None:
    """`make run` waits for this file before it prints the login and the demo keys."""
    path = os.environ.get("CRM_KEYS_WORKER_READY_FILE")
    if path:
        Path(path).touch()
