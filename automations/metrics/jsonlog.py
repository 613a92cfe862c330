"""JSON log lines: one object per record, with the trace id of the work at hand where known.

{"time", "level", "logger", "message", "trace_id", "run_id", "process"} and, for an
exception, "error" (its type) and "traceback". Only the message the code wrote
and the ids go out: no request bodies, payloads or headers, so no PII that the
message does not carry itself. Settings LOGGING uses it unless
HANDRAIL_LOG_FORMAT=plain.
"""

import json
import logging
from datetime import UTC, datetime

from .tracecontext import trace_current


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        trace_id, run_id = trace_current()
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": trace_id,
            "run_id": run_id,
            "process": record.process,
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
