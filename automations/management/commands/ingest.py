"""Ingest a JSONL file of event bodies with the API's validation (contracts section 3).

Like the API, each new event's decision is enqueued once the event is stored.
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from automations.event_input import EventInputError, InputError, event_input_parse
from automations.services.ingestion import IdempotencyConflict, event_ingest
from catalog.models import Automation

CLIENT_MAX_LENGTH = 100


class Command(BaseCommand):
    help = "Ingest one JSON event body per line; print counts of new, repeated and rejected lines."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .jsonl file, or - for standard input.")
        parser.add_argument("--automation", required=True, metavar="SLUG")

    def handle(self, *args, file, automation, **options):
        target = Automation.objects.filter(slug=automation).first()
        if target is None:
            raise CommandError(f"unknown automation: {automation}")
        client = "ingest:stdin" if file == "-" else f"ingest:{Path(file).name}"
        counts = {"new": 0, "repeated": 0, "rejected": 0}
        try:
            stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        with stream:
            for number, line in enumerate(stream, start=1):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                outcome = self._ingest_line(raw, target, client[:CLIENT_MAX_LENGTH])
                if isinstance(outcome, InputError):
                    counts["rejected"] += 1
                    self.stderr.write(_rejection(number, outcome))
                else:
                    counts[outcome] += 1
        self.stdout.write("new {new}, repeated {repeated}, rejected {rejected}".format(**counts))

    def _ingest_line(self, raw: bytes, automation: Automation, client: str) -> str | InputError:
        """'new' or 'repeated', or the first reason the line was refused."""
        limit = settings.HANDRAIL_MAX_EVENT_BYTES
        if len(raw) > limit:
            return InputError("payload_too_large", f"the line is over {limit} bytes")
        try:
            clean = event_input_parse(raw)
        except EventInputError as exc:
            return exc.first
        try:
            result = event_ingest(
                automation_id=automation.pk,
                idempotency_key=clean.idempotency_key,
                payload=clean.payload,
                raw_body=raw,
                segment=clean.segment,
                source=clean.source,
                client=client,
                decide=True,
            )
        except IdempotencyConflict as exc:
            return InputError("idempotency_conflict", str(exc), "idempotency_key")
        return "new" if result.created else "repeated"


def _rejection(number: int, error: InputError) -> str:
    if error.field:
        return f"line {number}: {error.field}: {error.message}"
    return f"line {number}: {error.message}"
