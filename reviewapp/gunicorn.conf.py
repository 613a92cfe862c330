"""gunicorn settings for Handrail (README, "Running it"):

    gunicorn -c reviewapp/gunicorn.conf.py reviewapp.wsgi:application --bind 0.0.0.0:8000

Command-line options override what is set here.
"""

import os
import shutil
import tempfile

from reviewapp.gunicorn_errors import json_errors_install

wsgi_app = "reviewapp.wsgi:application"
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    # The web processes' own metric counts (automations/metrics/instruments.py) go to files
    # in this directory, so that /metrics adds up every worker's whichever answers. Set
    # before any worker imports prometheus-client; emptied so that a restart starts at 0.
    directory = os.environ.get(_MULTIPROC)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ[_MULTIPROC] = tempfile.mkdtemp(prefix="handrail-prometheus-")
        server._handrail_prometheus_dir = os.environ[_MULTIPROC]


def post_fork(server, worker):
    # Requests gunicorn refuses itself (400, 414, 431, ...) get the API's JSON error body.
    json_errors_install()


def child_exit(server, worker):
    # A worker's counters stay in its files (counters only grow); this drops its live gauges.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    # Only the directory this server made for itself; one named by the environment stays.
    made = getattr(server, "_handrail_prometheus_dir", "")
    if made:
        shutil.rmtree(made, ignore_errors=True)
