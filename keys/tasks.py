"""Celery tasks: thin wrappers over services, idempotent, safe to run twice at once."""
