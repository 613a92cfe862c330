"""The tamper-evident trail (contracts section 8): appended, chained, verified, attested."""

import base64
import io
import json
import os
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection, connections, transaction

from automations.services.decisions import run_advance
from automations.services.reviews import review_claim_next, review_decide
from catalog.audit import signing, trail
from catalog.audit.attestation import attestation_verify, run_attestation
from catalog.audit.trail import entry_hash, trail_append, trail_chain, trail_verify
from catalog.loader import load_catalog
from catalog.models import TrailCheckpoint, TrailEntry, TrailHead
from tests.factories import (
    BILLING_RULE,
    AutomationFactory,
    EventFactory,
    IntentFactory,
    RunFactory,
    UserFactory,
)
from tests.support.webhook_receiver import WebhookReceiver, new_webhook_secret

pytestmark = pytest.mark.django_db

SECRET_ENV = "TEST_TRAIL_WEBHOOK_SECRET"


def facts(count: int) -> list[TrailEntry]:
    """`count` chained entries of made-up facts."""
    entries = [trail_append(kind="fact", data={"n": n, "score": n / 3}) for n in range(count)]
    trail_chain()
    return entries


def raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_autonomous_decision_and_its_delivery_are_on_the_trail(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv(SECRET_ENV, new_webhook_secret())
    automation = AutomationFactory(mode="autonomous", rules=[BILLING_RULE])
    with WebhookReceiver() as receiver:
        IntentFactory(
            automation=automation,
            action_config={"url": receiver.url("/hooks/route"), "secret_env": SECRET_ENV},
        )
        run = RunFactory(event=EventFactory(automation=automation, payload={"body": "invoice?"}))

        with django_capture_on_commit_callbacks(execute=True):
            assert run_advance(run_id=run.pk, actor="worker:test").kind == "done"

    decision, attempt = TrailEntry.objects.filter(run=run).order_by("seq")
    assert decision.seq < attempt.seq  # chained once the commits were in, in their order
    assert decision.data["kind"] == "decision"
    assert decision.data["intent"]["intent"] == "route_ticket"
    assert [v["check"] for v in decision.data["verdicts"]][:2] == [
        "segment_policy",
        "do_not_automate",
    ]
    assert decision.data["event_sha256"] == run.event.body_sha256
    assert (attempt.data["kind"], attempt.data["status_code"]) == ("attempt", 200)
    assert trail_verify().line() == f"trail ok: {TrailEntry.objects.count()} entries"


def test_a_review_is_on_the_trail(django_capture_on_commit_callbacks):
    reviewer = UserFactory(username="ravi", roles=["reviewer"])
    automation = AutomationFactory(mode="approve", reviewers=[reviewer], rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    run = RunFactory(event=EventFactory(automation=automation, payload={"body": "invoice?"}))
    with django_capture_on_commit_callbacks(execute=True):
        run_advance(run_id=run.pk, actor="worker:test")
        task = review_claim_next(user=reviewer, automation=automation)
        review_decide(task_id=task.pk, user=reviewer, action="reject", reject_reason="policy")

    review = TrailEntry.objects.get(run=run, kind="review")
    assert (review.data["outcome"], review.data["by"]) == ("rejected", "ravi")
    assert review.data["reject_reason"] == "policy"


def test_configuration_changes_are_on_the_trail_whatever_wrote_them(
    django_capture_on_commit_callbacks,
):
    UserFactory(username="olivia")
    document = {
        "automations": [
            {
                "slug": "refunds",
                "name": "Refunds",
                "owner": "olivia",
                "purpose": "p",
                "rollback_plan": "r",
                "risk_tier": "low",
                "data_classification": "internal",
                "mode": "shadow",
                "decision": {"provider": "rules"},
                "intents": [{"name": "refund"}],
            }
        ]
    }
    with django_capture_on_commit_callbacks(execute=True):
        load_catalog(document, source="refunds.yaml")

    changes = {
        (e.data["model"], e.data["change"]) for e in TrailEntry.objects.filter(kind="config")
    }
    assert changes == {("catalog.Automation", "created"), ("catalog.Intent", "created")}
    automation_entry = TrailEntry.objects.get(kind="config", data__model="catalog.Automation")
    assert automation_entry.data["reason"] == "loaded from refunds.yaml"
    assert automation_entry.data["values"]["mode"] == "shadow"
    assert trail_verify().ok


def test_entries_are_chained_from_their_stored_bytes():
    first, second = facts(2)
    first.refresh_from_db()
    second.refresh_from_db()

    assert bytes(first.prev_hash) == bytes(32)
    assert bytes(first.hash) == entry_hash(bytes(32), bytes(first.canonical))
    assert bytes(second.prev_hash) == bytes(first.hash)
    # RFC 8785: sorted keys, no spaces, ECMAScript numbers.
    assert bytes(second.canonical) == b'{"kind":"fact","n":1,"score":0.3333333333333333}'
    assert TrailHead.objects.get().seq == 2


@pytest.mark.parametrize(
    ("tamper", "line"),
    [
        (
            lambda: raw("UPDATE catalog_trailentry SET data = %s WHERE seq = 3", ['{"n": 99}']),
            "trail broken at seq 3: changed",
        ),
        (
            lambda: raw("UPDATE catalog_trailentry SET canonical = %s WHERE seq = 3", [b"{}"]),
            "trail broken at seq 3: changed",
        ),
        (
            lambda: raw("DELETE FROM catalog_trailentry WHERE seq = 3"),
            "trail broken at seq 3: missing",
        ),
        (
            lambda: (
                raw("DELETE FROM catalog_trailentry WHERE seq = 3"),
                raw("UPDATE catalog_trailentry SET seq = seq + 100 WHERE seq > 3"),
                raw("UPDATE catalog_trailentry SET seq = seq - 101 WHERE seq > 100"),
            ),
            "trail broken at seq 3: missing",
        ),
        (
            lambda: raw("DELETE FROM catalog_trailentry WHERE seq = 5"),
            "trail broken at seq 5: missing",
        ),
        (lambda: forge_at(6), "trail broken at seq 6: inserted"),
        (lambda: forge_at(3), "trail broken at seq 3: inserted"),
    ],
    ids=["data-edited", "bytes-edited", "deleted", "deleted-closed-up", "last-deleted",
         "appended", "inserted"],
)  # fmt: skip
def test_verify_names_the_first_entry_changed_removed_or_added_behind_its_back(tamper, line):
    facts(5)
    assert trail_verify().line() == "trail ok: 5 entries"

    tamper()

    assert trail_verify().line() == line


def forge_at(seq: int) -> None:
    """Insert a well-formed entry at `seq` by raw SQL, moving the later ones up to make room."""
    raw("UPDATE catalog_trailentry SET seq = seq + 100 WHERE seq >= %s", [seq])
    raw("UPDATE catalog_trailentry SET seq = seq - 99 WHERE seq > 100")
    prev = TrailEntry.objects.filter(seq=seq - 1).values_list("hash", flat=True).first()
    prev = bytes(prev) if prev is not None else bytes(32)
    canonical = b'{"kind":"fact","n":42}'
    raw(
        "INSERT INTO catalog_trailentry (seq, kind, data, canonical, prev_hash, hash, created_at)"
        " VALUES (%s, 'fact', %s, %s, %s, %s, CURRENT_TIMESTAMP)",
        [seq, '{"kind": "fact", "n": 42}', canonical, prev, entry_hash(prev, canonical)],
    )


def test_the_verify_command_prints_the_contract_line_and_exits_1_when_broken():
    facts(3)
    out = io.StringIO()
    call_command("verify_trail", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == "trail ok: 3 entries"

    raw("DELETE FROM catalog_trailentry WHERE seq = 2")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_trail", stdout=out, stderr=io.StringIO())
    assert exit_.value.code == 1
    assert out.getvalue().strip() == "trail broken at seq 2: missing"


def test_checkpoints_are_signed_and_a_forged_one_breaks_the_trail():
    facts(3)
    [checkpoint] = TrailCheckpoint.objects.all()
    assert (checkpoint.seq, bytes(checkpoint.hash)) == (3, bytes(TrailHead.objects.get().hash))
    assert trail_verify().checkpoints == 1

    raw("UPDATE catalog_trailcheckpoint SET signature = %s", [bytes(64)])

    assert trail_verify().line() == "trail broken at seq 3: changed"


def test_a_checkpoint_by_an_unknown_key_is_unverifiable_not_tampered(monkeypatch):
    monkeypatch.setattr(trail, "CHECKPOINT_SECONDS", 0)  # a checkpoint after every round
    facts(2)
    ours, other = signing.signing_key, Ed25519PrivateKey.generate()
    monkeypatch.setattr(signing, "signing_key", lambda: other)  # another installation's key
    facts(1)  # its checkpoint is signed by the other key
    monkeypatch.setattr(signing, "signing_key", ours)

    verdict = trail_verify()

    assert verdict.ok and verdict.line() == "trail ok: 3 entries"
    assert verdict.checkpoints == 1  # the first, by this installation's key
    assert len(verdict.unverifiable) == 1 and "unverifiable" in verdict.checkpoints_line()


def attested_run(django_capture_on_commit_callbacks):
    automation = AutomationFactory(mode="shadow", rules=[BILLING_RULE])
    IntentFactory(automation=automation)
    run = RunFactory(event=EventFactory(automation=automation, payload={"body": "invoice?"}))
    with django_capture_on_commit_callbacks(execute=True):
        run_advance(run_id=run.pk, actor="worker:test")
    return run


def test_an_attestation_verifies_and_fails_after_one_byte_changes(
    django_capture_on_commit_callbacks,
):
    run = attested_run(django_capture_on_commit_callbacks)
    envelope = run_attestation(run.pk)

    assert envelope["payloadType"] == "application/vnd.handrail.attestation+json"
    record = json.loads(base64.b64decode(envelope["payload"]))
    assert record["run_id"] == str(run.pk)
    assert [entry["kind"] for entry in record["trail"]] == ["decision"]
    assert attestation_verify(envelope).result == "intact"

    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b"shadow")] ^= 0x01  # one byte
    altered = {**envelope, "payload": base64.b64encode(bytes(payload)).decode()}
    assert attestation_verify(altered).result == "altered"


def test_an_attestation_verifies_with_the_public_key_alone(django_capture_on_commit_callbacks):
    run = attested_run(django_capture_on_commit_callbacks)
    envelope = run_attestation(run.pk)
    out = io.StringIO()
    call_command("trail_public_key", stdout=out, stderr=io.StringIO())

    # What a third party does with the PEM and the DSSE spec, without Handrail's code.
    public_key = serialization.load_pem_public_key(out.getvalue().encode())
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    public_key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae)  # raises if bad


def test_the_attestation_commands_round_trip_with_exit_codes(
    tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    run = attested_run(django_capture_on_commit_callbacks)
    out = io.StringIO()
    call_command("export_attestation", str(run.pk), stdout=out)
    path = tmp_path / "run.json"
    path.write_text(out.getvalue())

    with pytest.raises(SystemExit) as intact:
        call_command("verify_attestation", str(path), stdout=io.StringIO())
    assert intact.value.code == 0

    monkeypatch.setattr(signing, "signing_key", Ed25519PrivateKey.generate)  # key rotated away
    verdict = io.StringIO()
    with pytest.raises(SystemExit) as unknown:
        call_command("verify_attestation", str(path), stdout=verdict)
    assert unknown.value.code == 2
    assert verdict.getvalue().startswith("attestation unverifiable")


on_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL)",
)


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db(transaction=True)
def test_an_entry_committed_after_a_later_one_is_chained_after_it():
    opened, appended = threading.Event(), threading.Event()

    def slow_transaction():
        try:
            with transaction.atomic():
                trail_append(kind="fact", data={"name": "slow"})  # the lower id
                opened.set()
                appended.wait(10)
        finally:
            connections["default"].close()

    slow = threading.Thread(target=slow_transaction)
    slow.start()
    opened.wait(10)
    with transaction.atomic():
        trail_append(kind="fact", data={"name": "quick"})
    trail_chain()  # sees only the committed one
    appended.set()
    slow.join(10)
    trail_chain()

    chained = list(TrailEntry.objects.order_by("seq").values_list("data__name", "id"))
    assert [name for name, _ in chained] == ["quick", "slow"]
    assert chained[0][1] > chained[1][1]  # ids in the other order: the chain follows commits
    assert trail_verify().line() == "trail ok: 2 entries"
