"""gunicorn settings for Handrail (README, "Running it"):

    gunicorn -c reviewapp/gunicorn.conf.py reviewapp.wsgi:application --bind 0.0.0.0:8000

Command-line options override what is set here.
"""

from reviewapp.gunicorn_errors import json_errors_install

wsgi_app = "reviewapp.wsgi:application"


def post_fork(server, worker):
    # Requests gunicorn refuses itself (400, 414, 431, ...) get the API's JSON error body.
    json_errors_install()
