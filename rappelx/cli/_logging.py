"""Log setup for long-running commands: one JSON object per line, or plain text."""

from __future__ import annotations

import datetime
import json
import logging
import sys

from rappelx.cli._errors import CliError

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging"]

LOG_FORMATS = ("json", "text")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ``ts``, ``level``, ``logger``, ``message``
    (and ``exc`` when an exception is attached), for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str, level: str) -> None:
    """Send every log record at ``level`` or above to stderr in format ``fmt``.

    Raises:
        CliError: ``fmt`` or ``level`` is not one of the known names.
    """
    if fmt not in LOG_FORMATS:
        raise CliError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise CliError(f"unknown log level {level!r}; use debug, info, warning or error")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
