"""The tamper-evident trail: append a fact, chain the facts in commit order, verify the chain.

Every decision (with its guardrail verdicts), review, action attempt, mode or
switch change, configuration change and audit verdict appends a TrailEntry in
the transaction that made it, so a fact is on the trail exactly when it is in
the database. Appending takes no lock: the entry is written unchained.

The sequencer (`trail_chain`, run by Celery beat every second, and at once
after each commit when tasks run in process) holds the one TrailHead row and
chains the entries committed since its last round, oldest id first: entry n
gets seq n and

    hash_n = SHA-256(DOMAIN || hash_{n-1} || canonical_n)

where canonical_n are the entry's RFC 8785 bytes, stored with it so that
verification hashes exactly what was hashed. An entry whose transaction
commits after a later one is simply chained in a later round: the chain is in
commit order, whatever order ids were given out in.

Verification walks the chain by seq: an entry whose own hash or content does
not match is "changed"; a link that skips a seq, or whose previous hash is not
its predecessor's, is "missing"; an entry the chain goes around (its successor
links to its predecessor) is "inserted".
"""

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import rfc8785
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.audit.signing import envelope_check, envelope_sign
from catalog.models import TrailCheckpoint, TrailEntry, TrailHead, TrailVerification
from reviewapp.rows import row_insert

logger = logging.getLogger(__name__)

DOMAIN = b"handrail.trail.v1\x00"
GENESIS = bytes(32)
CHAIN_BATCH = 5000
CHECKPOINT_TYPE = "application/vnd.handrail.checkpoint+json"
# A signed checkpoint of the head every this many entries, or this often while entries come.
CHECKPOINT_EVERY = 1000
CHECKPOINT_SECONDS = 60


def entry_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """The hash of an entry with RFC 8785 bytes `canonical` after an entry hashed `prev_hash`."""
    return hashlib.sha256(DOMAIN + prev_hash + canonical).digest()


def plain(value):
    """`value` as JSON data: datetimes as ISO 8601, decimals as strings, tuples as lists."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def trail_append(*, kind: str, data: dict, automation_id=None, run_id=None) -> TrailEntry | None:
    """Append a fact to the trail in the caller's transaction; None when the trail is off."""
    if not settings.HANDRAIL_TRAIL:
        return None
    content = plain({"kind": kind, **data})
    entry = row_insert(
        TrailEntry(
            kind=kind,
            automation_id=automation_id,
            run_id=run_id,
            data=content,
            canonical=rfc8785.dumps(content),
        )
    )
    if _in_process():
        # No beat runs the sequencer in process (demo, unit tests): chain once committed.
        transaction.on_commit(trail_chain)
    return entry


def _in_process() -> bool:
    from reviewapp.celery import app

    return bool(app.conf.task_always_eager)


def trail_chain(*, limit: int = CHAIN_BATCH) -> int:
    """Chain the committed entries not chained yet, in commit order; how many were chained.

    One sequencer at a time: the head row is locked, and a second caller
    returns at once (PostgreSQL), or waits its turn (SQLite).
    """
    _head_ensure()
    with transaction.atomic():
        head = TrailHead.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if head is None:
            return 0  # another sequencer holds the head
        pending = list(
            TrailEntry.objects.filter(seq=None).order_by("id").only("id", "canonical")[:limit]
        )
        if not pending:
            return 0
        seq, prev = head.seq, bytes(head.hash)
        for entry in pending:
            seq += 1
            entry.seq, entry.prev_hash = seq, prev
            entry.hash = prev = entry_hash(prev, bytes(entry.canonical))
        TrailEntry.objects.bulk_update(pending, ["seq", "prev_hash", "hash"], batch_size=1000)
        head.seq, head.hash, head.chained_at = seq, prev, timezone.now()
        head.save(update_fields=["seq", "hash", "chained_at"])
        _checkpoint_if_due(head)
    return len(pending)


def _head_ensure() -> None:
    """Put the head row back if it is gone (a flushed test database), at the last link."""
    if TrailHead.objects.filter(pk=1).exists():
        return
    last = TrailEntry.objects.exclude(seq=None).order_by("-seq").first()
    seq, hash_ = (last.seq, bytes(last.hash)) if last else (0, GENESIS)
    logger.warning("the trail's head row was missing: put back at seq %s", seq)
    TrailHead.objects.get_or_create(pk=1, defaults={"seq": seq, "hash": hash_})


def _checkpoint_if_due(head: TrailHead) -> None:
    last = TrailCheckpoint.objects.order_by("-seq").first()
    since = head.seq - (last.seq if last else 0)
    stale = last is None or (head.chained_at - last.signed_at).total_seconds() >= CHECKPOINT_SECONDS
    if since >= CHECKPOINT_EVERY or (since > 0 and stale):
        checkpoint_sign(seq=head.seq, hash_=bytes(head.hash), at=head.chained_at)


def checkpoint_statement(*, seq: int, hash_: bytes, at) -> bytes:
    """The RFC 8785 bytes a checkpoint signs."""
    return rfc8785.dumps({"seq": seq, "hash": hash_.hex(), "at": plain(at)})


def checkpoint_sign(*, seq: int, hash_: bytes, at) -> TrailCheckpoint:
    """Sign the chain's head at `seq` with the current key and keep the signature."""
    envelope = envelope_sign(CHECKPOINT_TYPE, checkpoint_statement(seq=seq, hash_=hash_, at=at))
    [signature] = envelope["signatures"]
    return TrailCheckpoint.objects.create(
        seq=seq,
        hash=hash_,
        key_id=signature["keyid"],
        signature=base64.b64decode(signature["sig"]),
        signed_at=at,
    )


@dataclass(frozen=True)
class Verdict:
    """What verification found: ok, or the first bad seq and how it is bad."""

    entries: int
    head_seq: int
    broken_at: int | None = None
    how: str = ""  # "changed" | "missing" | "inserted"
    checkpoints: int = 0  # signed checkpoints whose signature and hash held
    unverifiable: tuple[str, ...] = ()  # checkpoints signed by a key not known here

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def line(self) -> str:
        """The contract's one line (section 8)."""
        if self.ok:
            return f"trail ok: {self.entries} entries"
        return f"trail broken at seq {self.broken_at}: {self.how}"

    def checkpoints_line(self) -> str:
        """The signed checkpoints, with those no known key can check told apart."""
        line = f"checkpoints: {self.checkpoints} verified"
        if self.unverifiable:
            line += f", {len(self.unverifiable)} unverifiable ({'; '.join(self.unverifiable)})"
        return line


@dataclass(frozen=True)
class _Row:
    seq: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes
    consistent: bool  # `data` says what `canonical` says


def trail_verify(*, progress=None, batch: int = 10_000) -> Verdict:
    """Walk the whole chain by seq and name the first entry that was changed, removed or added.

    The signed checkpoints are checked on the way: a signature that fails, or a
    checkpointed hash the chain no longer has, is a change at that seq; one
    signed by a key not known here is reported as unverifiable, apart.
    `progress(entries_checked)` is called after every batch.
    """
    _head_ensure()
    head = TrailHead.objects.get(pk=1)
    checkpoints, unverifiable, broken_checkpoint = _checkpoints_checked()
    rows = _chained_rows(batch=batch, progress=progress)
    expected_seq, prev_hash, count = 1, GENESIS, 0

    def broken(at: int, how: str) -> Verdict:
        return Verdict(count, head.seq, at, how, len(checkpoints), unverifiable)

    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        how = _link_problem(row, following, expected_seq, prev_hash, head.seq)
        if how:
            return broken(expected_seq if row.seq != expected_seq else row.seq, how)
        if row.seq == broken_checkpoint or checkpoints.get(row.seq, row.hash) != row.hash:
            return broken(row.seq, "changed")
        count += 1
        expected_seq, prev_hash, row = row.seq + 1, row.hash, following
    if head.seq >= expected_seq:
        return broken(expected_seq, "missing")  # the chain's end was cut off
    if bytes(head.hash) != prev_hash:
        return broken(head.seq, "changed")
    return Verdict(count, head.seq, None, "", len(checkpoints), unverifiable)


def _checkpoints_checked() -> tuple[dict[int, bytes], tuple[str, ...], int | None]:
    """(seq -> hash of the checkpoints whose signature holds, unverifiable ones, first bad seq)."""
    held, unverifiable = {}, []
    for checkpoint in TrailCheckpoint.objects.order_by("seq"):
        hash_ = bytes(checkpoint.hash)
        statement = checkpoint_statement(seq=checkpoint.seq, hash_=hash_, at=checkpoint.signed_at)
        checked = envelope_check(
            {
                "payloadType": CHECKPOINT_TYPE,
                "payload": base64.b64encode(statement).decode(),
                "signatures": [
                    {
                        "keyid": checkpoint.key_id,
                        "sig": base64.b64encode(bytes(checkpoint.signature)).decode(),
                    }
                ],
            }
        )
        if checked.result == "altered":
            return held, tuple(unverifiable), checkpoint.seq
        if checked.result == "unverifiable":
            unverifiable.append(f"seq {checkpoint.seq}: key {checkpoint.key_id}")
        else:
            held[checkpoint.seq] = hash_
    return held, tuple(unverifiable), None


def _link_problem(row: "_Row", following, expected_seq: int, prev_hash: bytes, head_seq: int):
    """How `row` breaks the chain after an entry hashed `prev_hash`; "" when it does not."""
    if row.seq > head_seq:
        return "inserted"  # past the head: the sequencer never chained it
    if row.seq != expected_seq:
        return "missing"
    if following is not None and following.prev_hash == prev_hash:
        return "inserted"  # the chain goes around it
    if not row.consistent or entry_hash(row.prev_hash, row.canonical) != row.hash:
        return "changed"
    if row.prev_hash != prev_hash:
        return "missing"  # its predecessor is gone (and the seqs were closed up)
    return ""


def _chained_rows(*, batch: int, progress) -> Iterator[_Row]:
    """The chained entries by seq, read in batches straight from a cursor (no model objects).

    Whether `data` still says what `canonical` says is asked of PostgreSQL, which
    parses the stored bytes and compares them as jsonb; elsewhere Python does.
    """
    postgresql = connection.vendor == "postgresql"
    table = TrailEntry._meta.db_table
    consistent = "data = convert_from(canonical, 'UTF8')::jsonb" if postgresql else "data"
    sql = (
        f"SELECT seq, prev_hash, hash, canonical, {consistent} FROM {table}"  # noqa: S608
        " WHERE seq > %s ORDER BY seq LIMIT %s"
    )
    last, seen = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last, batch])
            fetched = cursor.fetchall()
        for seq, prev_hash, hash_, canonical, data in fetched:
            canonical = bytes(canonical)
            same = data if postgresql else _same_content(data, canonical)
            yield _Row(seq, bytes(prev_hash or b""), bytes(hash_ or b""), canonical, bool(same))
        seen += len(fetched)
        if progress is not None:
            progress(seen)
        if len(fetched) < batch:
            return
        last = fetched[-1][0]


def _same_content(data, canonical: bytes) -> bool:
    stored = json.loads(data) if isinstance(data, str) else data
    try:
        return stored == json.loads(canonical)
    except ValueError:
        return False


def trail_verification_run(
    *, by=None, progress=None, record: TrailVerification | None = None
) -> tuple[TrailVerification, Verdict]:
    """Verify the chain and keep what was found (the compliance page shows the last one).

    `record`: a row made beforehand (the compliance page's "verify now" polls it).
    """
    trail_chain()  # what has committed is checked too
    record = record or TrailVerification.objects.create(by=by)
    verdict = trail_verify(progress=progress)
    record.finished_at = timezone.now()
    record.entries, record.head_seq, record.ok = verdict.entries, verdict.head_seq, verdict.ok
    record.summary = f"{verdict.line()}; {verdict.checkpoints_line()}"
    record.save(update_fields=["finished_at", "entries", "head_seq", "ok", "summary"])
    return record, verdict
