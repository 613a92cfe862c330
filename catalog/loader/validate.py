"""Whole-document validation of a catalog file (contracts section 1).

`catalog_validate` checks everything before anything is written and returns
the automations in the shape the models take, with defaults filled in.
"""

import re
from decimal import ROUND_HALF_UP, Decimal

import referencing.exceptions
from django.contrib.auth import get_user_model
from jsonschema import Draft202012Validator, SchemaError

from automations.adapters import ACTION_CONFIG_FIELDS, ADAPTERS, ConfigField
from automations.matching import PatternRefused, pattern_compile
from automations.providers import PROVIDERS
from catalog.models import (
    DataClassification,
    IntentRisk,
    MatchOperator,
    Mode,
    RiskTier,
    RuleEffect,
)
from catalog.secret_env import secret_env_problem

from .checks import (
    INVALID,
    MAX_POSITIVE_INT,
    Check,
    Field,
    boolean,
    choice,
    env_name,
    fields_check,
    integer,
    json_data,
    json_mapping,
    list_of,
    number,
    passthrough,
    text,
    unique,
    url,
)
from .errors import Problems, item_path, key_path

OPERATORS = tuple(MatchOperator.values)
NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}
MONEY_STEP = Decimal("0.0001")  # Automation.daily_budget_usd has 4 decimal places
CENTS = Decimal("0.01")  # Automation.reviewer_hourly_usd has 2

slug_text = text(
    max_length=64, pattern=r"[a-z0-9-]+", hint="must be lowercase letters, digits and hyphens"
)
field_path_text = text(
    max_length=300,
    pattern=r"[^.\s]+(?:\.[^.\s]+)*",
    hint="must be a dotted path into the event, such as payload.body",
)


def blank_or(check):
    """An optional string setting where an empty string means 'not set'."""

    def wrapped(value, path, problems):
        return "" if value == "" else check(value, path, problems)

    return wrapped


def regex_operand(value, path, problems):
    """A pattern the matcher can run: one RE2 (linear time) compiles."""
    if not isinstance(value, str):
        problems.add(path, "must be a string")
        return INVALID
    try:
        pattern_compile(value)
    except PatternRefused as refused:
        problems.add(path, pattern_problem(value, refused))
        return INVALID
    return value


def pattern_problem(pattern: str, refused: PatternRefused) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        # Python's message says where a broken pattern goes wrong.
        return f"not a valid regular expression: {error}"
    return (
        "not supported by RE2, the linear-time engine patterns run on "
        f"(no backreferences or look-around): {refused.reason}"
    )


def secret_env_name(value, path, problems):
    """The name of a variable an automation may read its secret from (catalog/secret_env.py)."""
    name = env_name(value, path, problems)
    if name is INVALID:
        return INVALID
    problem = secret_env_problem(name)
    if problem is not None:
        problems.add(path, problem)
        return INVALID
    return name


def list_operand(value, path, problems):
    if not isinstance(value, list):
        problems.add(path, "must be a list")
        return INVALID
    return json_data(value, path, problems)


OPERAND_CHECKS = {
    "matches": regex_operand,
    "equals": json_data,
    "contains": json_data,
    "in": list_operand,
}


def condition_clean(value, path, problems, extra_fields: dict) -> dict:
    """A mapping with `field` and exactly one operator, as {..., field, operator, value}."""
    fields = {
        **extra_fields,
        "field": Field(field_path_text, required=True),
        **{operator: Field(passthrough) for operator in OPERATORS},
    }
    cleaned = fields_check(value, path, problems, fields)
    if cleaned is INVALID:
        return INVALID
    present = [operator for operator in OPERATORS if operator in value]
    if len(present) != 1:
        found = f" (found {', '.join(present)})" if present else ""
        problems.add(path, f"needs exactly one of {', '.join(OPERATORS)}{found}")
        return INVALID
    operator = present[0]
    operand = OPERAND_CHECKS[operator](value[operator], key_path(path, operator), problems)
    for name in OPERATORS:
        cleaned.pop(name)
    return {**cleaned, "operator": operator, "value": operand}


def do_not_automate_clean(value, path, problems):
    extra = {
        "name": Field(text(max_length=200), required=True),
        "effect": Field(choice(RuleEffect.values), required=True),
    }
    return condition_clean(value, path, problems, extra)


def rule_clean(value, path, problems):
    """A rules-provider entry, stored exactly in the file's shape with defaults filled."""
    fields = {
        "when": Field(lambda v, p, pr: condition_clean(v, p, pr, {}), required=True),
        "intent": Field(text(max_length=100), required=True),
        "arguments": Field(json_mapping, default={}),
        "confidence": Field(number(minimum=0, maximum=1), default=1.0),
    }
    cleaned = fields_check(value, path, problems, fields)
    if cleaned is INVALID or cleaned["when"] is INVALID:
        return INVALID
    when = cleaned["when"]
    confidence = cleaned["confidence"]
    return {
        "when": {"field": when["field"], when["operator"]: when["value"]},
        "intent": cleaned["intent"],
        "arguments": cleaned["arguments"],
        "confidence": float(confidence) if confidence is not INVALID else INVALID,
    }


def arguments_schema_clean(value, path, problems):
    """A valid Draft 2020-12 JSON Schema whose type is object."""
    value = json_mapping(value, path, problems)
    if value is INVALID:
        return INVALID
    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as error:
        problems.add(sub_path(path, error.path), f"not a valid JSON Schema: {error.message}")
        return INVALID
    if value.get("type") != "object":
        problems.add(key_path(path, "type"), 'must be "object"')
        return INVALID
    return value


def arguments_problems(schema: dict, arguments) -> list[tuple[list, str]]:
    """Where and why `arguments` fail `schema` (empty when they pass)."""
    validator = Draft202012Validator(schema)
    try:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
    except referencing.exceptions.Unresolvable as error:
        return [([], f"cannot check against arguments_schema: {error}")]
    return [(list(error.path), error.message) for error in errors]


def sub_path(path: str, parts) -> str:
    for part in parts:
        path = item_path(path, part) if isinstance(part, int) else key_path(path, part)
    return path


def setting_check(setting: ConfigField) -> Check:
    """The checker for one kind of action setting an adapter declares."""
    if setting.kind == "url":
        return url()
    if setting.kind == "secret_env":
        return secret_env_name
    if setting.kind == "text":
        return text(max_length=setting.max_length)
    if setting.kind == "number":
        return number(
            minimum=setting.minimum, maximum=setting.maximum, above_minimum=setting.above_minimum
        )
    # "integer", the last of ConfigField.KINDS
    maximum = MAX_POSITIVE_INT if setting.maximum is None else int(setting.maximum)
    return integer(minimum=int(setting.minimum), maximum=maximum)


def action_fields(adapter_name: str) -> dict[str, Field]:
    """The settings an action of this adapter takes: its own, then those every action takes."""
    settings = {**ADAPTERS[adapter_name].config_fields, **ACTION_CONFIG_FIELDS}
    return {
        key: Field(setting_check(setting), required=setting.required)
        for key, setting in settings.items()
    }


def action_clean(value, path, problems):
    """{adapter, config}: `config` is every other key of the action, as written."""
    if not isinstance(value, dict):
        problems.add(path, "must be a mapping")
        return INVALID
    adapter = value.get("adapter")
    if adapter is None:
        problems.add(key_path(path, "adapter"), "required")
        return INVALID
    if not isinstance(adapter, str) or adapter not in ADAPTERS:
        problems.add(key_path(path, "adapter"), f"must be one of {', '.join(ADAPTERS)}")
        return INVALID
    settings = action_fields(adapter)
    cleaned = fields_check(value, path, problems, {"adapter": Field(passthrough), **settings})
    config = {key: cleaned[key] for key in settings if value.get(key) is not None}
    return {"adapter": adapter, "config": config}


def provider_name(value, path, problems):
    """The name of a registered decision provider (automations/providers)."""
    return choice(PROVIDERS)(value, path, problems)


INTENT_FIELDS = {
    "name": Field(
        text(max_length=100, pattern=r"[A-Za-z0-9_]+", hint="must be letters, digits and _"),
        required=True,
    ),
    "description": Field(text(blank=True), default=""),
    "risk": Field(choice(IntentRisk.values), default=IntentRisk.LOW.value),
    "arguments_schema": Field(arguments_schema_clean, default=NO_ARGUMENTS),
    "action": Field(action_clean),
}

SEGMENT_FIELDS = {
    "key": Field(slug_text, required=True),
    "enabled": Field(boolean, default=True),
    "mode": Field(choice(Mode.values), default=""),
}

DECISION_FIELDS = {
    "provider": Field(provider_name, required=True),
    "model": Field(text(max_length=200, blank=True), default=""),
    "base_url": Field(blank_or(url(max_length=500)), default=""),
    "api_key_env": Field(blank_or(secret_env_name), default=""),
    "instructions": Field(text(blank=True), default=""),
    "rules": Field(list_of(rule_clean), default=[]),
}

AUTOMATION_FIELDS = {
    "slug": Field(slug_text, required=True),
    "name": Field(text(max_length=200), required=True),
    "owner": Field(text(max_length=150), required=True),
    "reviewers": Field(list_of(text(max_length=150)), default=[]),
    "purpose": Field(text(), required=True),
    "rollback_plan": Field(text(), required=True),
    "risk_tier": Field(choice(RiskTier.values), required=True),
    "data_classification": Field(choice(DataClassification.values), required=True),
    "mode": Field(choice(Mode.values), required=True),
    "min_confidence": Field(number(minimum=0, maximum=1), default=0.7),
    "latency_budget_ms": Field(integer(minimum=1), default=8000),
    "daily_budget_usd": Field(number(minimum=0, maximum=99_999_999.9999), default=25.0),
    "audit_sample_rate": Field(number(minimum=0, maximum=1), default=0.05),
    "review_sla_minutes": Field(integer(minimum=1), default=60),
    "enabled": Field(boolean, default=True),
    "reviewer_hourly_usd": Field(number(minimum=0, maximum=99_999_999.99), default=0.0),
    "manual_minutes_per_case": Field(number(minimum=0, maximum=100_000), default=0.0),
    # Readiness and governance (extensions of contracts section 1).
    "success_metrics": Field(text(blank=True), default=""),
    "monitoring_plan": Field(text(blank=True), default=""),
    "labeling_budget": Field(text(max_length=200, blank=True), default=""),
    "on_call": Field(text(max_length=200, blank=True), default=""),
    "auto_demote": Field(boolean, default=False),
    "auto_demote_after": Field(integer(minimum=1, maximum=100_000), default=50),
    "auto_demote_over": Field(number(minimum=0, maximum=1), default=0.2),
    "notify_url": Field(blank_or(url(max_length=500)), default=""),
    "notify_secret_env": Field(blank_or(secret_env_name), default=""),
    "decision": Field(lambda v, p, pr: fields_check(v, p, pr, DECISION_FIELDS), required=True),
    "intents": Field(
        list_of(lambda v, p, pr: fields_check(v, p, pr, INTENT_FIELDS), non_empty=True),
        required=True,
    ),
    "segments": Field(list_of(lambda v, p, pr: fields_check(v, p, pr, SEGMENT_FIELDS)), default=[]),
    "do_not_automate": Field(list_of(do_not_automate_clean), default=[]),
}


class UserNames:
    """Answers 'does this username exist', asking the database once per name."""

    def __init__(self):
        self._known: dict[str, bool] = {}

    def exists(self, name: str) -> bool:
        if name not in self._known:
            user_model = get_user_model()
            lookup = {user_model.USERNAME_FIELD: name}
            self._known[name] = user_model.objects.filter(**lookup).exists()
        return self._known[name]


def catalog_validate(document) -> list[dict]:
    """The automations of `document`, cleaned; raises CatalogInvalid listing every problem."""
    problems = Problems()
    users = UserNames()

    def automation(value, path, problems):
        return automation_clean(value, path, problems, users)

    fields = {"automations": Field(list_of(automation), required=True)}
    cleaned = fields_check(document, "", problems, fields)
    if cleaned is not INVALID and isinstance(cleaned["automations"], list):
        unique(cleaned["automations"], "slug", "automations", problems, "slug")
    problems.raise_if_any()
    return cleaned["automations"]


def automation_check(document) -> list[tuple[str, str]]:
    """Every problem of one automation in the file's shape, as (path within it, message)."""
    problems = Problems()
    automation_clean(document, "", problems, UserNames())
    return problems.found


def automation_clean(value, path, problems, users: UserNames):
    """One automation as {slug, owner, reviewers, fields, intents, segments, do_not_automate}."""
    before = len(problems.messages)
    raw = fields_check(value, path, problems, AUTOMATION_FIELDS)
    if raw is INVALID:
        return INVALID
    users_check(raw, path, problems, users)
    children_check(raw, path, problems)
    if raw["decision"] is not INVALID:
        decision_check(raw["decision"], raw["intents"], key_path(path, "decision"), problems)
    if len(problems.messages) > before:
        # Keep the slug so that duplicate slugs are still reported.
        return {"slug": raw["slug"]}
    return automation_spec(raw)


def users_check(raw: dict, path: str, problems: Problems, users: UserNames) -> None:
    if isinstance(raw["owner"], str) and not users.exists(raw["owner"]):
        problems.add(key_path(path, "owner"), f'no user named "{raw["owner"]}"')
    if not isinstance(raw["reviewers"], list):
        return
    seen = set()
    for index, name in enumerate(raw["reviewers"]):
        if not isinstance(name, str):
            continue
        reviewer_path = item_path(key_path(path, "reviewers"), index)
        if name in seen:
            problems.add(reviewer_path, f'"{name}" is listed twice')
        elif not users.exists(name):
            problems.add(reviewer_path, f'no user named "{name}"')
        seen.add(name)


def children_check(raw: dict, path: str, problems: Problems) -> None:
    for key, unique_key, label in (
        ("intents", "name", "intent name"),
        ("segments", "key", "segment key"),
        ("do_not_automate", "name", "rule name"),
    ):
        if isinstance(raw[key], list):
            unique(raw[key], unique_key, key_path(path, key), problems, label)


def decision_check(decision: dict, intents, path: str, problems: Problems) -> None:
    """Cross-field rules: a model if the provider needs one; rules naming real intents."""
    provider = PROVIDERS.get(decision["provider"])
    if provider is not None and provider.needs_model and decision["model"] == "":
        problems.add(key_path(path, "model"), f"required when provider is {provider.name}")
    if not isinstance(decision["rules"], list) or not isinstance(intents, list):
        return
    schemas = {
        intent["name"]: intent["arguments_schema"]
        for intent in intents
        if isinstance(intent, dict) and isinstance(intent["name"], str)
    }
    for index, rule in enumerate(decision["rules"]):
        if rule is INVALID or rule["intent"] is INVALID:
            continue
        rule_path = item_path(key_path(path, "rules"), index)
        if rule["intent"] not in schemas:
            problems.add(key_path(rule_path, "intent"), f'no intent named "{rule["intent"]}"')
            continue
        schema = schemas[rule["intent"]]
        if schema is INVALID or rule["arguments"] is INVALID:
            continue
        for where, message in arguments_problems(schema, rule["arguments"]):
            problems.add(sub_path(key_path(rule_path, "arguments"), where), message)


# The governance settings a file may leave out; the dump writes them only when set.
GOVERNANCE_FIELDS = (
    "success_metrics",
    "monitoring_plan",
    "labeling_budget",
    "on_call",
    "auto_demote",
    "auto_demote_after",
    "notify_url",
    "notify_secret_env",
)


def money(value, *, step: Decimal = MONEY_STEP) -> Decimal:
    return Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP)


def automation_spec(raw: dict) -> dict:
    decision = raw["decision"]
    return {
        "slug": raw["slug"],
        "owner": raw["owner"],
        "reviewers": raw["reviewers"],
        "fields": {
            "name": raw["name"],
            "purpose": raw["purpose"],
            "rollback_plan": raw["rollback_plan"],
            "risk_tier": raw["risk_tier"],
            "data_classification": raw["data_classification"],
            "mode": raw["mode"],
            "min_confidence": float(raw["min_confidence"]),
            "latency_budget_ms": raw["latency_budget_ms"],
            "daily_budget_usd": money(raw["daily_budget_usd"]),
            "audit_sample_rate": float(raw["audit_sample_rate"]),
            "review_sla_minutes": raw["review_sla_minutes"],
            "enabled": raw["enabled"],
            "reviewer_hourly_usd": money(raw["reviewer_hourly_usd"], step=CENTS),
            "manual_minutes_per_case": float(raw["manual_minutes_per_case"]),
            **{name: raw[name] for name in GOVERNANCE_FIELDS},
            "auto_demote_over": float(raw["auto_demote_over"]),
            "provider": decision["provider"],
            "model": decision["model"],
            "base_url": decision["base_url"],
            "api_key_env": decision["api_key_env"],
            "instructions": decision["instructions"],
            "rules": decision["rules"],
        },
        "intents": [
            {
                "name": intent["name"],
                "description": intent["description"],
                "risk": intent["risk"],
                "arguments_schema": intent["arguments_schema"],
                "action_adapter": intent["action"]["adapter"] if intent["action"] else "",
                "action_config": intent["action"]["config"] if intent["action"] else {},
            }
            for intent in raw["intents"]
        ],
        "segments": raw["segments"],
        "do_not_automate": raw["do_not_automate"],
    }
