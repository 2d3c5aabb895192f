from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)

from keys.api.views import DocsView, KeyInfoView, SchemaView

admin.site.site_header = "Intellicon CRM Admin"
admin.site.site_title = "Intellicon CRM Admin"
admin.site.index_title = "Administration"
# "View site" would lead to a 404 (there is no public site): the link is "API docs" instead.
admin.site.site_url = "/api/docs/"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Under /api/ the trailing slash is optional (a redirect would drop a write's body).
    re_path(r"^api/v1/key/?$", KeyInfoView.as_view(), name="api-key-info"),
    path("api/v1/", include("crm.urls")),
    # JSON like every response under /api/ (YAML with ?format=yaml).
    re_path(
        r"^api/schema/?$",
        SchemaView.as_view(
            renderer_classes=[
                OpenApiJsonRenderer,
                OpenApiJsonRenderer2,
                OpenApiYamlRenderer,
                OpenApiYamlRenderer2,
            ]
        ),
        name="api-schema",
    ),
    re_path(r"^api/docs/?$", DocsView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "crm_keys.views.bad_request"
handler403 = "crm_keys.views.permission_denied"
handler404 = "crm_keys.views.not_found"
handler500 = "crm_keys.views.server_error"
