"""The API's one error format, `{"error": CODE, "message": TEXT, "field": PATH|null}`."""

import functools
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.http.request import RawPostDataException, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

logger = logging.getLogger(__name__)

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "idempotency_conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}
# How long a client should wait before trying again while the database is away.
RETRY_AFTER_SECONDS = 5


class ErrorOut(Schema):
    """Every error the API answers."""

    error: str
    message: str
    field: str | None = None


class ApiError(Exception):
    """Raise from a view to answer `status` with the error body; `headers` are added as given."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse({"error": code, "message": message, "field": field}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> JsonResponse:
    return error_response(
        401,
        "unauthorized",
        "send a valid token as `Authorization: Bearer TOKEN`",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    code = CODES_BY_STATUS.get(exc.status_code, "error")
    return error_response(exc.status_code, code, exc.message)


def _ninja_validation_error(request: HttpRequest, exc: ValidationError) -> JsonResponse:
    first = exc.errors[0] if exc.errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    # ninja prefixes the location with where it looked ("path", "query", "body").
    field = ".".join(loc[1:]) or None
    return error_response(422, "validation_error", first.get("msg", "invalid request"), field)


def _not_found(request: HttpRequest, exc: Http404) -> JsonResponse:
    return error_response(404, "not_found", "not found")


def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> JsonResponse:
    return error_response(413, "payload_too_large", "the body is too large")


def _unreadable(request: HttpRequest, exc: Exception) -> JsonResponse:
    return error_response(400, "bad_request", "the request body could not be read")


def _database_unavailable(request: HttpRequest, exc: Exception) -> JsonResponse:
    # Nothing was stored: the client may send the same request (same idempotency key) again.
    logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
    return database_unavailable_response()


def database_unavailable_response() -> JsonResponse:
    return error_response(
        503,
        "unavailable",
        "the database is unavailable; nothing was stored, try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unexpected(request: HttpRequest, exc: Exception) -> JsonResponse:
    # The client gets no detail; the log keeps the traceback (no bodies, so no PII).
    logger.exception("API error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "something went wrong on our side")


def errors_install(api: NinjaAPI) -> None:
    """Make every error `api` answers, ninja's own included, use the JSON error format."""
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(AuthenticationError, _authentication_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(ValidationError, _ninja_validation_error)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(RequestDataTooBig, _too_large)
    api.add_exception_handler(UnreadablePostError, _unreadable)
    api.add_exception_handler(RawPostDataException, _unreadable)
    api.add_exception_handler(OperationalError, _database_unavailable)
    api.add_exception_handler(InterfaceError, _database_unavailable)
    api.add_exception_handler(Exception, _unexpected)


@csrf_exempt
def endpoint_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any path under the API that no endpoint serves."""
    return error_response(404, "not_found", f"no endpoint at {request.path}")


def json_errors_view(view, *, methods: frozenset[str] | None = None):
    """Wrap an API view: CSRF-exempt (no cookie auth here), JSON 405 instead of ninja's text one.

    `methods`, when given, are the only methods the view answers (for ninja's plain
    Django views such as openapi.json, which would otherwise take any method).
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if methods is not None and request.method not in methods:
            response = HttpResponseNotAllowed(sorted(methods))
        else:
            response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": response["Allow"]},
            )
        return response

    wrapper.csrf_exempt = True
    return wrapper
