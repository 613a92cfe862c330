"""The Content-Security-Policy header: strict, on every response; templates it does not break."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}


def directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def test_a_plain_page_carries_the_strict_policy(client, db):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert directives(response) == EXPECTED
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "url", ["/", "/review/", "/admin/", "/no-such-page/", "/api/v1/openapi.json"]
)
def test_every_kind_of_response_carries_it(admin_client, url):
    response = admin_client.get(url)

    assert response.status_code in (200, 302, 404)
    assert directives(response) == EXPECTED


# What the policy refuses to run or apply: inline scripts and styles, style attributes, event
# handler attributes, and htmx's hx-on attributes (evaluated as code).
INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "<style>": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "hx-on attribute": re.compile(r"\s(data-)?hx-on", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_templates_hold_nothing_the_policy_blocks(template):
    text = template.read_text()

    found = [name for name, pattern in INLINE.items() if pattern.search(text)]

    assert not found, f"{template.relative_to(TEMPLATES)}: {', '.join(found)}"
