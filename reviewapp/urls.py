from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from automations.api import api
from automations.metrics.exposition import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("review/", include("automations.urls")),
    path("runs/", include("automations.run_urls")),
    path("audit/", include("catalog.audit.urls")),
    path("dashboards/", include("automations.metrics.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("catalog.urls")),
]

if settings.HANDRAIL_DEMO_RECEIVER:
    from automations import demo_receiver

    urlpatterns[-1:-1] = [
        path("demo/hooks/", demo_receiver.recent, name="demo_hooks"),
        path("demo/hooks/<slug:name>", demo_receiver.receive, name="demo_hook_receive"),
    ]
