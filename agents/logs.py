"""One logging set-up for every line a cxpulse process writes: its own, Faust's and mode's.

``[log] format``: ``text`` (``2026-11-23T10:00:04.120Z WARNING cxpulse message``) or
``json`` (one object per line: ``ts``, ``level``, ``logger``, ``msg``, and ``exc`` with
the traceback when there is one). Everything goes to stderr through one root handler;
Faust's worker is kept from installing its own (see
:class:`cxpulse.agents.worker.app.QuietWorker`), so a record of a library looks like
one of cxpulse. A multi-line message (Faust's tables) stays one JSON line: the
newlines are escaped.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import IO

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "say"]

#: the loggers whose handlers are removed so that their records reach the root handler once
_LIBRARY_LOGGERS = ("faust", "mode", "aiokafka", "aiohttp", "aiohttp.access", "asyncio")


def _timestamp(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger> <message>``, the traceback on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body).decode()


def configure_logging(fmt: str, level: str | int, stream: IO[str] | None = None) -> None:
    """Route every logger through one stderr handler with the ``fmt`` formatter, at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True


def say(message: str, *, level: int = logging.ERROR) -> None:
    """One operator line: ``cxpulse: message`` on stderr, or a JSON record in JSON mode."""
    root = logging.getLogger()
    json_handlers = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
    if json_handlers:  # shown whatever the log level: the operator asked for it
        record = logging.getLogger("cxpulse").makeRecord(
            "cxpulse", level, __file__, 0, message, (), None
        )
        for handler in json_handlers:
            handler.handle(record)
    else:
        print(f"cxpulse: {message}", file=sys.stderr, flush=True)
