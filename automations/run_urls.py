from django.urls import path

from .views import runs

urlpatterns = [
    path("<int:pk>/", runs.run_detail, name="run_detail"),
]
