"""Outbound requests stay away from internal addresses unless the operator lists them.

Webhook and model URLs are judged as written when the loader stores them
(automations/outbound.py).
"""

import pytest

from automations.outbound import address_is_internal, host_address, host_target
from catalog.loader import CatalogInvalid, load_catalog
from tests.factories import UserFactory

SECRET_ENV = "TEST_WEBHOOK_SECRET"
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


@pytest.fixture
def nothing_listed(settings):
    settings.HANDRAIL_ALLOWED_PRIVATE_HOSTS = []


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
