"""A webhook receiver for `make demo`, so approved demo actions land somewhere visible.

Enabled only with HANDRAIL_DEMO_RECEIVER=1. It verifies each delivery's
Standard Webhooks signature with DEMO_WEBHOOK_SECRET, as a real receiver would,
and keeps the last deliveries in memory for the /demo/hooks/ page.
"""

import os
from collections import deque
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

RECENT: deque = deque(maxlen=100)
SECRET_ENV = "DEMO_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a secret)


@csrf_exempt
@require_POST
def receive(request, name: str):
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        return JsonResponse({"error": "receiver_not_configured"}, status=503)
    try:
        body = Webhook(secret).verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return JsonResponse({"error": "bad_signature"}, status=401)
    RECENT.appendleft(
        {
            "hook": name,
            "at": datetime.now(UTC),
            "webhook_id": request.headers.get("webhook-id", ""),
            "body": body,
        }
    )
    return HttpResponse(status=204)


@login_required
def recent(request):
    return render(request, "demo/recent_hooks.html", {"deliveries": list(RECENT)})
