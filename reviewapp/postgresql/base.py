"""Django's PostgreSQL backend, with the health check skipped for a connection that just worked.

With CONN_HEALTH_CHECKS Django sends `SELECT 1` before the first query of every
request, and of every task (reviewapp/celery.py recycles connections the same
way): one more round trip on each end for every event ingested and every
decision. Like HikariCP's aliveBypassWindowMs, a connection that got through a
request or task ending less than `healthy_for` seconds ago is taken as healthy;
an older one is checked as before. A server restart inside that window fails
that one request, and Django then closes the connection, as without checks.
"""

import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    healthy_for = 1.0  # seconds; HikariCP's default is half of this
    worked_at: float | None = None  # monotonic time the last request or task ended well

    def close_if_unusable_or_obsolete(self):
        # close_old_connections calls this as a request or task starts and ends. At an
        # end, a check marked done means the connection was used and answered; one that
        # failed meanwhile has errors_occurred set, and Django checks and closes it below.
        if self.connection is not None and self.health_check_done:
            self.worked_at = time.monotonic()
        super().close_if_unusable_or_obsolete()

    def close_if_health_check_failed(self):
        worked_at = self.worked_at
        if (
            self.connection is not None
            and not self.health_check_done
            and worked_at is not None
            and time.monotonic() - worked_at < self.healthy_for
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
