"""The messages and the strict response format sent to a chat model."""

import json
import re

from catalog.models import Automation, Intent

from .strict import schema_strict

_ANSWER_GUIDE = (
    "Answer with one JSON object: `intent` (one of the intents above), `arguments` "
    "(the arguments of that intent), `confidence` (a number from 0 to 1) and "
    "`rationale` (one short sentence)."
)


def messages_build(*, automation: Automation, intents: list[Intent], document: dict) -> list[dict]:
    """System message (instructions, intents, answer shape) and the event as JSON."""
    listing = "\n".join(
        f"- {intent.name}: {intent.description}" if intent.description else f"- {intent.name}"
        for intent in intents
    )
    system = f"{automation.instructions.strip()}\n\nIntents:\n{listing}\n\n{_ANSWER_GUIDE}".lstrip()
    user = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def response_format_build(*, automation: Automation, intents: list[Intent]) -> dict:
    """The `response_format` of a strict structured output for this automation's intents."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema_name(automation.slug),
            "strict": True,
            "schema": decision_schema(intents),
        },
    }


def schema_name(slug: str) -> str:
    """A response-format name within the API's limits: [a-zA-Z0-9_-], at most 64 characters."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", slug)[:64] or "decision"


def decision_schema(intents: list[Intent]) -> dict:
    """The decision object; `arguments` is one branch per intent.

    Strict mode forbids `anyOf` at the root, so the intent/arguments pairing cannot
    be expressed there; a mismatched pair is caught by the local validation.
    """
    branches, defs = [], {}
    for intent in intents:
        strict = schema_strict(intent.arguments_schema or {"type": "object"})
        branches.append(
            {**_defs_hoist(strict, prefix=f"{intent.name}__", into=defs), "title": intent.name}
        )
    schema = {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": [intent.name for intent in intents]},
            "arguments": branches[0] if len(branches) == 1 else {"anyOf": branches},
            "confidence": {"type": "number", "description": "From 0 to 1."},
            "rationale": {"type": "string"},
        },
        "required": ["intent", "arguments", "confidence", "rationale"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _defs_hoist(schema: dict, *, prefix: str, into: dict) -> dict:
    # References resolve from the document root, so an intent's own definitions
    # move to the decision's root under a per-intent prefix.
    defs = {**schema.pop("$defs", {}), **schema.pop("definitions", {})}
    for name, sub in defs.items():
        into[prefix + name] = _refs_rewrite(sub, prefix)
    return _refs_rewrite(schema, prefix)


def _refs_rewrite(node, prefix: str):
    if isinstance(node, list):
        return [_refs_rewrite(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _refs_rewrite(value, prefix) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str):
        for head in ("#/$defs/", "#/definitions/"):
            if ref.startswith(head):
                node["$ref"] = "#/$defs/" + prefix + ref[len(head) :]
    return node
