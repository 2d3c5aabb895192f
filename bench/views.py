"""The deployed ContactViewSet behind other guards, for comparison (bench URLconf only)."""

from rest_framework.permissions import AllowAny
from rest_framework_api_key.permissions import HasAPIKey

from crm.api import ContactViewSet


class OpenContactViewSet(ContactViewSet):
    """A: the same view with no authentication and no permission at all (the baseline)."""

    authentication_classes = []
    permission_classes = [AllowAny]


class DrfApiKeyContactViewSet(ContactViewSet):
    """C: the same view behind djangorestframework-api-key's HasAPIKey."""

    authentication_classes = []
    permission_classes = [HasAPIKey]
