"""Enqueue pipeline work. Call these from `transaction.on_commit`, never before commit.

A message only says "look at this run now": the run's state in the database
is the record. When the broker cannot take a message, the run stays where it
is, due (Run.due_at), and the sweep (services/recovery.py) enqueues it again
once the broker is back; whatever stored the run still succeeds.
"""

import logging
from datetime import datetime, timedelta

import kombu.exceptions
import redis.exceptions
from django.utils import timezone

logger = logging.getLogger(__name__)

# What publishing raises while the broker is down or unreachable.
BROKER_ERRORS = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
)


class BrokerUnavailable(Exception):
    """The broker did not answer."""


def queue_length() -> int:
    """How many messages wait in the pipeline's queue (0 when tasks run in process)."""
    from reviewapp.celery import app

    if app.conf.task_always_eager:
        return 0
    try:
        with app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            )
    except kombu.exceptions.ChannelError:
        # Redis keeps no empty list: the queue of a broker with nothing queued is "not found".
        return 0
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(str(exc)) from exc
    return declared.message_count


def broker_started_at() -> datetime | None:
    """When the broker last started (from Redis's uptime); None in process, or if it won't say."""
    from reviewapp.celery import app

    if app.conf.task_always_eager:
        return None
    try:
        with app.connection_for_read() as connection:
            client = getattr(connection.default_channel, "client", None)  # Redis's own
            if client is None:
                return None
            uptime = client.info("server")["uptime_in_seconds"]
    except redis.exceptions.ResponseError:
        return None  # some managed servers refuse INFO
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(str(exc)) from exc
    return timezone.now() - timedelta(seconds=uptime)


def enqueue_decide(run_id: int, *, priority: int | None = None) -> bool:
    from automations.tasks import decide_run

    return _send(decide_run, run_id, priority=priority)


def enqueue_execute(run_id: int, countdown: float = 0, *, priority: int | None = None) -> bool:
    from automations.tasks import execute_run

    return _send(execute_run, run_id, countdown, priority=priority)


def enqueue_compensate(run_id: int) -> bool:
    from automations.tasks import compensate_run

    return _send(compensate_run, run_id)


def _send(task, run_id: int, countdown: float = 0, *, priority: int | None = None) -> bool:
    """Publish `task(run_id)`; False when the broker could not take it (the sweep will).

    `priority` (0 is served first) overrides the task's, CELERY_TASK_DEFAULT_PRIORITY.
    """
    options = {"countdown": countdown or None}
    if priority is not None:
        options["priority"] = priority
    if task.app.conf.task_always_eager:
        task.apply_async(args=[run_id], **options)  # runs here and now
        return True
    try:
        task.apply_async(args=[run_id], **options)
    except BROKER_ERRORS as exc:
        logger.warning(
            "broker unavailable (%s): run %s waits for the sweep", type(exc).__name__, run_id
        )
        return False
    return True
