from django.urls import path

from . import landing, views
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
]
