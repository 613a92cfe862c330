from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("automations/<slug:slug>/", views.automation_detail, name="automation_detail"),
]
