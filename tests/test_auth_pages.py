"""Login and logout pages, the layout around them, and CSRF on the login form."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"  # the factory's password


@pytest.fixture
def user(db):
    return UserFactory(username="ravi", roles=["reviewer"])


def test_login_page_renders_a_form_with_csrf(client, db):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert "csrfmiddlewaretoken" in html
    assert "/static/css/app.css" in html
    assert "/static/django_htmx/htmx-2.min.js" in html


def log_in(client, username: str, **extra):
    """Post the login form; returns the redirect's target."""
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD, **extra})
    assert response.status_code == 302
    return response["Location"]


def test_a_reviewer_lands_on_the_review_queues(client, user):
    assert log_in(client, "ravi") == reverse("landing")

    response = client.get(reverse("landing"))

    assert response["Location"] == reverse("review:home")
    assert client.get(reverse("review:home")).status_code == 200


@pytest.mark.parametrize(
    "roles",
    [["owner"], ["compliance"], ["admin"], ["reviewer", "owner"], ["reviewer", "compliance"], []],
)
def test_owners_compliance_admins_and_people_without_a_role_land_on_the_catalog(client, db, roles):
    UserFactory(username="someone", roles=roles)
    log_in(client, "someone")

    assert client.get(reverse("landing"))["Location"] == reverse("home")


def test_the_front_door_sends_a_reviewer_to_the_queues_after_logging_in(client, user):
    front_door = client.get(reverse("home"))
    assert front_door["Location"] == reverse("login")

    client.post(reverse("login"), {"username": "ravi", "password": PASSWORD})

    assert client.get(reverse("landing"))["Location"] == reverse("review:home")


def test_landing_requires_login(client, db):
    response = client.get(reverse("landing"))

    assert response["Location"] == f"{reverse('login')}?next={reverse('landing')}"


def test_login_honours_next(client, user):
    detail = reverse("automation_detail", args=["anything"])
    page = client.get(reverse("login"), {"next": detail})
    assert f'value="{detail}"' in page.content.decode()

    assert log_in(client, "ravi", next=detail) == detail


def test_login_does_not_follow_next_to_another_site(client, user):
    assert log_in(client, "ravi", next="https://evil.example/") == reverse("landing")


def test_wrong_password_shows_an_error_and_stays_logged_out(client, user):
    response = client.post(reverse("login"), {"username": "ravi", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_home_requires_login(client, db):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")


def test_other_pages_send_people_back_to_them_after_logging_in(client, db):
    response = client.get(reverse("automation_detail", args=["anything"]))

    assert response["Location"] == f"{reverse('login')}?next=/automations/anything/"


def test_logout_by_post_logs_out_and_returns_to_login(client, user):
    client.force_login(user)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("home")).status_code == 302


def test_logout_by_get_is_refused(client, user):
    client.force_login(user)

    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("home")).status_code == 200


def test_nav_has_a_post_logout_form_with_csrf(client, user):
    client.force_login(user)

    html = client.get(reverse("home")).content.decode()

    form_start = html.index(f'action="{reverse("logout")}"')
    form = html[html.rindex("<form", 0, form_start) : html.index("</form>", form_start)]
    assert 'method="post"' in form
    assert "csrfmiddlewaretoken" in form
    assert """hx-headers='{"x-csrftoken": \"""" in html


def test_login_post_without_csrf_token_is_rejected(db, user):
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(reverse("login"), {"username": "ravi", "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in strict.session


def test_login_post_with_csrf_token_is_accepted(db, user):
    strict = Client(enforce_csrf_checks=True)
    strict.get(reverse("login"))
    token = strict.cookies["csrftoken"].value

    response = strict.post(
        reverse("login"),
        {"username": "ravi", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302


@pytest.mark.parametrize(
    ("roles", "is_staff", "sees_review", "sees_admin"),
    [
        (["reviewer"], False, True, False),
        (["admin"], True, True, True),
        (["owner"], False, False, False),
        (["compliance"], True, False, True),
    ],
)
def test_nav_links_follow_roles(client, db, roles, is_staff, sees_review, sees_admin):
    person = UserFactory(username="someone", roles=roles, is_staff=is_staff)
    client.force_login(person)

    html = client.get(reverse("home")).content.decode()

    assert ('href="/review/"' in html) is sees_review
    assert (f'href="{reverse("admin:index")}"' in html) is sees_admin
    for role in roles:
        assert f'<span class="badge role">{role}</span>' in html
