"""Hand-written hot-path SQL builds and stores rows exactly as the ORM would."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from automations.models import DailySpend, GuardrailVerdict, ModelCall, Run
from automations.services.spend import model_call_record, spend_today
from catalog.models import Automation
from reviewapp.rows import from_row, insert_rows, insert_statement, named, select_list, together
from tests.factories import AutomationFactory, RunFactory

pytestmark = pytest.mark.django_db


def fetch(model, pk):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select_list(model, 't')} FROM {table} t WHERE t.id = %s", [pk])  # noqa: S608
        return from_row(model, cursor.fetchone())


def test_from_row_builds_what_the_orm_builds():
    run = RunFactory(proposed_intent={"intent": "route_ticket", "arguments": {"team": "billing"}})
    automation = AutomationFactory(rules=[{"when": {"field": "payload.body"}}], daily_budget_usd=12)

    for model, pk in ((Run, run.pk), (Automation, automation.pk)):
        built, loaded = fetch(model, pk), model.objects.get(pk=pk)
        fields = [field.attname for field in model._meta.concrete_fields]
        assert {f: getattr(built, f) for f in fields} == {f: getattr(loaded, f) for f in fields}
        assert not built._state.adding

    # JSON comes back as Python values, not text; datetimes aware; decimals exact.
    built = fetch(Run, run.pk)
    assert built.proposed_intent["arguments"] == {"team": "billing"}
    assert built.created_at.tzinfo is not None


def test_from_row_converts_decimals_and_dates():
    automation = AutomationFactory()
    spend = DailySpend.objects.create(
        automation=automation, day=date(2026, 11, 24), cost_usd=Decimal("0.001234"), calls=3
    )

    built = fetch(DailySpend, spend.pk)

    assert (built.day, built.cost_usd, built.calls) == (date(2026, 11, 24), Decimal("0.001234"), 3)


def test_insert_rows_stores_what_save_stores_and_sets_pks():
    run = RunFactory()
    verdicts = [
        GuardrailVerdict(
            run=run, position=i, check_name=name, verdict="pass", reason="", details={"n": i}
        )
        for i, name in enumerate(["segment_policy", "confidence", "budget"])
    ]
    call = ModelCall(
        run=run,
        automation=run.automation,
        provider="openai",
        model="gpt-4.1-mini",
        cost_usd=Decimal("0.0012"),
        raw_output='{"intent": "x"}',
    )

    insert_rows(verdicts)
    insert_rows([call])

    stored = list(GuardrailVerdict.objects.filter(run=run).order_by("position"))
    assert [v.pk for v in stored] == [v.pk for v in verdicts]
    assert [(v.check_name, v.details) for v in stored] == [
        ("segment_policy", {"n": 0}),
        ("confidence", {"n": 1}),
        ("budget", {"n": 2}),
    ]
    loaded = ModelCall.objects.get(pk=call.pk)
    assert (loaded.cost_usd, loaded.raw_output) == (Decimal("0.0012"), '{"intent": "x"}')
    # auto_now_add is filled in as save() would, on the instance and in the row.
    assert call.created_at is not None and loaded.created_at == call.created_at
    assert not call._state.adding


def test_insert_rows_of_nothing_does_nothing():
    insert_rows([])
    assert not GuardrailVerdict.objects.exists()


def verdicts_for(run, names):
    return [
        GuardrailVerdict(run=run, position=i, check_name=name, verdict="pass", details={"n": i})
        for i, name in enumerate(names)
    ]


def test_a_model_call_is_written_with_its_spend_and_the_decisions_verdicts():
    run = RunFactory()

    call = model_call_record(
        run=run,
        automation=run.automation,
        provider="openai",
        cost_usd=Decimal("0.0012"),
        rows=verdicts_for(run, ["segment_policy", "budget"]),
    )
    model_call_record(
        run=run, automation=run.automation, provider="openai", cost_usd=Decimal("0.0003")
    )

    assert ModelCall.objects.get(pk=call.pk).created_at == call.created_at
    assert list(
        GuardrailVerdict.objects.filter(run=run)
        .order_by("position")
        .values_list("check_name", "details")
    ) == [("segment_policy", {"n": 0}), ("budget", {"n": 1})]
    assert spend_today(automation=run.automation, now=call.created_at) == Decimal("0.0015")
    assert DailySpend.objects.get(automation=run.automation).calls == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="WITH clauses that write: PostgreSQL")
def test_statements_together_run_as_one_and_return_the_last_ones_rows():
    run = RunFactory()
    first, second = verdicts_for(run, ["confidence"]), verdicts_for(run, ["intent_risk", "pii"])
    for verdict in second:
        verdict.position += 1

    sql, params = together(
        [insert_statement(first, connection), insert_statement(second, connection)]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = [row[0] for row in cursor.fetchall()]

    assert sql.count("INSERT") == 2 and sql.startswith("WITH ")
    stored = dict(GuardrailVerdict.objects.filter(run=run).values_list("check_name", "pk"))
    assert set(stored) == {"confidence", "intent_risk", "pii"}
    assert sorted(returned) == sorted([stored["intent_risk"], stored["pii"]])


def test_one_statement_together_is_that_statement():
    assert together([("SELECT %s", [1])]) == ("SELECT %s", [1])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one array per column: PostgreSQL")
def test_many_rows_go_in_one_statement_whose_text_does_not_grow_with_them():
    run = RunFactory()
    few = verdicts_for(run, ["segment_policy", "budget"])
    many = verdicts_for(run, ["confidence", "intent_risk", "pii", "do_not_automate", "kill"])
    for verdict in many:
        verdict.position += 2
    many[0].reason, many[1].details = "it's 'quoted', naïve", {"nested": [1, None, "x"]}

    (few_sql, few_params), (many_sql, many_params) = (
        insert_statement(rows, connection) for rows in (few, many)
    )
    insert_rows(few)
    insert_rows(many)

    # The same text and parameter count: psycopg and PostgreSQL prepare it once.
    assert few_sql == many_sql and len(few_params) == len(many_params)
    stored = list(GuardrailVerdict.objects.filter(run=run).order_by("position"))
    assert [v.pk for v in stored] == [v.pk for v in few + many]
    assert stored[2].reason == "it's 'quoted', naïve"
    assert stored[3].details == {"nested": [1, None, "x"]}


def test_a_statement_with_placeholders_gets_named_ones_with_its_values_under_them():
    sql, params = named(("INSERT INTO t (a, b) VALUES (%s, %s)", [1, "x"]), "w0_")

    assert sql == "INSERT INTO t (a, b) VALUES (%(w0_0)s, %(w0_1)s)"
    assert params == {"w0_0": 1, "w0_1": "x"}
    with pytest.raises(ValueError, match="2 placeholders for 1 values"):
        named(("VALUES (%s, %s)", [1]), "w1_")
