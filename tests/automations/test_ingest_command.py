"""`manage.py ingest FILE.jsonl --automation SLUG`: the API's validation, line by line."""

import hashlib
import io
import json
import sys
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from automations.models import Event, Run
from tests.factories import AutomationFactory
from tests.support.api_client import event_body

SLUG = "support-triage"


@pytest.fixture
def automation(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return AutomationFactory(slug=SLUG)


def line(body) -> bytes:
    return json.dumps(body).encode() if not isinstance(body, bytes) else body


def write_jsonl(tmp_path, lines: list, name: str = "tickets.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(line(item) for item in lines) + b"\n")
    return path


def ingest(source, slug: str = SLUG) -> tuple[str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest", str(source), automation=slug, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue().splitlines()


MIXED = [
    event_body("t-1"),  # line 1
    event_body("t-2", segment="", source="crm"),  # line 2
    b"",  # line 3: blank, skipped
    b"   ",  # line 4: blank, skipped
    b'{"idempotency_key": "t-3", "payload": {',  # line 5: not JSON
    {"payload": {}},  # line 6: no key
    event_body("t-4", payload={"body": "a\x00b"}),  # line 7: NUL
    [event_body("t-5")],  # line 8: not an object
    event_body("t-6", payload={"subject": "ok"}, extra=True),  # line 9: unknown field
    b'{"idempotency_key": "t-7", "payload": {"x": NaN}}',  # line 10: not JSON
]


def test_counts_new_repeated_and_rejected_lines(automation, tmp_path):
    out, err = ingest(write_jsonl(tmp_path, MIXED))

    assert out == "new 2, repeated 0, rejected 6"
    assert Event.objects.count() == 2 and Run.objects.count() == 2
    assert err[0].startswith("line 5: the body is not JSON")
    assert err[1:5] == [
        "line 6: idempotency_key: this field is required",
        "line 7: payload.body: must not contain NUL characters (\\u0000)",
        "line 8: the body must be a JSON object",
        "line 9: extra: unknown field",
    ]
    assert err[5].startswith("line 10: the body is not JSON")
    assert len(err) == 6


def test_ingesting_the_same_file_again_counts_every_event_as_repeated(automation, tmp_path):
    path = write_jsonl(tmp_path, MIXED)
    ingest(path)

    out, err = ingest(path)

    assert out == "new 0, repeated 2, rejected 6"
    assert Event.objects.count() == 2 and Run.objects.count() == 2


def test_a_key_seen_twice_in_one_file_is_new_then_repeated(automation, tmp_path):
    out, _ = ingest(write_jsonl(tmp_path, [event_body("dup"), event_body("dup")]))

    assert out == "new 1, repeated 1, rejected 0"


def test_changed_payload_under_a_used_key_is_rejected(automation, tmp_path):
    ingest(write_jsonl(tmp_path, [event_body("t-1")], name="first.jsonl"))
    changed = event_body("t-1", payload={"subject": "Something else"})

    out, err = ingest(write_jsonl(tmp_path, [changed], name="second.jsonl"))

    assert out == "new 0, repeated 0, rejected 1"
    assert err == [
        "line 1: idempotency_key: this idempotency_key was already used with a different payload"
    ]
    assert Event.objects.get().payload["subject"] == "Invoice"


def test_events_record_the_file_as_client_and_the_hash_of_their_line(automation, tmp_path):
    raw = line(event_body("t-1"))
    path = tmp_path / "export-2024.jsonl"
    path.write_bytes(raw + b"\r\n")

    ingest(path)

    event = Event.objects.get()
    assert event.client == "ingest:export-2024.jsonl"
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()
    assert event.api_token is None
    assert (event.segment, event.source) == ("enterprise", "zendesk")


def test_lines_over_the_size_limit_are_rejected(automation, tmp_path, settings):
    settings.HANDRAIL_MAX_EVENT_BYTES = 500
    big = event_body("big", payload={"body": "x" * 600})

    out, err = ingest(write_jsonl(tmp_path, [big, event_body("small")]))

    assert out == "new 1, repeated 0, rejected 1"
    assert err == ["line 1: the line is over 500 bytes"]


def test_new_events_have_their_decisions_enqueued_on_commit(
    automation, tmp_path, django_capture_on_commit_callbacks
):
    with (
        mock.patch("automations.services.ingestion.enqueue_decide") as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        ingest(write_jsonl(tmp_path, [event_body("a"), event_body("b"), b"{"]))

    runs = sorted(Run.objects.values_list("pk", flat=True))
    assert sorted(call.args[0] for call in enqueue.call_args_list) == runs
    assert len(runs) == 2


def test_invalid_utf8_line_is_rejected_not_fatal(automation, tmp_path):
    out, err = ingest(write_jsonl(tmp_path, [b'{"idempotency_key": "\xff"}', event_body("ok")]))

    assert out == "new 1, repeated 0, rejected 1"
    assert err[0].startswith("line 1: the body is not valid UTF-8")


def test_reads_standard_input_with_a_dash(automation, monkeypatch):
    data = line(event_body("a")) + b"\n" + line(event_body("b")) + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    out, _ = ingest("-")

    assert out == "new 2, repeated 0, rejected 0"
    assert Event.objects.filter(client="ingest:stdin").count() == 2


def test_unknown_automation_is_an_error_and_stores_nothing(automation, tmp_path):
    with pytest.raises(CommandError, match="unknown automation: nope") as raised:
        ingest(write_jsonl(tmp_path, [event_body()]), slug="nope")

    assert raised.value.returncode == 1
    assert Event.objects.count() == 0


def test_missing_file_is_an_error(automation, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        ingest(tmp_path / "missing.jsonl")
