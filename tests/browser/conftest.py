"""Headless Chromium against pytest-django's live server.

Browser tests are marked `browser` and run only when HANDRAIL_BROWSER_TESTS=1.
The browser starts once for this package; each test gets fresh contexts
(cookies, storage) and pages. Every page records what the Content-Security-Policy
blocked (`securitypolicyviolation` events), its console errors and the policy
header of each document it loaded (`page_records`); a test whose pages broke the
policy fails. A failing test leaves a screenshot and the page's console log under
var/browser-failures/.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from automations.models import ReviewTask
from catalog.models import Automation
from tests.factories import (
    AutomationFactory,
    EventFactory,
    IntentFactory,
    ReviewTaskFactory,
    RunFactory,
    UserFactory,
)
from tests.support.celery_worker import TEST_WEBHOOK_SECRET_ENV
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
FAILURES_DIR = ROOT / "var" / "browser-failures"
CHROMIUM = os.environ.get("HANDRAIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
PASSWORD = "correct-horse-battery"  # UserFactory's password

# An intent whose arguments have enums (rendered as <select>) and a pattern the
# server checks, so a test can type a value the schema rejects.
ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "technical", "sales"]},
        "priority": {"type": "string", "enum": ["p1", "p2", "p3"]},
        "ticket_ref": {"type": "string", "pattern": "^T-[0-9]+$"},
    },
    "required": ["team", "priority", "ticket_ref"],
    "additionalProperties": False,
}


def proposed_intent(n: int) -> dict:
    return {
        "intent": "route_ticket",
        "arguments": {"team": "billing", "priority": "p2", "ticket_ref": f"T-{100 + n}"},
        "confidence": 0.55,
        "rationale": "Invoice question.",
    }


# Runs in every document before its own scripts; the binding survives navigations.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__handrailViolation(
    `${e.effectiveDirective} refused ${e.blockedURI || "inline code"}`
    + ` (${e.sourceFile || document.URL}:${e.lineNumber}) ${e.sample || ""}`.trimEnd());
}, true);
"""


@dataclass
class PageRecord:
    """What one page saw: policy violations, console errors, and each document's policy header."""

    violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    documents: list[tuple[str, str | None]] = field(default_factory=list)  # (url, CSP header)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HANDRAIL_BROWSER_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason="browser test: set HANDRAIL_BROWSER_TESTS=1 to drive headless Chromium"
    )
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


def _failed(item) -> bool:
    return any(
        getattr(getattr(item, f"_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


# The browser.


@pytest.fixture(scope="package")
def playwright_sync():
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread, and
    # Django refuses ORM calls from a thread with a running loop. The ORM is
    # still only called synchronously here; the flag lives as long as the loop.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(playwright_sync):
    browser = playwright_sync.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _one_request_at_a_time(app):
    """The WSGI app behind a lock, each response read in full before the next request runs."""
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()

    return serialised


@pytest.fixture(scope="package")
def _live_app(django_db_setup, live_server):
    """On in-memory SQLite, let the live server run one request at a time.

    There the server's threads share the test's one connection to a
    shared-cache database, and two overlapping transactions fail at once with
    "database table is locked" instead of waiting as SQLite on a file does
    (and PostgreSQL runs them truly in parallel). Serialising requests keeps
    the browser's simultaneous submits honest without that artefact.
    """
    httpd = live_server.thread.httpd
    if not live_server.thread.connections_override:
        yield
        return
    original = httpd.get_app()
    httpd.set_app(_one_request_at_a_time(original))
    yield
    httpd.set_app(original)


@pytest.fixture
def base_url(django_db_setup, live_server, _live_app) -> str:
    # django_db_setup first: the live server must start on the test database
    # (on in-memory SQLite it then shares the test's connection).
    return live_server.url


@pytest.fixture
def page_records() -> dict:
    """{page: PageRecord} for every page this test opened."""
    return {}


@pytest.fixture
def new_page(request, browser, base_url, page_records):
    """Open a page in a fresh browser context (its own cookies): one per simulated person."""
    opened = []

    def open_page():
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        record = PageRecord()
        log: list[str] = []

        def violation(text: str) -> None:
            record.violations.append(text)
            log.append(f"csp violation: {text}")

        def console(message) -> None:
            log.append(f"console.{message.type}: {message.text}")
            # Not the browser's own probe for /favicon.ico (Handrail has no icon: a 404).
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
                record.console_errors.append(f"{message.text} ({message.location['url']})")

        def pageerror(error) -> None:
            log.append(f"pageerror: {error}")
            record.console_errors.append(f"uncaught: {error}")

        def response(resp) -> None:
            if resp.request.resource_type == "document":
                record.documents.append((resp.url, resp.headers.get("content-security-policy")))

        context.expose_function("__handrailViolation", violation)
        context.add_init_script(REPORT_VIOLATIONS)
        page = context.new_page()
        page.on("console", console)
        page.on("pageerror", pageerror)
        page.on("response", response)
        page.on(
            "requestfailed", lambda r: log.append(f"requestfailed: {r.method} {r.url} {r.failure}")
        )
        page_records[page] = record
        opened.append((context, page, log))
        return page

    yield open_page

    if _failed(request.node):
        _save_failure(request.node, [(page, log) for _, page, log in opened])
    for context, _, _ in opened:
        context.close()
    violations = [text for record in page_records.values() for text in record.violations]
    if violations and not _failed(request.node):
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations))


@pytest.fixture
def page(new_page):
    return new_page()


def _save_failure(item, pages) -> None:
    FAILURES_DIR.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
    for i, (page, log) in enumerate(pages, start=1):
        stem = name if i == 1 else f"{name}-{i}"
        try:
            page.screenshot(path=str(FAILURES_DIR / f"{stem}.png"), full_page=True)
        except Exception as exc:  # the page may have crashed; the log still helps
            log.append(f"screenshot failed: {exc}")
        (FAILURES_DIR / f"{stem}.log").write_text(f"url: {page.url}\n" + "\n".join(log) + "\n")


def login(page, user: User | str, password: str = PASSWORD, *, next_url: str = "") -> None:
    """Log in through Django's login form and wait until it has redirected away."""
    username = user if isinstance(user, str) else user.get_username()
    page.goto("/accounts/login/" + (f"?next={next_url}" if next_url else ""))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    if "/accounts/login/" in page.url:
        raise AssertionError(f"login as {username} failed: still on {page.url}")


# Data.


@pytest.fixture
def webhook(monkeypatch, test_webhook_secret):
    """A real receiver on 127.0.0.1 and the signing secret in the environment the adapter reads."""
    monkeypatch.setenv(TEST_WEBHOOK_SECRET_ENV, test_webhook_secret)
    with WebhookReceiver() as receiver:
        yield receiver


@dataclass
class ReviewerSetup:
    automation: Automation
    reviewers: list[User]
    tasks: list[ReviewTask]  # in claim order, oldest first
    receiver: WebhookReceiver
    secret: str  # what the receiver's deliveries must be signed with
    password: str = PASSWORD

    @property
    def reviewer(self) -> User:
        return self.reviewers[0]


@pytest.fixture
def reviewer_setup(transactional_db, webhook, test_webhook_secret):
    """Build an approve-mode automation, its reviewers and `tasks` awaiting review.

    Approvals deliver to `webhook` (a real receiver); tasks are created oldest
    first, so a reviewer's Next claims them in list order.
    """

    def build(
        *, tasks: int = 3, reviewers: tuple[str, ...] = ("ravi",), slug: str = "support-triage"
    ) -> ReviewerSetup:
        people = [UserFactory(username=name, roles=["reviewer"]) for name in reviewers]
        automation = AutomationFactory(slug=slug, name=slug.replace("-", " ").title())
        automation.reviewers.add(*people)
        IntentFactory(
            automation=automation,
            name="route_ticket",
            arguments_schema=ROUTE_SCHEMA,
            action_config={
                "url": webhook.url(f"/hooks/{slug}"),
                "secret_env": TEST_WEBHOOK_SECRET_ENV,
                "timeout_seconds": 5,
            },
        )
        made = []
        now = timezone.now()
        for n in range(tasks):
            run = RunFactory(
                event=EventFactory(
                    automation=automation,
                    payload={"subject": f"Invoice {n}", "body": f"Where is invoice {n}?"},
                ),
                state="awaiting_review",
                proposed_intent=proposed_intent(n),
            )
            task = ReviewTaskFactory(run=run)
            created = now - timedelta(minutes=tasks - n)
            ReviewTask.objects.filter(pk=task.pk).update(created_at=created)
            made.append(task)
        return ReviewerSetup(
            automation=automation,
            reviewers=people,
            tasks=made,
            receiver=webhook,
            secret=test_webhook_secret,
        )

    return build
