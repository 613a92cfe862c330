"""gunicorn settings for Handrail (README, "Running it"):

    gunicorn -c reviewapp/gunicorn.conf.py reviewapp.wsgi:application --bind 0.0.0.0:8000

Command-line options override what is set here.
"""

import os
import shutil
import tempfile

from reviewapp.gunicorn_errors import json_errors_install

wsgi_app = "reviewapp.wsgi:application"

# The web processes' own metric counts (automations/metrics/instruments.py) go to files in
# this directory, so that /metrics adds up every worker's whichever answers. Set here, as
# the configuration loads: before the application (and prometheus-client) is imported,
# even with --preload.
MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
_made_here = ""
if not os.environ.get(MULTIPROC):
    _made_here = os.environ[MULTIPROC] = tempfile.mkdtemp(prefix="handrail-prometheus-")


def on_starting(server):
    # A restarted server counts from 0: files left by an earlier one would add up with it.
    directory = os.environ[MULTIPROC]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def post_fork(server, worker):
    # Requests gunicorn refuses itself (400, 414, 431, ...) get the API's JSON error body.
    json_errors_install()


def child_exit(server, worker):
    # A worker's counters stay in its files (counters only grow); this drops its live gauges.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    # Only the directory this server made for itself; one named by the environment stays.
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
