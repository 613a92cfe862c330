"""The smallest Django site for bench/ceilings.py's Django figures (not part of Handrail).

DESIGN.md's ceiling is "Django 5.2 under gunicorn: a one-query view about 1,400
requests/s, a constant view about 3,500", with persistent connections. This is
such a site: `startproject`'s middleware, contrib.auth's user table, and two
JSON views, `/one-query` (one user by primary key) and `/constant`. It reads
the database from CEILING_DATABASE_URL; gunicorn serves it as
`bench.django_ceiling_site:application`.
"""

import os

import dj_database_url
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-ceilings-only",  # noqa: S106 (a throwaway site on 127.0.0.1)
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    # startproject's list, minus the messages framework's (no app for it here).
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    DATABASES={
        "default": dj_database_url.parse(
            os.environ.get("CEILING_DATABASE_URL", "sqlite:///:memory:"), conn_max_age=600
        )
    },
    USE_TZ=True,
)

import django  # noqa: E402 (after settings.configure)

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def one_query(request):
    user = User.objects.get(pk=1)
    return JsonResponse({"id": user.pk, "username": user.username})


def constant(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("one-query", one_query), path("constant", constant)]
application = get_wsgi_application()


def prepare() -> None:
    """Create contrib.auth's tables and the one user the view reads."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    User.objects.get_or_create(pk=1, defaults={"username": "ceiling"})


if __name__ == "__main__":
    prepare()
