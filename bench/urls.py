"""The deployed URLconf, unchanged and first, plus /api/bench-a/ and /api/bench-c/.

The extra routes live under /api/ so the same middleware (headers, usage) runs for every
variant; only crm-keys' own authentication marks a request for usage counting.
"""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from crm_keys.urls import handler404, handler500
from crm_keys.urls import urlpatterns as deployed

from .views import DrfApiKeyContactViewSet, OpenContactViewSet

_open = SimpleRouter()
_open.register("contacts", OpenContactViewSet, basename="bench-a-contacts")
_drf_api_key = SimpleRouter()
_drf_api_key.register("contacts", DrfApiKeyContactViewSet, basename="bench-c-contacts")

urlpatterns = [
    *deployed,
    path("api/bench-a/", include(_open.urls)),
    path("api/bench-c/", include(_drf_api_key.urls)),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
