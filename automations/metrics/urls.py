from django.urls import path

from . import views

app_name = "metrics"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("rebuild/", views.rebuild, name="rebuild"),
    path("rebuilds/<int:pk>/", views.rebuild_progress, name="rebuild_progress"),
    path("automations/<slug:slug>/", views.automation, name="automation"),
]
