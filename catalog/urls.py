from django.urls import path

from . import landing, views
from .console import views as console
from .governance import preview_views

urlpatterns = [
    path("", views.home, name="home"),
    path("start/", landing.landing, name="landing"),
    path("automations/<slug:slug>/", views.automation_detail, name="automation_detail"),
    path(
        "automations/<slug:slug>/what-if/",
        preview_views.automation_whatif,
        name="automation_whatif",
    ),
    path(
        "automations/<slug:slug>/diagram.svg",
        preview_views.automation_diagram,
        name="automation_diagram",
    ),
    path(
        "automations/<slug:slug>/labels.jsonl",
        views.automation_labels,
        {"fmt": "openai-chat"},
        name="automation_labels_jsonl",
    ),
    path(
        "automations/<slug:slug>/labels.csv",
        views.automation_labels,
        {"fmt": "csv"},
        name="automation_labels_csv",
    ),
    # The owner console (catalog/console/).
    path(
        "automations/<slug:slug>/settings/",
        console.automation_settings,
        name="automation_settings",
    ),
    path(
        "automations/<slug:slug>/segments/",
        console.automation_segments,
        name="automation_segments",
    ),
    path(
        "automations/<slug:slug>/segments/<slug:key>/",
        console.automation_segment,
        name="automation_segment",
    ),
    path(
        "automations/<slug:slug>/segments/<slug:key>/remove/",
        console.automation_segment_remove,
        name="automation_segment_remove",
    ),
    path("automations/<slug:slug>/modes/", console.automation_modes, name="automation_modes"),
    path(
        "automations/<slug:slug>/switches/",
        console.automation_switches,
        name="automation_switches",
    ),
    path(
        "automations/<slug:slug>/history/",
        console.automation_history,
        name="automation_history",
    ),
]
