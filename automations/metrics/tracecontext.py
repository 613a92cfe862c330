"""The trace id (and run id) of the work at hand, for the JSON log lines (jsonlog.py).

Set by the API (a request carrying a valid `traceparent`, then the run it
made or read), by the run page, and by the pipeline's services once they have
loaded a run; every request and every Celery task starts and ends with a clean
context, so one never lends its trace id to the next.
"""

from contextvars import ContextVar, Token

from automations.traceparent import trace_id_from_traceparent

_trace_id: ContextVar[str | None] = ContextVar("handrail_trace_id", default=None)
_run_id: ContextVar[int | None] = ContextVar("handrail_run_id", default=None)


def trace_bind(*, trace_id: str | None, run_id: int | None = None) -> None:
    """Log what follows under `trace_id` (and `run_id`), until the request or task ends."""
    _trace_id.set(trace_id or None)
    if run_id is not None:
        _run_id.set(run_id)


def trace_current() -> tuple[str | None, int | None]:
    """(trace id, run id) of the work at hand; None for what is not known."""
    return _trace_id.get(), _run_id.get()


def _clean() -> tuple[Token, Token]:
    return _trace_id.set(None), _run_id.set(None)


def _restore(tokens: tuple[Token, Token]) -> None:
    trace_token, run_token = tokens
    _trace_id.reset(trace_token)
    _run_id.reset(run_token)


class TraceContextMiddleware:
    """A clean context per request, joined to the caller's trace when it sends `traceparent`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tokens = _clean()
        trace_id = trace_id_from_traceparent(request.headers.get("traceparent"))
        if trace_id:
            _trace_id.set(trace_id)
        try:
            return self.get_response(request)
        finally:
            _restore(tokens)


# Tasks whose first argument is a run id (automations/tasks.py).
RUN_TASKS = frozenset(
    {"automations.decide_run", "automations.execute_run", "automations.compensate_run"}
)
_task_tokens: dict[str, tuple[Token, Token]] = {}


def _task_started(task_id=None, task=None, args=None, **_):
    _task_tokens[task_id] = _clean()
    if task is not None and task.name in RUN_TASKS and args and isinstance(args[0], int):
        _run_id.set(args[0])


def _task_ended(task_id=None, **_):
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        _restore(tokens)


def celery_signals_connect() -> None:
    """Give every Celery task a clean context (in a worker and in process alike)."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False, dispatch_uid="handrail_trace_prerun")
    task_postrun.connect(_task_ended, weak=False, dispatch_uid="handrail_trace_postrun")
