"""The CRM data in the admin (for looking at what the API serves)."""

from __future__ import annotations

from django.contrib import admin

from .models import Contact, Lead, Opportunity


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "email", "company", "city", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["first_name", "last_name", "email", "company"]


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "source", "status", "estimated_value", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["first_name", "last_name", "email", "company"]
    raw_id_fields = ["contact"]


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ["name", "stage", "amount", "currency", "probability", "close_date"]
    list_filter = ["stage", "currency"]
    search_fields = ["name"]
    raw_id_fields = ["contact", "lead"]
