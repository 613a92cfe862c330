"""Signed webhook deliveries after the Standard Webhooks specification (contracts section 5)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from standardwebhooks.webhooks import Webhook

from automations.http_client import httpx
from automations.outbound import OutboundRefused, transport_for
from automations.traceparent import traceparent_for
from catalog.secret_env import SecretEnvRefused, secret_env_value

from .base import (
    EXCERPT_CHARS,
    ConfigField,
    Delivery,
    delivery_failed,
    response_excerpt,
    status_is_retryable,
)

if TYPE_CHECKING:
    from automations.models import Action, Run

DEFAULT_TIMEOUT_SECONDS = 10.0
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format marker, not a secret)
USER_AGENT = "Handrail-Webhooks/1"
# Enough bytes for the excerpt's characters in UTF-8; a huge body is never read whole.
EXCERPT_BYTES = 4 * EXCERPT_CHARS


class WebhookConfigError(Exception):
    """The action config cannot produce a delivery; retrying will not help."""


def http_client() -> httpx.Client:
    """The process's shared client on the configured transport, so attempts reuse connections."""
    return _http_client(settings.HANDRAIL_HTTP_TRANSPORT)


@cache
def _http_client(transport: str) -> httpx.Client:
    # Shared across threads and forks: the transports keep their connections per
    # process (and CurlTransport its handles per thread).
    return httpx.Client(
        follow_redirects=False,
        timeout=DEFAULT_TIMEOUT_SECONDS,
        headers={"User-Agent": USER_AGENT},
        transport=transport_for(max_response_bytes=EXCERPT_BYTES),
    )


def webhook_signer(*, config: dict) -> Webhook:
    """The signer for the secret in the variable `config["secret_env"]`; never echoes the secret."""
    name = config.get("secret_env") or ""
    if not name:
        raise WebhookConfigError("the action config names no secret_env")
    try:
        # Only through the allow-list: the row may predate it (catalog/secret_env.py).
        value = secret_env_value(name)
    except SecretEnvRefused as refused:
        raise WebhookConfigError(str(refused)) from None
    if not value:
        raise WebhookConfigError(f"environment variable {name} (the webhook secret) is not set")
    encoded = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not value.startswith(SECRET_PREFIX) or not key:
        raise WebhookConfigError(
            f"environment variable {name} must hold the secret as whsec_<base64 of the key>"
        )
    return Webhook(key)


def timeout_seconds(config: dict) -> float:
    """The per-attempt timeout from the config, 10 s unless a positive number is given."""
    value = config.get("timeout_seconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_TIMEOUT_SECONDS


def signed_request(*, msg_id: str, body: dict, config: dict, trace_id: str) -> tuple[bytes, dict]:
    """The exact bytes to send and the headers whose signature covers exactly those bytes."""
    signer = webhook_signer(config=config)
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "Idempotency-Key": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(msg_id=msg_id, timestamp=now, data=data),
    }
    # A new span in the run's trace for every attempt.
    parent = traceparent_for(trace_id)
    if parent:
        headers["traceparent"] = parent
    return data.encode("utf-8"), headers


def response_head(response: httpx.Response, *, deadline: float) -> str:
    """The excerpt of the body's beginning (response_excerpt), read within the deadline."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass  # the status already decided the outcome; the excerpt is only a courtesy
    return response_excerpt(b"".join(chunks)[:EXCERPT_BYTES].decode("utf-8", errors="replace"))


def delivery_from_status(status_code: int, excerpt: str) -> Delivery:
    """Classify a receiver's answer: 2xx ok, 408/409/425/429/5xx retryable, anything else final."""
    if 200 <= status_code <= 299:
        return Delivery(
            ok=True, status_code=status_code, retryable=False, error="", response_excerpt=excerpt
        )
    error = f"receiver answered {status_code}"
    if 300 <= status_code <= 399:
        error += " (redirects are not followed)"
    return Delivery(
        ok=False,
        status_code=status_code,
        retryable=status_is_retryable(status_code),
        error=error,
        response_excerpt=excerpt,
    )


def webhook_post(*, url: str, msg_id: str, body: dict, config: dict, trace_id: str) -> Delivery:
    """POST one signed delivery; every outcome, including a network failure, is a Delivery."""
    if not url:
        return delivery_failed("the action config has no url", retryable=False)
    try:
        content, headers = signed_request(
            msg_id=msg_id, body=body, config=config, trace_id=trace_id
        )
    except WebhookConfigError as exc:
        return delivery_failed(str(exc), retryable=False)
    seconds = timeout_seconds(config)
    deadline = time.monotonic() + seconds
    try:
        with http_client().stream(
            "POST", url, content=content, headers=headers, timeout=httpx.Timeout(seconds)
        ) as response:
            return delivery_from_status(
                response.status_code, response_head(response, deadline=deadline)
            )
    except OutboundRefused as exc:
        # The address policy refuses the receiver; the next attempt would be refused too.
        return delivery_failed(str(exc), retryable=False)
    except httpx.TimeoutException:
        return delivery_failed(f"timed out after {seconds:g} s", retryable=True)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return delivery_failed("the action url is not a valid http(s) URL", retryable=False)
    except httpx.TransportError as exc:
        return delivery_failed(f"could not reach the receiver: {exc}"[:300], retryable=True)


class WebhookAdapter:
    """Delivers the contract body to `config["url"]`, signed, keyed by the action's key."""

    name = "webhook"
    config_fields = {
        "url": ConfigField("url", required=True),
        "secret_env": ConfigField("secret_env", required=True),
        "timeout_seconds": ConfigField("number", minimum=0, maximum=60, above_minimum=True),
        "compensation_url": ConfigField("url"),
    }

    def timeout_seconds(self, config: dict) -> float:
        """The per-attempt timeout of `config` (10 s unless set)."""
        return timeout_seconds(config)

    def deliver(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery:
        """One signed POST to the action url."""
        return webhook_post(
            url=config.get("url") or "",
            msg_id=action.idempotency_key,
            body=body,
            config=config,
            trace_id=run.trace_id,
        )

    def compensate(self, *, action: Action, run: Run, config: dict, body: dict) -> Delivery | None:
        """One signed POST to `compensation_url`, webhook-id `<key>:compensate`; else None."""
        url = config.get("compensation_url") or ""
        if not url:
            return None
        return webhook_post(
            url=url,
            msg_id=f"{action.idempotency_key}:compensate",
            body={**body, "compensation": True},
            config=config,
            trace_id=run.trace_id,
        )
