"""Admin > Users and Groups: the permission picker offers only permissions one may grant.

Keys and people share one permission model (a module's actions are its model's permissions;
roles are groups), so this picker is where roles are made. Permissions of Django's internal
tables (the admin's own log, content types, sessions, permissions themselves) grant nothing
anyone should hold; the app's own internal models define none (``Meta.default_permissions``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from crm_keys.adminguard import GuardedChangelistMixin

INTERNAL = Q(content_type__app_label__in=["admin", "contenttypes", "sessions"]) | Q(
    content_type__app_label="auth", content_type__model="permission"
)


def grantable_permissions() -> QuerySet[Permission]:
    return Permission.objects.exclude(INTERNAL).select_related("content_type")


class GrantablePermissionsMixin:
    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ("permissions", "user_permissions"):
            kwargs["queryset"] = grantable_permissions()
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class PeopleUserAdmin(GuardedChangelistMixin, GrantablePermissionsMixin, UserAdmin):
    pass


class PeopleGroupAdmin(GuardedChangelistMixin, GrantablePermissionsMixin, GroupAdmin):
    pass


for model, model_admin in ((User, PeopleUserAdmin), (Group, PeopleGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
