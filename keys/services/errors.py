"""What a refused change raises: each carries a message fit to show an admin or a CLI user."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class KeyServiceError(Exception):
    """A refused change, with a message fit to show an admin or CLI user."""


class KeyValidationError(KeyServiceError):
    """Input the model refused; ``errors`` maps field names to their messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> KeyValidationError:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {}
        return cls(" ".join(exc.messages), errors)


class KeyStateError(KeyServiceError):
    pass


class KeyPermissionError(KeyServiceError):
    """The acting person may not do this (a Django permission they lack)."""
