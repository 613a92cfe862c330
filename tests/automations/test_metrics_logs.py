"""JSON log lines with the trace id: one case followed end to end, from the API's request
through its decision and webhook to the run page, by its trace id."""

import json
import logging
import os
import subprocess
import sys

import pytest
from celery import shared_task
from django.core.cache import cache
from django.test import RequestFactory
from django.urls import reverse

from automations.metrics.jsonlog import JsonFormatter
from automations.metrics.tracecontext import TraceContextMiddleware, trace_bind, trace_current
from automations.models import Run
from catalog.tokens import token_issue
from tests.factories import BILLING_RULE, AutomationFactory, IntentFactory
from tests.support.api_client import event_body, post_event
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret, verify

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
EMAIL = "jane.doe@example.com"


def formatted(message: str, *, exc_info=None) -> dict:
    record = logging.LogRecord("handrail.test", logging.WARNING, __file__, 1, message, (), exc_info)
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_the_trace_and_run_it_was_written_under():
    trace_bind(trace_id=TRACE_ID, run_id=17)
    try:
        line = formatted("run 17 decided")
    finally:
        trace_bind(trace_id=None, run_id=None)

    assert {k: line[k] for k in ("level", "logger", "message", "trace_id", "run_id")} == {
        "level": "WARNING",
        "logger": "handrail.test",
        "message": "run 17 decided",
        "trace_id": TRACE_ID,
        "run_id": 17,
    }
    assert line["time"].endswith("+00:00")


def test_an_exception_gives_its_type_and_traceback():
    try:
        raise ValueError("bad")
    except ValueError:
        line = formatted("failed", exc_info=sys.exc_info())

    assert line["error"] == "ValueError"
    assert "Traceback" in line["traceback"]


def test_each_request_starts_clean_and_joins_the_callers_trace(db):
    seen = []

    def view_probe(request):
        seen.append(trace_current())

    trace_bind(trace_id="f" * 32, run_id=99)  # left over from earlier work in this thread
    middleware = TraceContextMiddleware(view_probe)

    middleware(RequestFactory().get("/", headers={"traceparent": TRACEPARENT}))
    middleware(RequestFactory().get("/"))

    assert seen == [(TRACE_ID, None), (None, None)]
    assert trace_current() == ("f" * 32, 99)  # the thread's own context is given back
    trace_bind(trace_id=None, run_id=None)


@shared_task(name="tests.trace_probe")
def trace_probe(run_id: int) -> list:
    return list(trace_current())


def test_a_task_starts_with_a_clean_context_and_gives_the_callers_back():
    trace_bind(trace_id=TRACE_ID, run_id=5)

    inside = trace_probe.apply(args=[7]).result  # not .get(): another test may leave a task current

    assert inside == [None, None]
    assert trace_current() == (TRACE_ID, 5)
    trace_bind(trace_id=None, run_id=None)


@pytest.fixture
def secret(monkeypatch):
    value = new_webhook_secret()
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", value)
    return value


@pytest.mark.django_db
def test_one_case_end_to_end_by_its_trace_id(
    client, secret, caplog, admin_user, django_capture_on_commit_callbacks
):
    cache.clear()
    caplog.handler.setFormatter(JsonFormatter())
    caplog.set_level(logging.INFO)
    with WebhookReceiver() as receiver:
        automation = AutomationFactory(
            slug="support-triage", mode="autonomous", rules=[BILLING_RULE]
        )
        IntentFactory(
            automation=automation,
            action_config={
                "url": receiver.url("/hooks/route"),
                "secret_env": "TEST_WEBHOOK_SECRET",
            },
        )
        _, token = token_issue(name="trace-test")
        body = event_body(payload={"subject": "Invoice", "body": f"My invoice, mail {EMAIL}"})
        with django_capture_on_commit_callbacks(execute=True):
            answer = post_event(
                client, "support-triage", body, token=token, headers={"traceparent": TRACEPARENT}
            )
        [delivery] = receiver.wait_for(1)

    assert answer.status_code == 202 and answer.json()["trace_id"] == TRACE_ID
    run = Run.objects.get(pk=answer.json()["run_id"])
    assert run.state == "executed"
    # The receiver's webhook: the run's trace id in the body and as traceparent's trace.
    assert verify(delivery, secret)["trace_id"] == TRACE_ID
    assert delivery.headers["traceparent"].split("-")[1] == TRACE_ID
    # The logs: every line about the run carries its trace id, and none the payload.
    lines = [json.loads(line) for line in caplog.text.splitlines()]
    attempts = [line for line in lines if "attempt 1" in line["message"]]
    assert attempts and all((a["trace_id"], a["run_id"]) == (TRACE_ID, run.pk) for a in attempts)
    assert EMAIL not in caplog.text
    # The run page: its trace id, and the timeline of the same case.
    client.force_login(admin_user)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert TRACE_ID in page
    assert 'data-kind="attempt"' in page
    found = client.get(reverse("run_list"), {"trace_id": TRACE_ID}).content.decode()
    assert reverse("run_detail", args=[run.pk]) in found


def settings_import(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import reviewapp.settings as s; print(s.LOGGING['handlers'])"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_json_is_the_default_and_a_bad_log_format_stops_start_up():
    default = settings_import({"HANDRAIL_LOG_FORMAT": ""})
    bad = settings_import({"HANDRAIL_LOG_FORMAT": "xml"})

    assert "'formatter': 'json'" in default.stdout
    assert bad.returncode != 0
    assert "HANDRAIL_LOG_FORMAT must be json or plain, got 'xml'" in bad.stderr
