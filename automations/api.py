"""The JSON API (contracts section 3), built with django-ninja.

Bodies are parsed by automations.event_input, not by ninja, so that every
error keeps the contract's format; the OpenAPI schema still documents them.
"""

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.request import UnreadablePostError
from django.urls import path
from gunicorn.http.errors import ParseException
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer

from automations.api_errors import (
    ApiError,
    ErrorOut,
    endpoint_not_found,
    errors_install,
    json_errors_view,
)
from automations.event_input import (
    INVALID_JSON,
    EventInputError,
    event_body_json_schema,
    event_input_parse,
)
from automations.metrics.tracecontext import trace_bind
from automations.ratelimit import rate_limit_hit
from automations.run_detail import RunDetailOut, run_detail, run_for_detail
from automations.services.ingestion import IdempotencyConflict, event_ingest
from automations.traceparent import trace_id_from_traceparent
from catalog.models import ApiToken
from catalog.tokens import TokenGrant, token_allows, token_authenticate, token_authenticate_for

SLUG_RE = re.compile(r"[a-z0-9-]{1,64}")
CLIENT_MAX_LENGTH = 100


class HandrailAPI(NinjaAPI):
    """NinjaAPI whose URLs answer unknown paths and wrong methods with the JSON error too."""

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        result = []
        for pattern in patterns:
            if pattern.name == "api-root":
                # Before ninja's root view (an HTML 404); its name still reverses for OpenAPI.
                result += [path("", endpoint_not_found), path("<path:rest>", endpoint_not_found)]
            elif pattern.name in ("openapi-json", "openapi-view"):
                pattern.callback = json_errors_view(
                    pattern.callback, methods=frozenset({"GET", "HEAD"})
                )
            else:
                pattern.callback = json_errors_view(pattern.callback)
            result.append(pattern)
        return result, app_name, namespace

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # The definitions the event body's schema refers to (ninja knows only its own models).
        schema["components"].setdefault("schemas", {}).update(EVENT_VALUE_SCHEMAS)
        return schema


api = HandrailAPI(
    title="Handrail API",
    version="1",
    urls_namespace="api",
    description="Ingest events and follow their runs. Errors are always "
    '`{"error": CODE, "message": TEXT, "field": PATH|null}`.',
)
errors_install(api)


def request_body(request: HttpRequest) -> bytes:
    """The raw body, or ApiError 413 when it (or its announced length) exceeds the limit."""
    limit = settings.HANDRAIL_MAX_EVENT_BYTES
    too_large = ApiError(413, "payload_too_large", f"the body is over {limit} bytes")
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise too_large
    else:
        unannounced_body_read(request, size=limit + 1)
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    except UnreadablePostError:
        raise ApiError(400, "bad_request", "the request body could not be read") from None
    # Content-Length may be absent or understated (chunked bodies).
    if len(body) > limit:
        raise too_large
    return body


def unannounced_body_read(request: HttpRequest, *, size: int) -> None:
    """Read up to `size` bytes of a body sent without Content-Length (chunked) into request.body.

    Django reads Content-Length bytes, so without one it sees an empty body. A server
    that sets wsgi.input_terminated (gunicorn does) ends its stream where the body ends,
    so reading it to the end is safe; from any other server nothing is read here.
    """
    meta = request.META
    if meta.get("CONTENT_LENGTH") or not meta.get("wsgi.input_terminated"):
        return
    if hasattr(request, "_body"):  # read already
        return
    try:
        request._body = meta["wsgi.input"].read(size)
    except (OSError, ParseException):  # gunicorn: a malformed chunk, or the client went away
        raise ApiError(400, "bad_request", "the request body could not be read") from None


class TokenAuth(HttpBearer):
    """Bearer token auth; the body size is checked first because 413 comes before 401.

    With `automation_from_url`, request.auth is a TokenGrant: the token with the
    automation the URL's slug names, read in the same statement. One class for
    both, because the OpenAPI schema names the security scheme after it.
    """

    def __init__(self, *, automation_from_url: bool = False):
        super().__init__()
        self.automation_from_url = automation_from_url

    def __call__(self, request: HttpRequest) -> ApiToken | TokenGrant | None:
        request_body(request)
        # Parsed here rather than by HttpBearer, which logs unexpected headers (secrets) in DEBUG.
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | TokenGrant | None:
        if not self.automation_from_url:
            return token_authenticate(token)
        slug = request.resolver_match.kwargs.get("slug", "")
        # A slug that cannot exist matches no automation and costs the join nothing.
        return token_authenticate_for(token, slug if SLUG_RE.fullmatch(slug) else "")


token_auth = TokenAuth()
ingest_token_auth = TokenAuth(automation_from_url=True)


# Stated by the parser's module, so that the schema says exactly what it enforces.
EVENT_BODY_SCHEMA, EVENT_VALUE_SCHEMAS = event_body_json_schema(refs="#/components/schemas/")


class EventAccepted(Schema):
    run_id: str
    trace_id: str
    status: str


ERROR_RESPONSES = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
}
ERROR_DESCRIPTIONS = {
    200: "Repeated idempotency_key with the same payload: the first run, current status.",
    202: "New event: its run was created in status `received`.",
    400: "`invalid_json`: the body is not JSON (or not UTF-8).",
    401: "`unauthorized`: no, bad or revoked token.",
    403: "`forbidden`: the token is not allowed for this automation.",
    404: "`not_found`: unknown automation (or run).",
    409: "`idempotency_conflict`: the key was used with a different payload.",
    413: "`payload_too_large`: the body is over HANDRAIL_MAX_EVENT_BYTES.",
    422: "`validation_error`: a field is missing, of the wrong type or not storable; "
    "`field` names it.",
    429: "`rate_limited`: too many requests for this token this minute; see Retry-After.",
}


def _responses_doc(statuses) -> dict:
    return {status: {"description": ERROR_DESCRIPTIONS[status]} for status in statuses}


@api.post(
    "/automations/{slug}/events",
    auth=ingest_token_auth,
    response={202: EventAccepted, 200: EventAccepted, **ERROR_RESPONSES},
    summary="Ingest one event",
    url_name="event-ingest",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EVENT_BODY_SCHEMA}},
        },
        "responses": {
            **_responses_doc([202, 200, *ERROR_RESPONSES]),
            429: {
                "description": ERROR_DESCRIPTIONS[429],
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            },
        },
        "parameters": [
            {
                "name": "traceparent",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "W3C Trace Context; a valid one keeps its trace id.",
            }
        ],
    },
)
def event_create(request: HttpRequest, slug: str):
    """Store the event once per idempotency key and answer with its run."""
    grant: TokenGrant = request.auth
    token = grant.token
    _ingest_allowed(grant, slug)
    raw = request.body  # already read and size-checked by TokenAuth
    try:
        clean = event_input_parse(raw)
    except EventInputError as exc:
        error = exc.first
        status = 400 if error.code == INVALID_JSON else 422
        raise ApiError(status, error.code, error.message, error.field) from None
    try:
        result = event_ingest(
            automation_id=grant.automation_id,
            idempotency_key=clean.idempotency_key,
            payload=clean.payload,
            raw_body=raw,
            segment=clean.segment,
            source=clean.source,
            client=f"api:{token.name}"[:CLIENT_MAX_LENGTH],
            api_token=token,
            trace_id=trace_id_from_traceparent(request.headers.get("traceparent")),
            decide=True,
        )
    except IdempotencyConflict as exc:
        raise ApiError(409, "idempotency_conflict", str(exc), "idempotency_key") from None
    run = result.run
    trace_bind(trace_id=run.trace_id, run_id=run.pk)
    body = {"run_id": str(run.pk), "trace_id": run.trace_id, "status": run.state}
    return Status(202 if result.created else 200, body)


def _ingest_allowed(grant: TokenGrant, slug: str) -> None:
    """Raise the API's error unless the token may post to the automation now (404, 403, 429)."""
    if grant.automation_id is None:
        raise ApiError(404, "not_found", f"no automation {slug!r}")
    if not grant.allowed:
        raise ApiError(403, "forbidden", "this token is not allowed for this automation")
    limited = rate_limit_hit(key=f"token:{grant.token.pk}")
    if not limited.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this token; retry later",
            headers={"Retry-After": str(limited.retry_after)},
        )


@api.get(
    "/runs/{run_id}",
    auth=token_auth,
    response={200: RunDetailOut, 401: ErrorOut, 404: ErrorOut, 413: ErrorOut},
    by_alias=True,
    summary="Read a run",
    url_name="run-detail",
    openapi_extra={
        "responses": {
            200: {"description": "The run: intent, verdicts, review, action, transitions."},
            401: {"description": ERROR_DESCRIPTIONS[401]},
            404: {"description": "`not_found`: no such run, or not visible to this token."},
            413: {"description": ERROR_DESCRIPTIONS[413]},
        }
    },
)
def run_read(request: HttpRequest, run_id: str):
    """Everything about one run; a token limited to other automations gets 404, not 403."""
    run = run_for_detail(run_id)
    if run is None or not token_allows(request.auth, run.automation_id):
        raise ApiError(404, "not_found", "no such run")
    trace_bind(trace_id=run.trace_id, run_id=run.pk)
    return Status(200, run_detail(run))
