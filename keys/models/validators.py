"""The rules of single text and number fields of a key, as Django validators (the model's fields
carry them, so the key page, the services and the CLI all refuse the same values)."""

from __future__ import annotations

import math
import unicodedata

from django.core.exceptions import ValidationError

ERROR_RATE_MESSAGE = "The error-rate threshold is a percentage above 0 and at most 100."
# Zero-width non-joiner and joiner: Persian and Indic words and emoji sequences need them.
_FORMAT_CHARACTERS_KEPT = frozenset({"\u200c", "\u200d"})


def validate_finite(value: float) -> None:
    """Kept for migration 0010_i12 (the error rate now has ``validate_error_rate``, which
    refuses NaN and infinities too)."""
    if not math.isfinite(value):  # NaN passes every comparison, so Min/Max cannot refuse it
        raise ValidationError(ERROR_RATE_MESSAGE, code="not_finite")


def validate_no_control_characters(value: str) -> None:
    """No C0 or C1 control character (Unicode Cc): a name is printed in terminals by the CLI,
    where ESC or CSI would be a command to the terminal."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValidationError("The name must not contain control characters.", code="control")


def validate_no_format_characters(value: str) -> None:
    """No invisible formatting character (Unicode Cf) but the two joiners: a right-to-left
    override makes "\u202egnp.exe" read "exe.png", zero-width spaces make two names that look
    the same differ, and neither shows in the admin or the CLI."""
    if any(unicodedata.category(c) == "Cf" and c not in _FORMAT_CHARACTERS_KEPT for c in value):
        raise ValidationError(
            "The name must not contain invisible formatting characters (such as right-to-left "
            "overrides or zero-width spaces).",
            code="format",
        )


def validate_no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("The description must not contain NUL characters.", code="nul")


def validate_error_rate(value: float) -> None:
    """0 < value <= 100: a threshold of 0 would call every error a spike (and NaN compares
    false with everything, so it is refused here too)."""
    if not 0 < value <= 100:
        raise ValidationError(ERROR_RATE_MESSAGE, code="error_rate")


def validate_not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("The key needs a name.", code="blank")
