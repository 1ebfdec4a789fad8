"""Logging set-up: JSON lines when not on a terminal, and a filter that masks anything like a token."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Databricks PATs (dapi…), Slack tokens (xox…-, xapp-) and bearer headers.
_SECRET = re.compile(r"(dapi[0-9a-f]{8,}(?:-\d+)?|xox[abpors]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|Bearer\s+\S+)")


def redact(text: str) -> str:
    """Mask every token-looking substring."""
    return _SECRET.sub("[REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets masked (defence in depth; values are never logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc)


def configure_logging(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler(sys.stderr)
    as_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
