"""Automations as code (contracts section 1): load and dump the catalog file format."""

from .apply import LoadReport, load_catalog
from .dump import dump_catalog
from .errors import CatalogInvalid
from .text import parse_catalog, render_catalog
from .validate import catalog_validate

__all__ = [
    "CatalogInvalid",
    "LoadReport",
    "catalog_validate",
    "dump_catalog",
    "load_catalog",
    "parse_catalog",
    "render_catalog",
]
