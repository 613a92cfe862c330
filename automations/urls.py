from django.urls import path

from .views import review

app_name = "review"
urlpatterns = [
    path("", review.home, name="home"),
    path("<slug:slug>/next/", review.next_task, name="next"),
    path("tasks/<int:pk>/", review.task_page, name="task"),
    path("tasks/<int:pk>/decide/", review.decide, name="decide"),
]
