"""The edit form generated from an intent's JSON Schema: widgets, parsing, exact round trips."""

import pytest
from django.http import QueryDict

from automations.forms import argument_fields, arguments_from_form, field_error_keys
from automations.services.reviews import arguments_errors

SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "technical", "sales"]},
        "urgent": {"type": "boolean"},
        "seats": {"type": "integer", "minimum": 1, "maximum": 500},
        "discount": {"type": "number"},
        "subject": {"type": "string", "maxLength": 80, "description": "One line."},
        "reply": {"type": "string", "maxLength": 2000},
        "tags": {"type": "array", "items": {"type": "string"}},
        "customer": {"type": "object", "properties": {"tier": {"type": "string"}}},
        "level": {"enum": [1, 2, 3]},
        "comment": {"type": ["string", "null"]},
    },
    "required": ["team", "seats", "subject"],
    "additionalProperties": False,
}
ARGUMENTS = {
    "team": "billing",
    "urgent": True,
    "seats": 12,
    "discount": 0.15,
    "subject": "Invoice for March",
    "reply": "Hello,\nyour invoice is attached.\n\nRegards",
    "tags": ["vip", "eu"],
    "customer": {"tier": "gold"},
    "level": 2,
    "comment": None,
}


def by_name(fields):
    return {field.name: field for field in fields}


def submitted(fields) -> QueryDict:
    """What a browser posts for the untouched fields (textareas with CRLF, as browsers send)."""
    data = QueryDict(mutable=True)
    for field in fields:
        if field.widget == "checkbox":
            if field.checked:
                data[field.html_name] = "true"
        elif field.widget in ("textarea", "json"):
            data[field.html_name] = field.value.replace("\n", "\r\n")
        else:
            data[field.html_name] = field.value
    return data


def test_each_schema_type_gets_its_widget():
    fields = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS))

    assert {name: field.widget for name, field in fields.items()} == {
        "team": "select",
        "urgent": "checkbox",
        "seats": "number",
        "discount": "number",
        "subject": "text",
        "reply": "textarea",
        "tags": "json",
        "customer": "json",
        "level": "select",
        "comment": "text",
    }
    assert fields["team"].options == [
        ("billing", "billing"),
        ("technical", "technical"),
        ("sales", "sales"),
    ]
    assert fields["level"].options == [("1", "1"), ("2", "2"), ("3", "3")]
    assert (fields["seats"].step, fields["seats"].minimum, fields["seats"].maximum) == ("1", 1, 500)
    assert fields["discount"].step == "any"
    assert fields["subject"].description == "One line."


def test_fields_carry_the_names_and_ids_of_the_dom_contract():
    team = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS))["team"]

    assert (team.html_name, team.html_id, team.error_key) == (
        "arg.team",
        "arg-team",
        "arguments.team",
    )


def test_required_fields_are_marked_and_only_they():
    fields = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS))

    assert {name for name, field in fields.items() if field.required} == {
        "team",
        "seats",
        "subject",
    }


def test_widgets_show_the_typed_values():
    fields = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS))

    assert fields["team"].value == "billing"
    assert fields["urgent"].checked is True
    assert (fields["seats"].value, fields["discount"].value) == ("12", "0.15")
    assert fields["level"].value == "2"
    assert fields["comment"].value == ""
    assert '"vip"' in fields["tags"].value and '"tier": "gold"' in fields["customer"].value


def test_a_multi_line_string_gets_a_textarea_even_without_a_max_length():
    schema = {"type": "object", "properties": {"body": {"type": "string"}}}

    short = argument_fields(schema, arguments={"body": "one line"})[0]
    multi = argument_fields(schema, arguments={"body": "two\nlines"})[0]

    assert (short.widget, multi.widget) == ("text", "textarea")


def test_an_untouched_form_gives_back_exactly_the_models_arguments():
    fields = argument_fields(SCHEMA, arguments=ARGUMENTS)

    arguments, errors = arguments_from_form(SCHEMA, submitted(fields), initial=ARGUMENTS)

    assert errors == {}
    assert arguments == ARGUMENTS
    assert type(arguments["seats"]) is int


def test_edits_are_parsed_to_the_schema_types():
    data = submitted(argument_fields(SCHEMA, arguments=ARGUMENTS))
    data.update({"arg.seats": "40", "arg.discount": "2", "arg.level": "3", "arg.tags": '["a"]'})
    data.pop("arg.urgent")

    arguments, errors = arguments_from_form(SCHEMA, data, initial=ARGUMENTS)

    assert errors == {}
    assert (arguments["seats"], arguments["discount"], arguments["level"]) == (40, 2, 3)
    assert arguments["tags"] == ["a"]
    assert arguments["urgent"] is False  # the model set it, so unchecking means false


def test_an_unchecked_box_the_model_never_set_stays_absent():
    schema = {"type": "object", "properties": {"urgent": {"type": "boolean"}}}

    assert arguments_from_form(schema, QueryDict(), initial={}) == ({}, {})
    assert arguments_from_form(schema, QueryDict("arg.urgent=true"), initial={}) == (
        {"urgent": True},
        {},
    )


def test_an_emptied_field_is_left_out_so_a_required_one_is_reported():
    data = submitted(argument_fields(SCHEMA, arguments=ARGUMENTS))
    data.update({"arg.subject": "", "arg.seats": " ", "arg.team": ""})

    arguments, errors = arguments_from_form(SCHEMA, data, initial=ARGUMENTS)

    assert errors == {}
    assert not {"subject", "seats", "team"} & arguments.keys()
    schema_errors = arguments_errors(SCHEMA, arguments)
    assert schema_errors["arguments.subject"] == "is required"
    assert schema_errors["arguments.seats"] == "is required"


def test_an_empty_value_the_model_gave_is_kept_as_it_was():
    schema = {"type": "object", "properties": {"note": {"type": "string"}}}

    assert arguments_from_form(schema, QueryDict("arg.note="), initial={"note": ""}) == (
        {"note": ""},
        {},
    )


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("seats", "twelve", "enter a whole number"),
        ("seats", "1.5", "enter a whole number"),
        ("discount", "abc", "enter a number"),
        ("discount", "nan", "enter a finite number"),
        ("tags", "[oops", "not valid JSON"),
    ],
)
def test_unreadable_input_is_an_error_at_its_field(name, raw, message):
    data = submitted(argument_fields(SCHEMA, arguments=ARGUMENTS))
    data[f"arg.{name}"] = raw

    arguments, errors = arguments_from_form(SCHEMA, data, initial=ARGUMENTS)

    assert errors[f"arguments.{name}"].startswith(message)
    assert name not in arguments


def test_a_value_outside_the_enum_is_passed_on_for_the_schema_to_refuse():
    data = submitted(argument_fields(SCHEMA, arguments=ARGUMENTS))
    data["arg.team"] = "legal"

    arguments, _ = arguments_from_form(SCHEMA, data, initial=ARGUMENTS)

    assert arguments["team"] == "legal"
    assert "legal" in arguments_errors(SCHEMA, arguments)["arguments.team"]


def test_keys_the_schema_does_not_list_are_kept_from_the_proposal():
    schema = {"type": "object", "properties": {"team": {"type": "string"}}}

    arguments, _ = arguments_from_form(
        schema, QueryDict("arg.team=sales"), initial={"team": "billing", "extra": 1}
    )

    assert arguments == {"team": "sales", "extra": 1}


def test_redisplay_shows_what_was_typed_with_errors_at_the_fields():
    data = QueryDict("arg.team=legal&arg.seats=twelve&arg.urgent=true")
    errors = {
        "arguments.team": "'legal' is not one of ['billing', 'technical', 'sales']",
        "arguments.customer.tier": "is not a string",
        "arguments": "Additional properties are not allowed",
    }

    fields = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS, submitted=data, errors=errors))

    assert fields["seats"].value == "twelve"
    assert fields["team"].blank_option is True  # "legal" is not an option: nothing is selected
    assert fields["urgent"].checked is True
    assert fields["subject"].value == ""
    assert fields["team"].error.startswith("'legal'")
    assert fields["customer"].error == "is not a string"  # a nested error shows at its property
    assert field_error_keys(SCHEMA, errors) == {"arguments.team", "arguments.customer.tier"}


def test_a_required_select_with_a_value_offers_no_blank_option():
    fields = by_name(argument_fields(SCHEMA, arguments=ARGUMENTS))

    assert fields["team"].blank_option is False
    assert by_name(argument_fields(SCHEMA, arguments={}))["team"].blank_option is True
    assert fields["level"].blank_option is True  # optional: "no value" is a choice


def test_a_schema_without_properties_has_no_fields():
    assert argument_fields({"type": "object"}, arguments={"a": 1}) == []
    assert arguments_from_form({"type": "object"}, QueryDict(), initial={"a": 1}) == ({"a": 1}, {})


def test_fields_come_required_first_then_by_name_whatever_the_key_order():
    # PostgreSQL's jsonb hands keys back shortest first; the form must not follow it.
    shuffled = {**SCHEMA, "properties": dict(reversed(list(SCHEMA["properties"].items())))}
    names = [field.name for field in argument_fields(shuffled)]
    assert names == [
        "team",
        "seats",
        "subject",
        "comment",
        "customer",
        "discount",
        "level",
        "reply",
        "tags",
        "urgent",
    ]
    assert names == [field.name for field in argument_fields(SCHEMA)]
