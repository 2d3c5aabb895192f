"""Routes /api/v1/<module>/ for every module in the registry. The trailing slash is optional:
a redirect to the slashed URL would drop a write's body."""

from django.utils.module_loading import import_string
from rest_framework.routers import SimpleRouter

from .modules import MODULES

router = SimpleRouter()
router.trailing_slash = "/?"  # the documented way: the constructor only takes True or False
for module in MODULES.values():
    router.register(module.name, import_string(module.viewset), basename=module.name)

urlpatterns = router.urls
