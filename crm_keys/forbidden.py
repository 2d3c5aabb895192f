"""The admin's 403 page: in the admin's look, naming the permission that is missing, with the
way back to the admin index (``crm_keys.views.permission_denied`` serves it to staff users).

Which permissions a page needs is read from its URL name, the way the admin names them
(``<app>_<model>_<page>``): the model's admin and the page's actions (``rotate`` needs
``view`` and ``rotate``). Only what the person lacks is listed, by the names the user and group
pickers show. Nothing about the object is shown: one may not be allowed to see it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

TEMPLATE = "admin/permission_denied.html"

# The page (the end of its URL name) -> the actions it needs, as Django permission codename
# prefixes (``view`` -> ``view_<model>``). Django's list and object pages also accept "change".
PAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "changelist": ("view",),
    "change": ("view",),
    "history": ("view",),
    "add": ("add",),
    "delete": ("delete",),
    "rotate": ("view", "rotate"),
    "revoke": ("view", "revoke"),
    "revoke_leaked": ("view", "revoke"),
    "usage_csv": ("view",),
    "shown": ("add",),
    "remove_unused": ("view", "change"),
    "acknowledge": ("view", "handle"),
    "snooze": ("view", "handle"),
    "resolve": ("view", "handle"),
}
# For "handle": the codename is handle_alert, like the others.
_VIEW_OR_CHANGE = {"changelist", "change", "history"}


def _page_of(request: HttpRequest) -> tuple[str, str, str] | None:
    """(app label, model name, page) of an admin URL, or None."""
    try:
        name = resolve(request.path_info).url_name or ""
    except Resolver404:
        return None
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix) and name[len(prefix) :] in PAGE_NEEDS:
            return model._meta.app_label, model._meta.model_name, name[len(prefix) :]
    return None


def missing_permissions(request: HttpRequest) -> tuple[list[tuple[str, str]], bool]:
    """The permissions the page needs that the person lacks, as (name, "app.codename"), and
    whether the page is one no permission opens (keys are never deleted, audit entries never
    changed)."""
    page = _page_of(request)
    if page is None:
        return [], False
    app_label, model_name, page_name = page
    user = request.user
    needed = [f"{action}_{model_name}" for action in PAGE_NEEDS[page_name]]
    if page_name in _VIEW_OR_CHANGE and user.has_perm(f"{app_label}.change_{model_name}"):
        needed = []
    lacking = [codename for codename in needed if not user.has_perm(f"{app_label}.{codename}")]
    names = dict(
        Permission.objects.filter(
            content_type__app_label=app_label, codename__in=lacking
        ).values_list("codename", "name")
    )
    existing = [(names[c], f"{app_label}.{c}") for c in lacking if c in names]
    return existing, len(existing) < len(lacking) or not lacking


def admin_permission_denied(request: HttpRequest) -> HttpResponse:
    missing, nobody = missing_permissions(request)
    context = {
        **admin.site.each_context(request),
        "title": "Permission needed",
        "subtitle": None,
        "missing": missing,
        "nobody": nobody and not missing,
    }
    return render(request, TEMPLATE, context, status=403)
