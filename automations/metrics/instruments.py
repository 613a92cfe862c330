"""What the web processes count as they answer: event ingestion requests, by outcome.

The only figures the database does not hold (a refused request stores
nothing), so the only ones counted in process. prometheus-client writes them
to PROMETHEUS_MULTIPROC_DIR when it is set (reviewapp/gunicorn.conf.py sets
it for every gunicorn server), so /metrics adds up every worker's counts
whichever worker answers the scrape. Kept in a registry of their own: the
default one would add the client's process_* and python_* metrics.
"""

import re
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

LIVE = CollectorRegistry(auto_describe=True)
INGEST_PATH = re.compile(r"/api/v1/automations/[^/]+/events/?")
# 202 a new event, 200 a replay of a known key; any other answer stored nothing.
OUTCOMES = {202: "accepted", 200: "replayed"}
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INGEST_REQUESTS = Counter(
    "handrail_ingest_requests",
    "Event ingestion requests answered: accepted (new), replayed (a known key), refused (4xx),"
    " failed (5xx).",
    ["outcome"],
    registry=LIVE,
)
INGEST_SECONDS = Histogram(
    "handrail_ingest_request_duration_seconds",
    "Time the web process took to answer an event ingestion request.",
    buckets=DURATION_BUCKETS,
    registry=LIVE,
)


def ingest_outcome(status: int) -> str:
    return OUTCOMES.get(status) or ("failed" if status >= 500 else "refused")


class IngestMetricsMiddleware:
    """Count every answer to POST /api/v1/automations/SLUG/events, and how long it took."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or not INGEST_PATH.fullmatch(request.path_info):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        INGEST_SECONDS.observe(time.perf_counter() - started)
        INGEST_REQUESTS.labels(outcome=ingest_outcome(response.status_code)).inc()
        return response
