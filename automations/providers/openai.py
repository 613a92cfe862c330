"""The openai provider: Chat Completions with strict structured outputs.

Works against OpenAI or any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp).
Every failure becomes a ProviderResult without a decision, so the run goes to a
person; nothing here logs payloads or model output.
"""

import json
import logging
import random
import time
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import openai
from django.conf import settings

from automations.http_client import httpx
from automations.outbound import OutboundRefused, transport_for
from catalog.models import Automation, Intent
from catalog.secret_env import SecretEnvRefused, secret_env_value

from .base import ProviderCall, ProviderResult
from .prompt import messages_build, response_format_build
from .strict import nulls_drop
from .validation import decision_validate

logger = logging.getLogger(__name__)

ATTEMPTS = 3  # one call and two retries, for 408, 409, 429, 5xx and connection errors
BACKOFF_SECONDS = 0.5  # doubled per retry, minus up to 25% jitter
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After gives up: a person is faster
# A completion with one small JSON decision is a few kilobytes; more is cut off (and fails).
MAX_COMPLETION_BYTES = 4 * 1024 * 1024
_MILLION = Decimal(1_000_000)
_MICRO = Decimal("0.000001")


class OpenAIProvider:
    """Asks a chat model for one JSON decision and validates it locally."""

    name = "openai"
    remote = True
    bills = True
    attempts = ATTEMPTS
    needs_model = True

    def endpoint(self, automation: Automation) -> str:
        """The automation's base_url, else OPENAI_BASE_URL, else OpenAI's own API."""
        return automation.base_url or settings.OPENAI_BASE_URL or DEFAULT_BASE_URL

    def decide(self, *, automation: Automation, document: dict) -> ProviderResult:
        call = ProviderCall(provider=self.name, model=automation.model)
        key_env = automation.api_key_env or "OPENAI_API_KEY"
        try:
            # Only through the allow-list: the row may predate it (catalog/secret_env.py).
            api_key = secret_env_value(key_env)
        except SecretEnvRefused as refused:
            return _failed(call, str(refused), automation)
        if not api_key:
            return _failed(call, f"API key variable {key_env} is not set", automation)
        if not automation.model:
            return _failed(call, "no model is configured", automation)
        intents = list(automation.intents.all())
        if not intents:
            return _failed(call, "the automation has no intents", automation)
        timeout = automation.latency_budget_ms / 1000
        client = client_for(
            base_url=self.endpoint(automation),
            api_key=api_key,
            timeout=timeout,
        )
        call.base_url = str(client.base_url).rstrip("/")
        request = {
            "model": automation.model,
            "messages": messages_build(automation=automation, intents=intents, document=document),
            "response_format": response_format_build(automation=automation, intents=intents),
        }
        started = time.monotonic()
        completion, error = _completion_create(client, request=request, call=call, timeout=timeout)
        call.latency_ms = int((time.monotonic() - started) * 1000)
        if completion is None:
            return _failed(call, error, automation)
        _usage_record(call, completion)
        decision, error = _completion_decision(
            completion, call=call, automation=automation, intents=intents
        )
        if decision is None:
            return _failed(call, error, automation)
        return ProviderResult(decision=decision, error="", call=call)


def client_for(*, base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """One client per endpoint, key, timeout and transport, so HTTP connections are reused."""
    return _client(base_url, api_key, timeout, settings.HANDRAIL_HTTP_TRANSPORT)


@lru_cache(maxsize=32)
def _client(base_url: str, api_key: str, timeout: float, transport: str) -> openai.OpenAI:
    # Retries are ours (_completion_create): the SDK would also retry timeouts,
    # multiplying the latency budget.
    http_client = openai.DefaultHttpxClient(
        transport=transport_for(max_response_bytes=MAX_COMPLETION_BYTES)
    )
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=http_client,
    )


def _completion_create(client: openai.OpenAI, *, request: dict, call: ProviderCall, timeout: float):
    """(completion, "") or (None, reason), retrying what may succeed next time.

    The completion is the answer's JSON as a dict. The request goes through the
    SDK's documented `client.post` with our plain-JSON body, which skips the typed
    transform of `chat.completions.create` (about half a millisecond per call) and
    keeps the SDK's auth, timeout and error types.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = client.post("/chat/completions", body=request, cast_to=httpx.Response)
        except openai.APITimeoutError:
            # The budget is spent: retrying would only make the person wait longer.
            return None, f"model timed out after {round(timeout * 1000)} ms"
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            if isinstance(cause, OutboundRefused):
                return None, str(cause)  # the address policy: refused again on a retry
            if attempt < ATTEMPTS:
                time.sleep(_backoff(attempt))
                continue
            return None, f"could not reach the model endpoint after {attempt} attempts: {cause}"
        except openai.APIStatusError as exc:
            call.request_id = exc.request_id or ""
            wait = _retry_wait(exc.response, attempt)
            if wait is not None and attempt < ATTEMPTS:
                time.sleep(wait)
                continue
            return None, _status_error(exc, attempt)
        call.request_id = response.headers.get("x-request-id", "")
        try:
            completion = response.json()
        except ValueError:
            completion = None
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            return None, "model endpoint answered without a chat completion"
        if not completion["choices"]:
            return None, "model answered without a choice"
        return completion, ""
    raise AssertionError("unreachable")


def _retry_wait(response, attempt: int) -> float | None:
    """Seconds to wait before retrying this answer, or None when it is not worth it."""
    status = response.status_code
    if status not in (408, 409, 429) and status < 500:
        return None
    retry_after = _retry_after(response.headers)
    if retry_after is not None:
        return retry_after if 0 <= retry_after <= MAX_RETRY_AFTER_SECONDS else None
    return _backoff(attempt)


def _retry_after(headers) -> float | None:
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return float(headers[name]) / divisor
        except (KeyError, ValueError):
            continue
    return None


def _backoff(attempt: int) -> float:
    return BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 - 0.25 * random.random())


def _status_error(exc: openai.APIStatusError, attempts: int) -> str:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    detail = _error_message(exc.body)
    return f"model endpoint answered {exc.status_code}{tries}" + (f": {detail}" if detail else "")


def _error_message(body) -> str:
    # The SDK hands over the inner {"message": ...} of an OpenAI-style error; other
    # bodies (HTML from a proxy, say) stay out of the reason.
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    message = body.get("message") if isinstance(body, dict) else None
    return message[:300] if isinstance(message, str) else ""


def _usage_record(call: ProviderCall, completion: dict) -> None:
    usage = completion.get("usage")
    if isinstance(usage, dict):
        call.input_tokens = _count(usage.get("prompt_tokens"))
        call.output_tokens = _count(usage.get("completion_tokens"))
    call.cost_usd = cost_usd(
        model=call.model, input_tokens=call.input_tokens, output_tokens=call.output_tokens
    )


def _count(value) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def cost_usd(*, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """Tokens priced by settings.HANDRAIL_MODEL_PRICES, USD per 1M tokens; unknown: "default"."""
    prices = settings.HANDRAIL_MODEL_PRICES
    input_price, output_price = prices.get(model) or prices["default"]
    cost = (
        Decimal(input_tokens) * Decimal(input_price)
        + Decimal(output_tokens) * Decimal(output_price)
    ) / _MILLION
    return cost.quantize(_MICRO, rounding=ROUND_HALF_UP)


def _completion_decision(
    completion: dict, *, call: ProviderCall, automation: Automation, intents: list[Intent]
):
    """(decision, "") from the first choice's content, or (None, reason)."""
    choice = completion["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return None, "model answered without a message"
    refusal = message.get("refusal")
    if refusal:
        call.raw_output = str(refusal)
        return None, f"model refused: {refusal}"
    content = message.get("content")
    content = content if isinstance(content, str) else ""
    call.raw_output = content
    if choice.get("finish_reason") == "length":
        return None, "model output was cut off at the token limit"
    try:
        data = json.loads(content)
    except ValueError:
        return None, "model output is not JSON"
    if isinstance(data, dict) and isinstance(data.get("arguments"), dict):
        schemas = {intent.name: intent.arguments_schema for intent in intents}
        name = data.get("intent")
        if isinstance(name, str) and name in schemas:
            data["arguments"] = nulls_drop(schema=schemas[name], value=data["arguments"])
    return decision_validate(automation=automation, data=data, intents=intents)


def _failed(call: ProviderCall, error: str, automation: Automation) -> ProviderResult:
    call.error = error
    # The reason may quote model output, so only the automation is logged.
    logger.info("openai provider gave no decision for automation %s", automation.slug)
    return ProviderResult(decision=None, error=error, call=call)
