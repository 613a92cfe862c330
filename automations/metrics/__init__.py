"""Observability and economics: rollups, figures, dashboards, /metrics, drift and alerts.

A Django app of its own (label `metrics`) inside automations/, so that its tables
and migrations stay apart from the pipeline's. It reads the pipeline's rows
(transitions, model calls, labels) only in the rollup job (rollup.py); every
figure, dashboard, /metrics sample and drift check reads the rollups.
"""
