"""Outbound requests stay away from internal addresses unless the operator lists them.

Webhook and model URLs are judged as written when the loader stores them, and by
the address they resolve to on every connection (automations/outbound.py).
"""

import socket

import pytest

from automations.adapters.webhook import WebhookAdapter
from automations.models import Action, ActionAttempt, ModelCall, Run
from automations.outbound import address_is_internal, host_address, host_target
from automations.services.actions import action_attempt
from automations.services.decisions import run_decide
from catalog.loader import CatalogInvalid, load_catalog
from tests.factories import AutomationFactory, EventFactory, IntentFactory, RunFactory, UserFactory
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret

SECRET_ENV = "TEST_WEBHOOK_SECRET"
KEY_ENV = "HANDRAIL_TEST_MODEL_API_KEY"
HINT = "list the host in HANDRAIL_ALLOWED_PRIVATE_HOSTS to allow it"
REBINDING_HOST = "hooks.rebinding.test"

INTERNAL = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "169.254.169.254",  # cloud metadata
    "169.254.1.1",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.fixture(params=["httpx", "curl"])
def transport(request, settings):
    settings.HANDRAIL_HTTP_TRANSPORT = request.param
    return request.param


@pytest.fixture
def nothing_listed(settings):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = []


@pytest.fixture
def receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, new_webhook_secret())


def deliver(url):
    config = {"url": url, "secret_env": SECRET_ENV}
    return WebhookAdapter().deliver(
        action=Action(idempotency_key="act_ssrf"), run=Run(trace_id=""), config=config, body={}
    )


# -- the policy -------------------------------------------------------------------------------


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address, nothing_listed):
    assert address_is_internal(host_address(address))
    assert host_target(address) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address, nothing_listed):
    assert not address_is_internal(host_address(address))
    assert host_target(address) is None


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("2130706433", "2130706433, that is 127.0.0.1"),
        ("0x7f.1", "0x7f.1, that is 127.0.0.1"),
        ("127.1", "127.1, that is 127.0.0.1"),
        ("0177.0.0.1", "0177.0.0.1, that is 127.0.0.1"),
        ("0xa9fea9fe", "0xa9fea9fe, that is 169.254.169.254"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1, that is 127.0.0.1"),
        ("localhost", "localhost"),
        ("LocalHost.", "LocalHost."),
        ("api.localhost", "api.localhost"),
        ("metadata.google.internal", "metadata.google.internal"),
    ],
)
def test_odd_spellings_and_local_names_do_not_slip_through(host, shown, nothing_listed):
    assert host_target(host) == shown


def test_listed_names_addresses_and_networks_are_allowed(settings):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["vllm.internal", "localhost", "10.0.0.0/8", "::1"]

    assert host_target("vllm.internal") is None
    assert host_target("localhost") is None
    assert host_target("10.20.30.40") is None
    assert host_target("10.1") is None  # 10.0.0.1, spelled short
    assert host_target("[::1]") is None
    assert host_target("127.0.0.1") == "127.0.0.1"
    assert host_target("192.168.0.10") == "192.168.0.10"


# -- when an owner writes a URL ---------------------------------------------------------------


@pytest.fixture
def people(db):
    for username, role in (("olivia", "owner"), ("ravi", "reviewer"), ("rosa", "reviewer")):
        UserFactory(username=username, roles=[role], password=None)


def catalog(*, action_url: str, base_url: str = "") -> dict:
    intent = {
        "name": "route_ticket",
        "description": "Send the ticket to a team queue.",
        "risk": "low",
        "arguments_schema": {"type": "object"},
        "action": {"adapter": "webhook", "url": action_url, "secret_env": SECRET_ENV},
    }
    automation = {
        "slug": "support-triage",
        "name": "Support ticket triage",
        "owner": "olivia",
        "reviewers": ["ravi", "rosa"],
        "purpose": "Route tickets.",
        "rollback_plan": "Route by hand.",
        "risk_tier": "low",
        "data_classification": "internal",
        "mode": "approve",
        "decision": {"provider": "openai", "model": "gpt-4.1-mini", "base_url": base_url},
        "intents": [intent],
    }
    return {"automations": [automation]}


def load_errors(document) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        load_catalog(document, source="test.yaml")
    return caught.value.errors


def test_loader_refuses_urls_that_target_internal_addresses(people, nothing_listed):
    document = catalog(
        action_url="http://127.0.0.1:9000/hooks/route",
        base_url="http://169.254.169.254/v1",
    )

    assert load_errors(document) == [
        f"automations[0].decision.base_url: targets a private address (169.254.169.254); {HINT}",
        f"automations[0].intents[0].action.url: targets a private address (127.0.0.1); {HINT}",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://localhost:8000/hooks", "localhost"),
        ("https://[::1]/hooks", "::1"),
        ("http://0x7f.1/hooks", "0x7f.1, that is 127.0.0.1"),
        ("http://user@2130706433:80/hooks", "2130706433, that is 127.0.0.1"),
        ("http://[::ffff:10.0.0.1]/hooks", "::ffff:10.0.0.1, that is 10.0.0.1"),
    ],
)
def test_loader_names_the_address_a_url_spells(people, nothing_listed, url, shown):
    [problem] = load_errors(catalog(action_url=url))

    path = "automations[0].intents[0].action.url"
    assert problem == f"{path}: targets a private address ({shown}); {HINT}"


def test_loader_accepts_listed_hosts_and_public_names(people, settings):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]

    load_catalog(catalog(action_url="http://127.0.0.1:9000/hooks"), source="test.yaml")
    load_catalog(catalog(action_url=f"http://{REBINDING_HOST}/hooks"), source="test.yaml")


# -- when a request goes out ------------------------------------------------------------------


def test_webhook_to_an_unlisted_loopback_receiver_is_refused_and_nothing_is_sent(
    transport, receiver, secret, nothing_listed
):
    delivery = deliver(receiver.url("/hooks/route"))

    assert not delivery.ok and not delivery.retryable
    assert delivery.status_code is None
    assert delivery.error == f"refused: 127.0.0.1 is a private address; {HINT}"
    assert receiver.deliveries == []


def test_webhook_to_a_name_resolving_to_loopback_is_refused(
    transport, receiver, secret, nothing_listed
):
    delivery = deliver(f"http://localhost:{receiver.port}/hooks/route")

    assert not delivery.ok and not delivery.retryable
    assert delivery.error.startswith("refused: localhost resolves to a private address (")
    assert receiver.deliveries == []


def test_webhook_to_a_listed_receiver_is_delivered(transport, receiver, secret, settings):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]

    delivery = deliver(receiver.url("/hooks/route"))

    assert delivery.ok
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.django_db
def test_a_refused_delivery_fails_the_action_at_once(transport, receiver, secret, nothing_listed):
    automation = AutomationFactory(mode="approve")
    IntentFactory(
        automation=automation,
        action_config={"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV},
    )
    run = RunFactory(
        event=EventFactory(automation=automation),
        state="approved",
        final_intent={"intent": "route_ticket", "arguments": {}, "confidence": 1},
    )

    outcome = action_attempt(run_id=run.pk, actor="worker:test")

    run.refresh_from_db()
    assert outcome.kind == "failed"
    assert run.state == "failed"
    [attempt] = ActionAttempt.objects.filter(action__run=run)
    assert attempt.error == f"refused: 127.0.0.1 is a private address; {HINT}"
    assert (attempt.status_code, attempt.retryable) == (None, False)
    assert receiver.deliveries == []


def resolving(monkeypatch, host, *answers):
    """Make socket.getaddrinfo answer `host` with each address in turn (the last one stays)."""
    real = socket.getaddrinfo
    queue = list(answers)
    asked = []

    def getaddrinfo(name, port, *args, **kwargs):
        if name != host:
            return real(name, port, *args, **kwargs)
        asked.append(name)
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_dns_rebinding_to_a_private_address_is_refused_at_send_time(
    people, receiver, secret, settings, monkeypatch
):
    # httpx's transport resolves with socket.getaddrinfo; libcurl has its own resolver.
    settings.HANDRAIL_HTTP_TRANSPORT = "httpx"
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = []
    url = f"http://{REBINDING_HOST}:{receiver.port}/hooks/route"
    load_catalog(catalog(action_url=url), source="test.yaml")  # a public name when written
    resolving(monkeypatch, REBINDING_HOST, "127.0.0.1")  # a private address when sent

    delivery = deliver(url)

    assert not delivery.ok and not delivery.retryable
    assert delivery.error == (
        f"refused: {REBINDING_HOST} resolves to a private address (127.0.0.1); {HINT}"
    )
    assert receiver.deliveries == []


def test_the_connection_goes_to_the_address_that_was_checked(
    receiver, secret, settings, monkeypatch
):
    settings.HANDRAIL_HTTP_TRANSPORT = "httpx"
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    # Asked a second time, the name would lead to the metadata service.
    asked = resolving(monkeypatch, REBINDING_HOST, "127.0.0.1", "169.254.169.254")

    delivery = deliver(f"http://{REBINDING_HOST}:{receiver.port}/hooks/route")

    assert delivery.ok
    assert asked == [REBINDING_HOST]
    [received] = receiver.wait_for(1)
    assert received.headers["host"] == f"{REBINDING_HOST}:{receiver.port}"


@pytest.mark.django_db
def test_a_model_endpoint_on_the_metadata_address_is_refused_and_the_run_goes_to_review(
    transport, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "sk-test-key")
    automation = AutomationFactory(
        mode="autonomous",
        provider="openai",
        model="gpt-4.1-mini",
        base_url="http://169.254.169.254/v1",
        api_key_env=KEY_ENV,
    )
    IntentFactory(automation=automation)
    run = RunFactory(event=EventFactory(automation=automation, payload={"body": "Invoice?"}))

    run_decide(run_id=run.pk, actor="worker:test")

    run.refresh_from_db()
    refusal = f"refused: 169.254.169.254 is a private address; {HINT}"
    assert run.state == "awaiting_review"
    assert refusal in run.review_task.reason
    assert ModelCall.objects.get(run=run).error == refusal
    assert not Action.objects.filter(run=run).exists()
