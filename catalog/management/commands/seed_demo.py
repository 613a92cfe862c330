"""`manage.py seed_demo`: demo users, the demo catalog and demo events; safe to run again.

A second run changes nothing in the catalog and stores no new event (the
events replay their idempotency keys); it only sets new demo passwords and
prints them.
"""

import argparse
import json
import random
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from automations.models import ReviewState, ReviewTask, Run
from automations.services.dispatch import enqueue_decide
from automations.services.ingestion import event_ingest
from automations.services.reviews import (
    ReviewError,
    review_claim_next,
    review_decide,
    review_release,
)
from catalog.demo.events import DEFAULT_SEED, DemoEvent, demo_events
from catalog.models import Automation, Role
from reviewapp.celery import app as celery_app

CATALOG_PATH = Path(settings.BASE_DIR) / "catalog" / "demo" / "automations.yaml"
CLIENT = "demo-seed"
# Share of the new review tasks the demo reviewers decide, so metrics and labels have data.
REVIEWED_SHARE = 0.5


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str


DEMO_USERS = [
    DemoUser("olivia", Role.OWNER, "Olivia", "Okafor"),
    DemoUser("oscar", Role.OWNER, "Oscar", "Lindgren"),
    DemoUser("ravi", Role.REVIEWER, "Ravi", "Menon"),
    DemoUser("rosa", Role.REVIEWER, "Rosa", "Delgado"),
    DemoUser("carla", Role.COMPLIANCE, "Carla", "Brandt"),
    DemoUser("ada", Role.ADMIN, "Ada", "Kowalczyk"),
]


class Command(BaseCommand):
    help = (
        "Create the demo users (new passwords on every run), load catalog/demo/automations.yaml "
        "and ingest demo events. Running it again stores nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--events", type=int, default=300, metavar="N", help="demo events (default 300)"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=argparse.SUPPRESS)
        parser.add_argument(
            "--no-decide",
            action="store_true",
            help="store the events only; do not decide or review them",
        )

    def handle(self, *args, **options):
        if options["events"] < 0:
            raise CommandError("--events must be 0 or more")
        passwords = demo_users_seed()
        # The demo's autonomous automation has no reviewed history yet: its admin vouches for it.
        admin = next(demo.username for demo in DEMO_USERS if demo.role == Role.ADMIN)
        call_command(
            "load_automations",
            str(CATALOG_PATH),
            reason="demo seed",
            user=admin,
            override_evidence=True,
            stdout=self.stdout,
        )
        events = demo_events(count=options["events"], seed=options["seed"])
        new_runs = demo_events_ingest(events=events, decide=not options["no_decide"])
        self.stdout.write(f"Events: {len(new_runs)} new, {len(events) - len(new_runs)} repeated.")
        if new_runs and not options["no_decide"]:
            if celery_app.conf.task_always_eager:
                reviewed = demo_reviews_make(run_ids=new_runs, seed=options["seed"])
                self.stdout.write(f"Demo reviewers decided {reviewed} review tasks.")
            else:
                self.stdout.write("Decisions were queued on Redis: a Celery worker makes them.")
        self.stdout.write(summary_text())
        self.stdout.write(password_table(passwords))


def demo_users_seed() -> list[tuple[DemoUser, str]]:
    """Each demo user exists, holds its role group, and has a new random password."""
    user_model = get_user_model()
    result = []
    with transaction.atomic():
        # The roles migration creates the groups; a flushed database may have lost them.
        groups = {role: Group.objects.get_or_create(name=role)[0] for role in Role.values}
        for demo in DEMO_USERS:
            user, _ = user_model.objects.get_or_create(username=demo.username)
            user.first_name, user.last_name = demo.first_name, demo.last_name
            user.email = f"{demo.username}@handrail.example"
            user.is_active = True
            user.is_staff = user.is_superuser = demo.role == Role.ADMIN
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            user.groups.add(groups[demo.role])
            result.append((demo, password))
    return result


def demo_events_ingest(*, events: list[DemoEvent], decide: bool) -> list[int]:
    """Ingest the events once each; returns the ids of the runs this call created."""
    automations = {automation.slug: automation for automation in Automation.objects.all()}
    created = []
    for event in events:
        body = {
            "idempotency_key": event.idempotency_key,
            "segment": event.segment,
            "source": event.source,
            "payload": event.payload,
        }
        result = event_ingest(
            automation_id=automations[event.automation].pk,
            idempotency_key=event.idempotency_key,
            payload=event.payload,
            raw_body=json.dumps(body, ensure_ascii=False).encode(),
            segment=event.segment,
            source=event.source,
            client=CLIENT,
        )
        if result.created:
            created.append(result.run.pk)
            if decide:
                # Outside a transaction this runs now: in process, or sent to the broker.
                transaction.on_commit(partial(enqueue_decide, result.run.pk))
    return created


def demo_reviews_make(*, run_ids: list[int], seed: int) -> int:
    """Let the demo reviewers decide about half of the new review tasks; returns how many."""
    open_tasks = ReviewTask.objects.filter(run_id__in=run_ids, state=ReviewState.PENDING)
    per_automation = Counter(open_tasks.values_list("automation_id", flat=True))
    decided = 0
    for automation in Automation.objects.filter(pk__in=per_automation).order_by("slug"):
        reviewers = list(automation.reviewers.order_by("username"))
        if not reviewers:
            continue
        target = int(per_automation[automation.pk] * REVIEWED_SHARE)
        for number in range(target):
            reviewer = reviewers[number % len(reviewers)]
            rng = random.Random(f"handrail-demo-review:{seed}:{automation.slug}:{number}")
            if demo_review_one(automation=automation, user=reviewer, rng=rng):
                decided += 1
    return decided


def demo_review_one(*, automation: Automation, user, rng: random.Random) -> bool:
    """Claim the oldest task of the queue and decide it the way a person plausibly would."""
    now = timezone.now()
    started = now - timedelta(seconds=rng.randint(6, 150))
    task = review_claim_next(user=user, automation=automation, now=started)
    if task is None:
        return False
    choice = review_choice(task=task, rng=rng)
    if choice is None:
        review_release(task=task, user=user)
        return False
    try:
        review_decide(task_id=task.pk, user=user, now=now, **choice)
    except ReviewError:
        review_release(task=task, user=user)
        return False
    return True


def review_choice(*, task: ReviewTask, rng: random.Random) -> dict | None:
    """The decision arguments for review_decide, or None to leave the task in the queue."""
    run = Run.objects.select_related("event").get(pk=task.run_id)
    proposed = run.proposed_intent or {}
    approve, reject = ("use", "discard") if task.kind == "suggest" else ("approve", "reject")
    if proposed.get("intent"):
        roll = rng.random()
        if roll < 0.12:
            return {
                "action": reject,
                "reject_reason": "" if reject == "discard" else "wrong_intent",
                "note": "Needs a closer look than the proposal suggests.",
            }
        if roll < 0.22 and proposed["intent"] == "route_ticket":
            arguments = dict(proposed.get("arguments") or {}, priority="p1")
            return {"action": approve, "arguments": arguments, "note": "Customer is blocked."}
        return {"action": approve}
    return person_decision(run=run, approve=approve)


def person_decision(*, run: Run, approve: str) -> dict | None:
    """What a reviewer supplies when no rule proposed an intent."""
    payload = run.event.payload
    if run.automation.slug == "kyc-document-triage":
        ocr = payload.get("ocr") or {}
        fields = ("full_name", "date_of_birth", "document_number", "country", "expiry_date")
        return {
            "action": approve,
            "intent": "accept_document",
            "arguments": {field: ocr.get(field) for field in fields},
        }
    if run.automation.slug == "support-triage":
        return {
            "action": approve,
            "intent": "route_ticket",
            "arguments": {"team": "technical", "priority": "p3"},
        }
    return None


def summary_text() -> str:
    """What exists now: automations with their mode, and runs by state."""
    lines = ["", "Demo catalog:"]
    for automation in Automation.objects.order_by("slug"):
        states = Counter(Run.objects.filter(automation=automation).values_list("state", flat=True))
        by_state = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        lines.append(f"  {automation.slug:<22} {automation.mode:<10} {by_state or 'no runs'}")
    return "\n".join(lines)


def password_table(passwords: list[tuple[DemoUser, str]]) -> str:
    """The demo logins as a table; the passwords change on every run."""
    rows = [("username", "role", "password")]
    rows += [(demo.username, demo.role, password) for demo, password in passwords]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    rule = "  " + "-+-".join("-" * width for width in widths)

    def line(row):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return ("  " + " | ".join(cells)).rstrip()

    body = [line(rows[0]), rule, *(line(row) for row in rows[1:])]
    return "\n".join(["", "Demo users (new passwords on every run of seed_demo):", *body, ""])
