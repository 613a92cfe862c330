"""Export review labels as training data: OpenAI fine-tuning chat JSONL, or CSV.

Every reviewed case is a label. The chat format needs a correct answer for
the assistant turn, so it leaves out labels without a final intent
(`rejected`, and suggest drafts that were `discarded`); the CSV keeps every
label. Automations classified confidential or restricted have their event,
intents and diffs passed through `automations.pii.pii_redact` before they
leave. Rows are streamed from the database, never held all at once.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, time

from django.utils import timezone

from automations.matching import event_document
from automations.models import Label, ReviewOutcome
from catalog.models import Automation, DataClassification

FORMATS = ("openai-chat", "csv")
CSV_COLUMNS = (
    "created_at",
    "run_id",
    "outcome",
    "reviewer",
    "model_intent",
    "final_intent",
    "diff",
)
REDACTED_CLASSIFICATIONS = frozenset(
    {DataClassification.CONFIDENTIAL, DataClassification.RESTRICTED}
)
# Labels with no correct answer to teach: left out of the chat format.
NO_ANSWER_OUTCOMES = (ReviewOutcome.REJECTED, ReviewOutcome.DISCARDED)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _since_start(since: date | datetime | None) -> datetime | None:
    """A date means from its local midnight; a naive datetime is taken in the current zone."""
    if since is None or isinstance(since, datetime):
        if since is not None and timezone.is_naive(since):
            return timezone.make_aware(since)
        return since
    return timezone.make_aware(datetime.combine(since, time.min))


def _redactor(automation: Automation):
    """The function applied to every value that leaves: pii_redact for sensitive automations."""
    if automation.data_classification not in REDACTED_CLASSIFICATIONS:
        return lambda value: value
    from automations.pii import pii_redact

    return lambda value: pii_redact(value)[0]


def labels_export(
    *, automation: Automation, since: date | datetime | None = None, fmt: str
) -> Iterator[str]:
    """Yield the automation's labels (oldest first) as lines ending in a newline.

    `fmt` "openai-chat": one {"messages": [system, user, assistant]} object per
    line; "csv": a header, then one row per label. Raises ValueError for an
    unknown format before yielding anything.
    """
    labels = _exported(automation=automation, since=since, fmt=fmt).order_by("created_at", "id")
    redact = _redactor(automation)
    if fmt == "openai-chat":
        return _chat_lines(automation, labels, redact)
    return _csv_lines(labels, redact)


def labels_count(*, automation: Automation, since: date | datetime | None = None, fmt: str) -> int:
    """How many labels labels_export writes for these arguments: a line each, CSV header aside."""
    return _exported(automation=automation, since=since, fmt=fmt).count()


def _exported(*, automation: Automation, since: date | datetime | None, fmt: str):
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    labels = Label.objects.filter(automation=automation)
    start = _since_start(since)
    if start is not None:
        labels = labels.filter(created_at__gte=start)
    if fmt == "openai-chat":  # fine-tuning wants an answer: no rejections, no discarded drafts
        labels = labels.exclude(outcome__in=NO_ANSWER_OUTCOMES).filter(final_intent__isnull=False)
    return labels


def _chat_lines(automation: Automation, labels, redact) -> Iterator[str]:
    for label in labels.select_related("run__event").iterator(chunk_size=1000):
        document = redact(event_document(label.run.event))
        final = redact(label.final_intent)
        record = {
            "messages": [
                {"role": "system", "content": automation.instructions},
                {"role": "user", "content": _dumps(document)},
                {"role": "assistant", "content": _dumps(final)},
            ]
        }
        yield _dumps(record) + "\n"


def _csv_lines(labels, redact) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(row) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for label in labels.select_related("reviewer").iterator(chunk_size=1000):
        yield line(
            [
                label.created_at.isoformat(),
                label.run_id,
                label.outcome,
                label.reviewer.get_username(),
                _dumps(redact(label.model_intent)),
                _dumps(redact(label.final_intent)),
                _dumps(redact(label.diff)),
            ]
        )
