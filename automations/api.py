"""The JSON API (contracts section 3), built with django-ninja."""

from ninja import NinjaAPI

api = NinjaAPI(title="Handrail API", version="1", urls_namespace="api")
