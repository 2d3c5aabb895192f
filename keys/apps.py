from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


def make_var_dirs() -> None:
    """The folders under CRM_KEYS_VAR_DIR that the SQLite database, the filesystem broker and
    static files need (created here, at startup, rather than when settings are imported)."""
    folders = [Path(settings.VAR_DIR), Path(settings.STATIC_ROOT)]
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folders += [
        Path(options[name])
        for name in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
        if name in options
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "API Keys"

    def ready(self) -> None:
        # Imported here, not at the top: they need the app registry ready.
        from . import checks  # noqa: F401 - registers the deployment checks
        from .api import (
            denials,
            protections,
            schema,  # noqa: F401 - registers the OpenAPI authentication extension
        )
        from .usage import recorder

        make_var_dirs()
        recorder.install_process_hooks()
        for hook in (denials.write_pending, protections.failures.publish_known_good):
            if hook not in recorder.after_ship:
                recorder.after_ship.append(hook)
