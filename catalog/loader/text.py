"""Catalog files as text: YAML (a superset of JSON) in, YAML or JSON out."""

import json

import yaml

from .errors import CatalogInvalid

TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MERGE_TAG = "tag:yaml.org,2002:merge"


class CatalogLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as strings and reports repeated keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated_keys: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                self.repeated_keys.append(f'line {line}: duplicate key "{key_node.value}"')
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# JSON columns cannot hold dates, and a date-looking string is meant as a string.
CatalogLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class RepeatedKey(ValueError):
    pass


def _json_object(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise RepeatedKey
    return dict(pairs)


def parse_catalog(text: str):
    """The document in `text`; raises CatalogInvalid (with the line) on a syntax error."""
    text = text.removeprefix("\ufeff")
    try:
        # JSON first: PyYAML (YAML 1.1) rejects some valid JSON, such as tabs or "\/".
        return json.loads(text, object_pairs_hook=_json_object)
    except ValueError:
        pass
    loader = CatalogLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as error:
        raise CatalogInvalid([yaml_error_text(error)]) from None
    finally:
        loader.dispose()
    if loader.repeated_keys:
        raise CatalogInvalid(loader.repeated_keys)
    return document


def yaml_error_text(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"(document): {problem}"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


class CatalogDumper(yaml.SafeDumper):
    """Block style, multi-line strings as `|` blocks, no anchors."""

    def ignore_aliases(self, data):
        return True

    def increase_indent(self, flow=False, indentless=False):
        # Indent list items under their key, as people write them.
        return super().increase_indent(flow, False)


def _represent_text(dumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


CatalogDumper.add_representer(str, _represent_text)


def render_catalog(document: dict, *, fmt: str = "yaml") -> str:
    """The document as YAML or JSON text that parse_catalog reads back equal."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown format {fmt!r}")
    return yaml.dump(
        document,
        Dumper=CatalogDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
