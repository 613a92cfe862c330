"""Governance notifications: a signed webhook to the automation's notify_url, if it has one."""

import logging

from automations.adapters.webhook import webhook_post
from catalog.models import Automation

logger = logging.getLogger(__name__)
NOTIFY_TIMEOUT_SECONDS = 5.0


def notify(*, automation: Automation, event_id: str, body: dict) -> bool:
    """POST `body` (Standard Webhooks, webhook-id `event_id`); False when it was not delivered.

    One attempt: a notification says something already recorded (history, trail), so a
    receiver that is down misses the message, not the fact.
    """
    if not automation.notify_url:
        return False
    delivery = webhook_post(
        url=automation.notify_url,
        msg_id=event_id,
        body={"automation": automation.slug, **body},
        config={
            "secret_env": automation.notify_secret_env,
            "timeout_seconds": NOTIFY_TIMEOUT_SECONDS,
        },
        trace_id="",
    )
    if not delivery.ok:
        logger.warning(
            "notification %s for %s not delivered: %s", event_id, automation.slug, delivery.error
        )
    return delivery.ok
