"""Local validation of a decision, whatever the endpoint promised (contracts section 4)."""

import json
import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from catalog.models import Automation, Intent

DECISION_KEYS = ("intent", "arguments", "confidence", "rationale")
REQUIRED_KEYS = ("intent", "arguments", "confidence")


def decision_validate(
    *, automation: Automation, data: Any, intents: Iterable[Intent] | None = None
) -> tuple[dict | None, str]:
    """The decision in canonical form and "", or None and the first problem found.

    `intents` saves a query when the caller already holds automation.intents.all().
    """
    if not isinstance(data, dict):
        return None, "model output is not a JSON object"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        return None, f"model output is missing {_quoted(missing)}"
    extra = sorted(key for key in data if key not in DECISION_KEYS)
    if extra:
        return None, f"model output has unexpected keys {_quoted(extra)}"
    if intents is None:
        intents = automation.intents.all()
    intents = {intent.name: intent for intent in intents}
    name = data["intent"]
    if not isinstance(name, str):
        return None, "intent is not a string"
    if name not in intents:
        return None, f'unknown intent "{name}"'
    arguments = data["arguments"]
    if not isinstance(arguments, dict):
        return None, "arguments is not a JSON object"
    error = arguments_error(schema=intents[name].arguments_schema, arguments=arguments)
    if error:
        return None, error
    confidence = data["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None, "confidence is not a number"
    if not math.isfinite(confidence) or not 0 <= confidence <= 1:
        return None, f"confidence {confidence} is outside [0, 1]"
    rationale = data.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        return None, "rationale is not a string"
    decision = {
        "intent": name,
        "arguments": arguments,
        "confidence": float(confidence),
        "rationale": rationale or "",
    }
    return decision, ""


def arguments_error(*, schema: dict, arguments: Any) -> str:
    """The most relevant schema violation as `arguments.path: message`, or ""."""
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        return f"the intent's arguments schema is invalid: {exc.message}"
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return ""
    return f"{_path('arguments', error.absolute_path)}: {error.message}"


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    # Keyed by the schema's text: checking a schema is slower than validating with it.
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(root: str, parts) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def _quoted(keys: list[str]) -> str:
    return ", ".join(f'"{key}"' for key in keys)
