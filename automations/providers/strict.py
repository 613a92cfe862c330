"""Strict structured-output copies of JSON Schemas, and undoing what the copy changed.

OpenAI's strict mode wants every object to list all its properties in `required`
and to forbid additional properties. An optional property therefore becomes
required but nullable; after the answer, `nulls_drop` removes those nulls so the
arguments validate against the original schema (where the property may be absent
but need not accept null).
"""

import copy
from typing import Any

# Sub-schema keywords that hold one schema, a list of schemas, or a map of schemas.
_ONE = ("items", "additionalItems")
_LIST = ("anyOf", "allOf", "prefixItems")
_MAP = ("$defs", "definitions")
# Keywords strict mode refuses. They leave the copy only: the local validation still
# enforces them against the original schema.
_UNSUPPORTED = (
    "$schema",
    "$id",
    "default",
    "examples",
    "minLength",
    "maxLength",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
)


def schema_strict(schema: dict) -> dict:
    """A copy of `schema` for strict mode: optional properties nullable, refused keywords gone."""
    return _strict(copy.deepcopy(schema))


def _strict(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    for key in _UNSUPPORTED:
        schema.pop(key, None)
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        # A lone allOf (common in generated schemas) is just its one member.
        schema = {**schema.pop("allOf")[0], **schema}
        return _strict(schema)
    if "oneOf" in schema:
        # Strict mode knows anyOf, not oneOf; the local check still enforces "exactly one".
        schema["anyOf"] = schema.pop("oneOf")
    for key in _ONE:
        if key in schema:
            schema[key] = _strict(schema[key])
    for key in _LIST:
        if key in schema:
            schema[key] = [_strict(item) for item in schema[key]]
    for key in _MAP:
        if key in schema:
            schema[key] = {name: _strict(item) for name, item in schema[key].items()}
    if _is_object(schema):
        properties = schema.setdefault("properties", {})
        required = set(schema.get("required", []))
        for name, sub in properties.items():
            sub = _strict(sub)
            properties[name] = sub if name in required else _nullable(sub)
        schema["required"] = list(properties)
        schema["additionalProperties"] = False
    return schema


def _is_object(schema: dict) -> bool:
    kind = schema.get("type")
    return (
        kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in schema
    )


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if "$ref" in schema or "anyOf" in schema or kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    schema = dict(schema)
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    kinds = kind if isinstance(kind, list) else [kind]
    schema["type"] = kinds if "null" in kinds else [*kinds, "null"]
    return schema


def nulls_drop(*, schema: dict, value: Any) -> Any:
    """`value` without the nulls of properties that the original `schema` leaves optional."""
    return _drop(schema, value, root=schema)


def _drop(schema: Any, value: Any, *, root: dict) -> Any:
    schema = _resolved(schema, root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        cleaned = {}
        for name, item in value.items():
            if item is None and name in properties and name not in required:
                continue
            cleaned[name] = _drop(properties.get(name), item, root=root)
        value = cleaned
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_drop(schema["items"], item, root=root) for item in value]
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        # An object inside a branch loses its optional nulls too; validation picks the branch.
        if _resolved(branch, root) is not schema:
            value = _drop(branch, value, root=root)
    return value


def _resolved(schema: Any, root: dict) -> Any:
    # Local references only (`#/$defs/name`); anything else is left for the validator.
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                return schema
            target = target[part]
        if target is schema:
            return schema
        schema = target
    return schema
