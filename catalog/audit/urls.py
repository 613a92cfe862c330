from django.urls import path

from .views import items, samples, trail

app_name = "audit"
urlpatterns = [
    path("", samples.sample_list, name="samples"),
    path("samples/new/", samples.sample_new, name="sample_new"),
    path("samples/<int:pk>/", samples.sample_detail, name="sample"),
    path("samples/<int:pk>/report/", samples.sample_report_page, name="report"),
    path("samples/<int:pk>/report.csv", samples.sample_report_csv, name="report_csv"),
    path("samples/<int:pk>/report.json", samples.sample_report_json, name="report_json"),
    path("samples/<int:pk>/chart.svg", samples.sample_chart_svg, name="chart"),
    path("items/<int:pk>/", items.item_page, name="item"),
    path("items/<int:pk>/blind/", items.item_blind, name="item_blind"),
    path("items/<int:pk>/reveal/", items.item_reveal, name="item_reveal"),
    path("items/<int:pk>/verdict/", items.item_verdict, name="item_verdict"),
    path("trail/", trail.trail_page, name="trail"),
    path("trail/verify/", trail.trail_verify, name="trail_verify"),
    path("trail/verifications/<int:pk>/", trail.trail_verification, name="trail_verification"),
]
