"""Login throttling: a user name, or an address, with too many failed log-ins is locked out
for a while, on the site's login page and the admin's alike, and is told until when."""

import math
import re
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY, authenticate
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import dateformat, timezone

from reviewapp.login_throttle import client_address, lockout_response
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"  # the factory's password
ATTACKER = "203.0.113.66"
LOCKED_OUT = "Too many failed log-ins"


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


@pytest.fixture
def cool_off(settings) -> timedelta:
    return settings.AXES_COOLOFF_TIME


@pytest.fixture
def clock(monkeypatch):
    """Throttling's idea of now, moved by hand. Axes stamps each request with it, but a new
    attempt row takes its time from the model field's auto_now_add: both must read the clock,
    or a row stamped with the real time reads as expired whenever the clock runs ahead."""

    class Clock:
        # Mid-morning, so that a lock-out ends the same day (the message then shows no date).
        now = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0)

        def advance(self, delta: timedelta) -> None:
            self.now += delta

    clock = Clock()
    monkeypatch.setattr("axes.handlers.proxy.now", lambda: clock.now)
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock.now)
    return clock


@pytest.fixture
def ravi(db):
    return UserFactory(username="ravi", roles=["reviewer"])


@pytest.fixture
def rosa(db):
    return UserFactory(username="rosa", roles=["reviewer"])


def log_in(client, username, password, *, address=ATTACKER, url=None, **headers):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def logged_in(client) -> bool:
    return SESSION_KEY in client.session


def shown_until(moment) -> str:
    """How the message names the end of a lock-out: the next whole minute after it."""
    shown = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return dateformat.format(timezone.localtime(shown), "H:i T")


def assert_locked_out(response, client):
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    assert not logged_in(client)


def test_thirty_wrong_passwords_then_the_right_one_is_refused_on_the_login_page(client, ravi):
    for _ in range(30):
        assert log_in(client, "ravi", "guess").status_code in (200, 429)

    response = log_in(client, "ravi", PASSWORD)

    assert_locked_out(response, client)
    html = response.content.decode()
    assert "<h1>Log in to Handrail</h1>" in html  # the login page itself, not a bare text
    assert 'role="alert"' in html
    assert 'name="password"' in html
    assert 'value="ravi"' in html
    assert "csrfmiddlewaretoken" in html


def test_the_limit_th_failure_locks_and_the_ones_before_it_do_not(client, ravi, limit):
    for _ in range(limit - 1):
        response = log_in(client, "ravi", "guess")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    assert_locked_out(log_in(client, "ravi", "guess"), client)


def test_the_message_says_until_when_and_the_right_password_works_after_it(
    client, ravi, limit, cool_off, clock
):
    locked_at = clock.now
    for _ in range(limit):
        log_in(client, "ravi", "guess")

    response = log_in(client, "ravi", PASSWORD)

    assert_locked_out(response, client)
    text = response.content.decode()
    minutes = math.ceil(cool_off.total_seconds() / 60) + 1
    assert f"locked until {shown_until(locked_at + cool_off)} ({minutes} minutes from now)" in text
    assert "even the right password is refused" in text
    clock.advance(cool_off + timedelta(seconds=1))
    response = log_in(client, "ravi", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_attempts_during_the_lock_out_do_not_prolong_it(client, ravi, limit, cool_off, clock):
    locked_at = clock.now
    for _ in range(limit):
        log_in(client, "ravi", "guess")

    clock.advance(cool_off / 2)
    for _ in range(5):
        response = log_in(client, "ravi", "guess")
        assert_locked_out(response, client)
    assert f"locked until {shown_until(locked_at + cool_off)}" in response.content.decode()

    clock.advance(cool_off / 2 + timedelta(seconds=1))
    assert log_in(client, "ravi", PASSWORD).status_code == 302


def test_one_address_trying_many_user_names_is_locked_out(client, ravi, limit):
    for n in range(limit):
        log_in(client, f"someone{n}", "guess", address=ATTACKER)

    assert_locked_out(log_in(client, "ravi", PASSWORD, address=ATTACKER), client)
    elsewhere = Client()
    assert log_in(elsewhere, "ravi", PASSWORD, address="198.51.100.20").status_code == 302


def test_one_user_name_tried_from_many_addresses_is_locked_out(client, ravi, rosa, limit):
    for n in range(limit):
        log_in(client, "ravi", "guess", address=f"198.51.100.{n + 1}")

    fresh = "192.0.2.200"
    assert_locked_out(log_in(client, "ravi", PASSWORD, address=fresh), client)
    # The address itself is not locked: another person logs in from it.
    assert log_in(client, "rosa", PASSWORD, address=fresh).status_code == 302


def test_the_admin_login_is_throttled_and_says_so_on_its_own_page(client, admin_user, limit):
    admin_login = reverse("admin:login")
    for _ in range(limit):
        log_in(client, "ada", "guess", url=admin_login)

    response = log_in(client, "ada", PASSWORD, url=admin_login)

    assert_locked_out(response, client)
    html = response.content.decode()
    assert 'id="login-form"' in html
    assert re.search(r'<p class="errornote">\s*' + LOCKED_OUT, html)
    assert client.get(reverse("admin:index")).status_code == 302


def test_failures_on_the_site_and_the_admin_count_together(client, admin_user, limit):
    for n in range(limit):
        url = reverse("admin:login") if n % 2 else reverse("login")
        log_in(client, "ada", "guess", url=url)

    assert_locked_out(log_in(client, "ada", PASSWORD), client)


def test_a_successful_login_does_not_wipe_the_failures_counted_so_far(client, ravi, rosa, limit):
    """Decided: no reset on success. It would clear the address's count as well, so a sprayer
    holding one account of its own could log into it to start its count again."""
    for n in range(limit - 1):
        assert log_in(client, f"someone{n}", "guess").status_code == 200
    assert log_in(client, "rosa", PASSWORD).status_code == 302

    attacker = Client()
    assert_locked_out(log_in(attacker, "someone-else", "guess"), attacker)
    assert_locked_out(log_in(attacker, "ravi", PASSWORD), attacker)


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, ravi, limit):
    for n in range(limit):
        log_in(client, f"someone{n}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n + 1}")

    assert_locked_out(log_in(client, "ravi", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.250"), client)


def test_behind_a_trusted_proxy_its_forwarded_address_is_throttled(client, ravi, settings, limit):
    settings.HANDRAIL_TRUSTED_PROXIES = 1
    proxy = "10.0.0.5"
    for n in range(limit):
        # The left entry is the client's to write; the proxy appended the right one.
        log_in(
            client,
            f"someone{n}",
            "guess",
            address=proxy,
            HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, {ATTACKER}",
        )

    assert_locked_out(
        log_in(client, "ravi", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR=ATTACKER), client
    )
    other = Client()
    response = log_in(other, "ravi", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert response.status_code == 302


def request_from(remote_addr=None, forwarded=None) -> HttpRequest:
    request = HttpRequest()
    if remote_addr:
        request.META["REMOTE_ADDR"] = remote_addr
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


def test_client_address_is_the_peer_unless_proxies_are_trusted(settings):
    settings.HANDRAIL_TRUSTED_PROXIES = 0
    assert client_address(request_from("192.0.2.1", "198.51.100.1")) == "192.0.2.1"

    settings.HANDRAIL_TRUSTED_PROXIES = 2
    request = request_from("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.1")
    assert client_address(request) == "198.51.100.1"
    # Fewer entries than proxies, or one that is no address: the peer, never a guess.
    assert client_address(request_from("10.0.0.2", "198.51.100.1")) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2", "nonsense, 10.0.0.1")) == "10.0.0.2"


def test_client_address_groups_an_ipv6_host_by_its_64_network(settings):
    settings.HANDRAIL_TRUSTED_PROXIES = 0

    one = client_address(request_from("2001:db8:1:2::a"))
    assert one == "2001:db8:1:2::"
    assert client_address(request_from("2001:db8:1:2:ffff:1:2:3")) == one
    assert client_address(request_from("2001:db8:1:3::a")) != one
    assert client_address(request_from("::ffff:192.0.2.7")) == "192.0.2.7"
    assert client_address(request_from()) is None


def test_a_lock_out_outside_the_login_views_still_gets_the_login_page(client, ravi, limit):
    for _ in range(limit):
        log_in(client, "ravi", "guess")
    request = RequestFactory().post("/elsewhere/", REMOTE_ADDR=ATTACKER)
    request.session = client.session

    assert authenticate(request, username="ravi", password=PASSWORD) is None
    assert request.axes_locked_out
    response = lockout_response(request, HttpResponse("plain"), {"username": "ravi"})

    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKED_OUT in html
    assert "<h1>Log in to Handrail</h1>" in html
    assert 'value="ravi"' in html


def test_a_lock_out_ending_tomorrow_names_the_day(client, ravi, limit, cool_off, clock):
    clock.now = clock.now.replace(hour=23, minute=55)
    for _ in range(limit):
        log_in(client, "ravi", "guess")

    response = log_in(client, "ravi", PASSWORD)

    ends = timezone.localtime(clock.now + cool_off).replace(second=0) + timedelta(minutes=1)
    assert f"locked until {dateformat.format(ends, 'Y-m-d H:i T')}" in response.content.decode()
