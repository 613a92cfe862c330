"""reviewapp/rows.py writes rows exactly as the ORM would, on PostgreSQL and SQLite alike."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from automations.models import ModelCall, Run
from reviewapp.rows import row_insert, rows_update
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
