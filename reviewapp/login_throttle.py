"""Login throttling (django-axes): the address a request counts against, and the page a
locked-out person sees.

settings.py names `client_address` (AXES_CLIENT_IP_CALLABLE) and `lockout_response`
(AXES_LOCKOUT_CALLABLE); axes calls them with positional arguments.
"""

import ipaddress
import math
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.forms.forms import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import dateformat, timezone


def client_address(request: HttpRequest) -> str | None:
    """The address failed log-ins count against: the peer's, or the one trusted proxies saw.

    X-Forwarded-For is anyone's to write, so it counts only behind HANDRAIL_TRUSTED_PROXIES
    proxies, and then only the entry the outermost of them appended (the address that
    connected to it); entries left of it came from the client.
    """
    address = request.META.get("REMOTE_ADDR")
    proxies = settings.HANDRAIL_TRUSTED_PROXIES
    if proxies:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(forwarded) >= proxies and _parsed(forwarded[-proxies].strip()):
            address = forwarded[-proxies].strip()
    parsed = _parsed(address)
    if parsed is None:
        return None
    if parsed.version == 6 and parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        # One host or home usually holds a whole /64: counting its addresses one by one
        # would let it try another account's password from each of them.
        return str(ipaddress.IPv6Network((parsed, 64), strict=False).network_address)
    return str(parsed)


def _parsed(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address or "")
    except ValueError:
        return None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The login page the person used (site or admin), status 429, saying until when."""
    context = dict(getattr(original_response, "context_data", None) or {})
    template = getattr(original_response, "template_name", None)
    form = context.get("form")
    if form is None or template is None:
        # An authenticate() outside the login views: still a login page, not a bare text.
        username = (credentials or {}).get("username") or ""
        form = AuthenticationForm(request, initial={"username": username})
        template = "registration/login.html"
    message = lockout_message(
        now=request.axes_attempt_time, until=lockout_end(request=request, credentials=credentials)
    )
    # The form's own error slot: both login templates show it prominently (role=alert,
    # errornote), in place of "wrong password", which no longer says what happened.
    form.errors[NON_FIELD_ERRORS] = form.error_class(
        [message], error_class="nonfield", renderer=form.renderer
    )
    context["form"] = form
    return render(request, template, context, status=settings.AXES_HTTP_RESPONSE_CODE)


def lockout_end(*, request: HttpRequest, credentials: dict | None) -> datetime:
    """When enough of the failures that lock this request out will have cooled off to let it try.

    Axes counts failures per (user name, address, browser) row and lets a row lapse whole
    once its latest failure is older than the cool-off; a request is locked while the rows
    of its user name, or those of its address, add up to the limit.
    """
    now = request.axes_attempt_time
    limit = get_failure_limit(request, credentials)
    cool_off = get_cool_off(request)
    end = now
    for attempts in AxesDatabaseHandler().get_user_attempts(request, credentials):
        rows = list(
            attempts.order_by("attempt_time").values_list("attempt_time", "failures_since_start")
        )
        counted = sum(failures for _, failures in rows)
        for attempt_time, failures in rows:
            if counted < limit:
                break
            counted -= failures
            end = max(end, attempt_time + cool_off)
    return end


def lockout_message(*, now: datetime, until: datetime) -> str:
    """What happened and when to try again, to the minute (rounded up: `until` is still locked)."""
    shown = until.replace(second=0, microsecond=0) + timedelta(minutes=1)
    minutes = math.ceil((shown - now).total_seconds() / 60)
    local, today = timezone.localtime(shown), timezone.localtime(now).date()
    when = dateformat.format(local, "H:i T" if local.date() == today else "Y-m-d H:i T")
    return (
        f"Too many failed log-ins for this user name or from this address: log-in is locked"
        f" until {when} ({minutes} minute{'s' if minutes != 1 else ''} from now). Until then"
        " even the right password is refused; an administrator can lift the lock sooner."
    )
