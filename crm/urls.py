"""Routes /api/v1/<module>/ for every module in the registry."""

from django.utils.module_loading import import_string
from rest_framework.routers import SimpleRouter

from .modules import MODULES

router = SimpleRouter()
for module in MODULES.values():
    router.register(module.name, import_string(module.viewset), basename=module.name)

urlpatterns = router.urls
