"""factory-boy factories for the whole data model."""

import hashlib
import secrets

import factory
from django.contrib.auth.models import Group, User

from automations.models import Event, ReviewTask, Run
from catalog.models import Automation, DoNotAutomateRule, Intent, SegmentPolicy


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            # get_or_create: transactional tests flush the groups the roles migration made.
            self.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in extracted))


ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "technical", "sales"]},
        "priority": {"type": "string", "enum": ["p1", "p2", "p3"]},
    },
    "required": ["team", "priority"],
    "additionalProperties": False,
}


# A model proposal for the route_ticket intent, as review tests start from.
PROPOSED = {
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.55,
    "rationale": "Invoice question.",
}


class AutomationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Automation
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"automation-{n}")
    name = factory.LazyAttribute(lambda a: a.slug.replace("-", " ").title())
    owner = factory.SubFactory(UserFactory, roles=["owner"])
    purpose = "Route tickets and draft first replies."
    rollback_plan = "Set mode to suggest; agents route by hand."
    risk_tier = "medium"
    data_classification = "internal"
    mode = "approve"
    provider = "rules"

    @factory.post_generation
    def reviewers(self, create, extracted, **kwargs):
        if create and extracted:
            self.reviewers.add(*extracted)


class IntentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Intent

    automation = factory.SubFactory(AutomationFactory)
    name = "route_ticket"
    description = "Send the ticket to a team queue."
    risk = "low"
    arguments_schema = factory.LazyFunction(lambda: dict(ROUTE_SCHEMA))
    action_adapter = "webhook"
    action_config = factory.LazyFunction(
        lambda: {"url": "http://127.0.0.1:9000/hooks/route", "secret_env": "TEST_WEBHOOK_SECRET"}
    )


class SegmentPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SegmentPolicy

    automation = factory.SubFactory(AutomationFactory)
    key = "enterprise"
    enabled = True
    mode = ""


class DoNotAutomateRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoNotAutomateRule

    automation = factory.SubFactory(AutomationFactory)
    name = "legal threat"
    field = "payload.body"
    operator = "matches"
    value = "(?i)lawyer|lawsuit"
    effect = "review"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    automation = factory.SubFactory(AutomationFactory)
    idempotency_key = factory.Sequence(lambda n: f"event-{n}")
    segment = ""
    source = "test"
    payload = factory.LazyFunction(lambda: {"subject": "Invoice", "body": "Where is my invoice?"})
    body_sha256 = factory.LazyFunction(lambda: hashlib.sha256(secrets.token_bytes(8)).hexdigest())
    payload_sha256 = factory.LazyAttribute(lambda e: e.body_sha256)
    trace_id = factory.LazyFunction(lambda: secrets.token_hex(16))


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    event = factory.SubFactory(EventFactory)
    automation = factory.LazyAttribute(lambda r: r.event.automation)
    segment = factory.LazyAttribute(lambda r: r.event.segment)
    trace_id = factory.LazyAttribute(lambda r: r.event.trace_id)


class ReviewTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewTask

    run = factory.SubFactory(RunFactory, state="awaiting_review")
    automation = factory.LazyAttribute(lambda t: t.run.automation)
    reason = "mode approve: a person approves every action"


# A rules-provider rule that routes invoice questions to billing.
BILLING_RULE = {
    "when": {"field": "payload.body", "matches": "(?i)invoice"},
    "intent": "route_ticket",
    "arguments": {"team": "billing", "priority": "p2"},
    "confidence": 0.9,
}
