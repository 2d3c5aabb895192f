"""The CRM API's serializers: strict about types (text is a JSON string, a link a whole-number
id), their fields worked out once per class."""

from __future__ import annotations

import copy
from typing import Any

from django.db import models
from rest_framework import serializers

from .models import Contact, Lead, Opportunity


class StrictCharField(serializers.CharField):
    """Text where the schema says string: DRF's CharField would turn 123 into "123"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(StrictCharField, serializers.EmailField):
    pass


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """A link to another record by its id: a whole number, as ``probability`` takes it (DRF's
    own turned 2.999 into 2 and true into 1, linking the wrong record)."""

    default_error_messages = {
        **serializers.PrimaryKeyRelatedField.default_error_messages,
        "incorrect_type": "A record id (a whole number) is required.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            number = serializers.IntegerField().to_internal_value(data)
        except serializers.ValidationError:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(number)


_FIELDS: dict[type, dict[str, serializers.Field]] = {}


class CRMSerializer(serializers.ModelSerializer):
    """Strict text fields, and fields worked out from the model once per class, not on every
    request (DRF introspects the model's fields, validators and constraints each time it
    instantiates a serializer: a fifth of a detail request). Each serializer still gets its own
    copies, as with DRF's declared fields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
    }
    serializer_related_field = IdRelatedField

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = _FIELDS.get(type(self))
        if fields is None:
            fields = _FIELDS[type(self)] = super().get_fields()
        return copy.deepcopy(fields)


class ContactSerializer(CRMSerializer):
    """A person at a customer or prospect. `id`, `created_at` and `updated_at` are set by
    the CRM."""

    class Meta:
        model = Contact
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "company",
            "title",
            "city",
            "country",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class LeadSerializer(CRMSerializer):
    """A prospective customer not yet qualified, with where it came from (`source`) and how
    far it has got (`status`); `contact` links it to a contact by id."""

    class Meta:
        model = Lead
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "company",
            "source",
            "status",
            "estimated_value",
            "contact",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


CURRENCY_HELP = (
    "ISO 4217 currency code: three letters, e.g. USD or EUR (stored in capitals; default USD)."
)


class OpportunitySerializer(CRMSerializer):
    """A possible sale: its `amount` in `currency`, its `stage`, the `probability` of winning
    it (0 to 100), and the contact and lead it comes from (by id)."""

    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$",
        max_length=3,
        required=False,
        help_text=CURRENCY_HELP,
        error_messages={key: CURRENCY_HELP for key in ("invalid", "blank", "max_length")},
    )

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "contact",
            "lead",
            "amount",
            "currency",
            "stage",
            "probability",
            "close_date",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_currency(self, value: str) -> str:
        return value.upper()

    def validate_probability(self, value: int) -> int:
        if not 0 <= value <= 100:
            raise serializers.ValidationError("Probability is a percentage between 0 and 100.")
        return value
