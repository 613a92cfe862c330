"""Signed records of one run (contracts section 8): export, and verify without Handrail.

The record is the run as the trail knows it (the event's hash, the decision
with its verdicts, the review, the action attempts) together with the run's
trail entries (seq, hashes and canonical bytes) and the chain's head at
export. It travels as a DSSE envelope: the payload is the record's RFC 8785
bytes, signed with the trail's Ed25519 key over DSSE's pre-authentication
encoding, so anyone with the public key (`manage.py trail_public_key`) can
check it with any DSSE or Ed25519 library, and recompute each entry's hash
from its canonical bytes.
"""

import base64
import binascii
import json
from dataclasses import dataclass

import rfc8785
from django.utils import timezone

from automations.models import Run
from catalog.audit.signing import envelope_check, envelope_sign
from catalog.audit.trail import entry_hash, plain, trail_chain
from catalog.models import TrailEntry, TrailHead

ATTESTATION_TYPE = "application/vnd.handrail.attestation+json"


def run_attestation(run_id: int) -> dict:
    """The signed DSSE envelope of run `run_id`; Run.DoesNotExist if there is none."""
    trail_chain()  # the run's latest entries get their seq first
    run = Run.objects.select_related(
        "event", "automation", "review_task__decided_by", "action"
    ).get(pk=run_id)
    record = {
        "type": "handrail.run-attestation/v1",
        "run_id": str(run.pk),
        "automation": run.automation.slug,
        "segment": run.segment,
        "trace_id": run.trace_id,
        "status": run.state,
        "event": {
            "idempotency_key": run.event.idempotency_key,
            "body_sha256": run.event.body_sha256,
            "received_at": run.event.received_at,
        },
        "decision": {
            "mode": run.effective_mode,
            "intent": run.proposed_intent,
            "final_intent": run.final_intent,
            "decided_by": run.decided_by,
            "verdicts": run.verdicts,
        },
        "review": _review(run),
        "action": _action(run),
        "trail": [
            {
                "seq": entry.seq,
                "kind": entry.kind,
                "prev_hash": bytes(entry.prev_hash).hex(),
                "hash": bytes(entry.hash).hex(),
                "canonical": base64.b64encode(bytes(entry.canonical)).decode(),
            }
            for entry in TrailEntry.objects.filter(run_id=run.pk, seq__isnull=False).order_by("seq")
        ],
        "head": _head(),
        "exported_at": timezone.now(),
    }
    return envelope_sign(ATTESTATION_TYPE, rfc8785.dumps(plain(record)))


def _review(run: Run) -> dict | None:
    task = getattr(run, "review_task", None)
    if task is None:
        return None
    return {
        "kind": task.kind,
        "state": task.state,
        "outcome": task.outcome,
        "reviewer": task.decided_by.get_username() if task.decided_by else None,
        "reject_reason": task.reject_reason,
        "decided_at": task.decided_at,
    }


def _action(run: Run) -> dict | None:
    action = getattr(run, "action", None)
    if action is None:
        return None
    return {
        "idempotency_key": action.idempotency_key,
        "adapter": action.adapter,
        "state": action.state,
        "attempts": [
            {
                "number": attempt.number,
                "started_at": attempt.started_at,
                "duration_ms": attempt.duration_ms,
                "status_code": attempt.status_code,
                "error": attempt.error,
            }
            for attempt in action.attempts.order_by("number")
        ],
    }


def _head() -> dict:
    head = TrailHead.objects.get(pk=1)
    return {"seq": head.seq, "hash": bytes(head.hash).hex()}


@dataclass(frozen=True)
class AttestationChecked:
    result: str  # "intact" | "altered" | "unverifiable"
    detail: str
    run_id: str | None = None


def attestation_verify(envelope) -> AttestationChecked:
    """Check the signature, then that every trail entry the record carries hashes as it says."""
    checked = envelope_check(envelope)
    if checked.result != "intact":
        return AttestationChecked(checked.result, checked.detail)
    if envelope.get("payloadType") != ATTESTATION_TYPE:
        return AttestationChecked("altered", f"payloadType is not {ATTESTATION_TYPE}")
    try:
        record = json.loads(checked.payload)
        for entry in record["trail"]:
            canonical = base64.b64decode(entry["canonical"], validate=True)
            prev_hash = bytes.fromhex(entry["prev_hash"])
            if entry_hash(prev_hash, canonical).hex() != entry["hash"]:
                return AttestationChecked("altered", f"trail entry {entry['seq']} does not hash")
        run_id = record["run_id"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        return AttestationChecked("altered", f"the record cannot be read: {exc}")
    entries = len(record["trail"])
    return AttestationChecked("intact", f"run {run_id}: {entries} trail entries", run_id)
