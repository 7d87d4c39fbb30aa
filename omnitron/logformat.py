"""Log records as one JSON object per line. Django's logging uses it through
omnitron.observability.JSONFormatter, which adds the request id; gunicorn's own
logger (gunicorn.conf.py: starting, workers, signals) uses it as it is, before Django
is set up, so this module imports nothing of Django."""

import json
import logging
from datetime import UTC, datetime


class JSONFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.context(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    def context(self) -> dict:
        """Fields every line of the moment carries."""
        return {}
