"""Logging for every process of the service, as one `logging.config.dictConfig` dictionary.

uvicorn applies the dictionary in each worker it starts (`log_config`), so `--workers N`
logs like one process. `CDS_LOG_FORMAT=json` writes one JSON object per line
(python-json-logger); the fields a caller passes with `extra=` (request_id, service, status,
duration_ms, cards...) become keys. Every record passes the filters in `LOG_FILTERS` on its
way to the handler: that is where redaction goes (a filter named there is applied to every
logger, the access log included).
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(process)d %(message)s"


class DropQueryStrings(logging.Filter):
    """uvicorn's access log prints the full path; a query string may carry a token or a
    patient id, so only the path is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(
                record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = str(args[2]).split("?", 1)[0]
            record.args = tuple(args)
        return True


# dictConfig filter entries applied to every record; other modules may add theirs here
# (before the logging configuration is built).
LOG_FILTERS: dict[str, dict[str, Any]] = {
    "drop_query_strings": {"()": f"{__name__}.DropQueryStrings"},
}


def _formatter(log_format: str) -> dict[str, Any]:
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "timestamp": "time",  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            # uvicorn adds an ANSI-coloured copy of some messages; never useful as a key
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    return {"format": TEXT_FORMAT}


def logging_config(level: str = "info", log_format: str = "text") -> dict[str, Any]:
    """The dictConfig for the service, uvicorn's own loggers included."""
    name = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": dict(LOG_FILTERS),
        "formatters": {"cds": _formatter(log_format)},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                       "formatter": "cds", "filters": list(LOG_FILTERS)},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": name, "propagate": False},
            "uvicorn.error": {"level": name},
            "uvicorn.access": {"handlers": ["stderr"], "level": name, "propagate": False},
            "cds": {"level": name},
        },
        "root": {"handlers": ["stderr"], "level": name},
    }


def configure_logging(level: str = "info", log_format: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, log_format))
