"""reviewapp/rows.py reads and writes rows exactly as the ORM would, on PostgreSQL and SQLite."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from automations.models import Event, ModelCall, Run
from reviewapp.rows import row_get, row_insert, rows_update
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_an_inserted_row_reads_back_as_the_orm_would_have_stored_it():
    run = RunFactory()
    call = ModelCall(
        run=run,
        automation_id=run.automation_id,
        provider="openai",
        model="gpt-4.1-mini",
        cost_usd=Decimal("0.000123"),
        raw_output='{"intent": "route_ticket"}',
        redactions=[{"check": "pii_policy", "redactions": {"email": 2}}],
    )

    row_insert(call)

    stored = ModelCall.objects.get(pk=call.pk)
    assert not call._state.adding and call.pk is not None
    assert stored.cost_usd == Decimal("0.000123")
    assert stored.redactions == [{"check": "pii_policy", "redactions": {"email": 2}}]
    assert stored.created_at == call.created_at  # auto_now_add set as save() sets it


def test_an_update_moves_only_the_rows_its_guard_matches():
    run = RunFactory(state="received")
    when = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    values = {"state": "deciding", "verdicts": [{"check": "budget"}], "due_at": when}

    assert rows_update(Run, where={"id": run.pk, "state": "approved"}, values=values) == 0
    assert rows_update(Run, where={"id": run.pk, "state": "received"}, values=values) == 1

    run.refresh_from_db()
    assert (run.state, run.verdicts, run.due_at) == ("deciding", [{"check": "budget"}], when)


def test_a_row_read_is_the_instance_the_orm_would_have_made():
    run = RunFactory(verdicts=[{"check": "budget", "verdict": "pass"}])
    call = ModelCall.objects.create(
        run=run,
        automation_id=run.automation_id,
        provider="openai",
        cost_usd=Decimal("0.000123"),
        redactions=[{"check": "pii_policy"}],
    )
    run.due_at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    run.save()

    read = row_get(Run, where={"id": run.pk}, related="event")
    expected = Run.objects.select_related("event").get(pk=run.pk)

    for model, mine, theirs in ((Run, read, expected), (Event, read.event, expected.event)):
        for field in model._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name
    assert isinstance(read.event.payload, dict) and isinstance(read.due_at, datetime)
    assert row_get(ModelCall, where={"id": call.pk}).cost_usd == Decimal("0.000123")
    assert row_get(Run, where={"id": run.pk + 1000}) is None


def test_a_locked_read_names_the_same_row():
    run = RunFactory()
    with transaction.atomic():
        assert row_get(Run, where={"id": run.pk}, lock=True).pk == run.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL)")
def test_a_statement_used_again_and_again_is_planned_once_per_connection():
    run = RunFactory()
    for _ in range(6):
        row_get(Run, where={"id": run.pk}, related="event")

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "automations_run" JOIN "automations_event"' in sql for sql in prepared)
