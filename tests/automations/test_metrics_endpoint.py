"""GET /metrics (contracts section 9), read back with prometheus-client's own parser."""

import http.client
import json
import socket
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from automations.metrics.instruments import LIVE
from automations.metrics.models import Alert
from automations.metrics.rollup import Tally, rollup_run, tally_write
from automations.metrics.windows import hour_floor
from catalog.tokens import token_issue
from tests.automations.metrics_support import history, model_call, reviewed_run
from tests.factories import AutomationFactory
from tests.support.api_client import assert_error, event_body, post_event
from tests.support.celery_worker import database_url
from tests.support.gunicorn_server import GunicornServer

TOKEN = "metrics-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALLOWED_LABELS = {"automation", "segment", "outcome"}


@pytest.fixture
def metrics_on(settings):
    settings.HANDRAIL_METRICS_TOKEN = TOKEN


def scrape(client) -> dict:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def value(families: dict, family: str, sample: str, **labels) -> float:
    found = [
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, sample, labels, found)
    return found[0]


def test_metrics_are_off_while_the_token_is_unset(client, db, settings):
    settings.HANDRAIL_METRICS_TOKEN = ""

    assert client.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_anything_but_the_bearer_token_is_a_401(client, db, metrics_on, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/metrics", headers=headers)

    assert_error(response, 401, "unauthorized", None)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def figures(db):
    """A day's worth of one automation's work, rolled up."""
    automation = AutomationFactory(slug="support-triage", daily_budget_usd=25)
    at = timezone.now() - timedelta(minutes=20)
    for gaps in ([10, 40, 50], [10, 2_000, 50], [10, 70_000, 50]):
        run = history(automation, at=at, gaps_ms=gaps, segment="vip")
        model_call(run, at=at, tokens=(100, 10), cost="0.002")
    reviewed_run(automation, at=at, outcome="rejected", review_ms=30_000)
    history(automation, at=at, steps=("blocked",))
    rollup_run()
    now = timezone.now()
    Alert.objects.create(
        automation=automation, kind="spend", value=21, baseline=25, threshold=20,
        raised_at=now, last_seen_at=now,
    )  # fmt: skip
    return automation


def test_the_exposition_parses_with_names_labels_and_buckets_as_the_contract_says(
    client, metrics_on, figures
):
    families = scrape(client)

    assert families
    for family in families.values():
        assert family.name.startswith("handrail_"), family.name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, (sample.name, sample.labels)
        if family.type == "histogram":
            series = {}
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                    series[key] = series.get(key, 0) + 1
            assert series and max(series.values()) <= 12, family.name
    assert families["handrail_decision_latency_seconds"].type == "histogram"
    assert families["handrail_runs"].type == "counter"


def test_the_figures_are_the_rollups(client, metrics_on, figures):
    families = scrape(client)
    slug = {"automation": "support-triage"}

    assert value(families, "handrail_runs", "handrail_runs_total", **slug) == 5
    assert value(families, "handrail_decisions", "handrail_decisions_total", **slug) == 4
    outcomes = {
        outcome: value(
            families, "handrail_run_outcomes", "handrail_run_outcomes_total",
            outcome=outcome, **slug,
        )
        for outcome in ("autonomous", "approved", "edited", "rejected", "blocked")
    }  # fmt: skip
    assert outcomes == {"autonomous": 3, "approved": 0, "edited": 0, "rejected": 1, "blocked": 1}
    latency = "handrail_decision_latency_seconds"
    # Decided after 50 ms, 2,010 ms, 70,010 ms, and the review's 30 ms: seconds, cumulative.
    assert value(families, latency, f"{latency}_bucket", le="0.05", **slug) == 2
    assert value(families, latency, f"{latency}_bucket", le="2.5", **slug) == 3
    assert value(families, latency, f"{latency}_bucket", le="60.0", **slug) == 3
    assert value(families, latency, f"{latency}_bucket", le="+Inf", **slug) == 4
    assert value(families, latency, f"{latency}_count", **slug) == 4
    assert value(families, latency, f"{latency}_sum", **slug) == pytest.approx(72.1)
    tokens = "handrail_model_input_tokens"
    assert value(families, tokens, f"{tokens}_total", **slug) == 300
    cost = "handrail_model_cost_usd"
    assert value(families, cost, f"{cost}_total", **slug) == pytest.approx(0.006)
    seconds = "handrail_review_seconds"
    assert value(families, seconds, f"{seconds}_total", **slug) == 30
    assert value(families, "handrail_alerts_open", "handrail_alerts_open", **slug) == 1
    budget = "handrail_daily_budget_usd"
    assert value(families, budget, budget, **slug) == 25
    segment = "handrail_segment_runs"
    assert value(families, segment, f"{segment}_total", segment="vip", **slug) == 3
    assert value(families, segment, f"{segment}_total", segment="", **slug) == 2


def test_segment_labels_only_while_an_automation_has_at_most_50_segments(client, metrics_on, db):
    few, many = AutomationFactory(slug="few"), AutomationFactory(slug="many")
    tally = Tally()
    hour = hour_floor(timezone.now())
    for n in range(50):
        tally.add((few.pk, f"s{n}", hour), runs=1)
    for n in range(51):
        tally.add((many.pk, f"s{n}", hour), runs=1)
    tally_write(tally)

    families = scrape(client)

    labelled = {
        s.labels["automation"] for s in families["handrail_segment_runs"].samples if s.labels
    }
    assert labelled == {"few"}
    assert value(families, "handrail_runs", "handrail_runs_total", automation="many") == 51


@pytest.fixture
def token(db):
    cache.clear()  # rate-limit counters of earlier tests
    AutomationFactory(slug="support-triage")
    return token_issue(name="metrics-test")[1]


def ingest_counts(families=None) -> dict:
    """handrail_ingest_requests_total by outcome, from a scrape or this process' registry."""
    source = families.values() if families else LIVE.collect()
    family = next(f for f in source if f.name == "handrail_ingest_requests")
    return {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}


def test_ingestion_answers_are_counted_by_outcome(client, metrics_on, token):
    before = ingest_counts()

    post_event(client, "support-triage", event_body("k-1"), token=token)
    post_event(client, "support-triage", event_body("k-1"), token=token)
    post_event(client, "support-triage", b"{not json", token=token)
    post_event(client, "no-such-automation", event_body("k-2"), token=token)

    after = ingest_counts(scrape(client))
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in ("accepted", "replayed", "refused")}
    assert grew == {"accepted": 1, "replayed": 1, "refused": 2}


# -- under gunicorn, several workers: one count whichever answers ----------------------


@pytest.fixture(params=["named", "default"])
def two_workers(request, transactional_db, tmp_path, monkeypatch):
    """gunicorn with two workers, its multiprocess directory named, or the one it makes."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the server shares the test database")
    env = {
        "DATABASE_URL": database_url(),
        "HANDRAIL_METRICS_TOKEN": TOKEN,
        "HANDRAIL_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    named = tmp_path / "prometheus" if request.param == "named" else None
    if named:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(named)
    else:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with GunicornServer(env=env, workers=2) as running:
        running.multiproc_dir = named
        yield running


def call(server, method: str, path: str, body: bytes | None = None, headers=None):
    """One request on a new connection (so that any worker may take it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def event_request(raw_token: str, key: str) -> bytes:
    body = json.dumps(event_body(key)).encode()
    head = (
        "POST /api/v1/automations/support-triage/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {raw_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.postgres
def test_every_workers_counts_add_up_whichever_worker_answers(two_workers):
    AutomationFactory(slug="support-triage", mode="shadow")
    _, raw = token_issue(name="metrics-gunicorn")
    # One worker takes a request whose body is still on its way and waits for it; the
    # other answers everything else meanwhile. Then the first finishes its own.
    held = socket.create_connection(("127.0.0.1", two_workers.port), timeout=30)
    first = event_request(raw, "held")
    held.sendall(first[:-10])
    time.sleep(0.5)
    for n in range(6):
        assert two_workers.request(event_request(raw, f"g-{n}")).startswith(b"HTTP/1.1 202")
    held.sendall(first[-10:])
    assert held.recv(12) == b"HTTP/1.1 202"
    held.close()

    scrapes = []
    for _ in range(6):
        status, body = call(two_workers, "GET", "/metrics", headers=AUTH)
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        scrapes.append(ingest_counts(families).get("accepted"))

    assert scrapes == [7] * 6
    if two_workers.multiproc_dir:  # each worker counted in files of its own
        assert len(list(two_workers.multiproc_dir.glob("counter_*.db"))) == 2
