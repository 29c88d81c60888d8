"""Logging through structlog: key=value lines in a terminal, one JSON object per line with
-log-json. Standard-library loggers (aiohttp's) are routed through the same renderer."""

from __future__ import annotations

import logging
import sys

import structlog

from consulpy.util.goquote import go_quote

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _value(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return go_quote(text)  # hclog quotes such values with strconv.Quote
    return text


def render_line(_logger: object, _name: str, event: dict[str, object]) -> str:
    """`<time> [LEVEL] <logger>: <event> key=value ...`, close to Consul's own log lines."""
    ts = str(event.pop("timestamp", ""))
    level = str(event.pop("level", "info")).upper()
    name = event.pop("logger", "")
    message = event.pop("event", "")
    exc = event.pop("exception", None)
    pairs = " ".join(f"{k}={_value(v)}" for k, v in event.items())
    line = f"{ts} [{level}] {name}: {message}" + (f" {pairs}" if pairs else "")
    if exc:
        line += "\n" + str(exc)
    return line


def setup_logging(level: str = "info", json: bool = False, stream=None) -> None:  # type: ignore[no-untyped-def]
    numeric = LEVELS.get(level.lower(), logging.INFO)
    stream = stream or sys.stderr
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else render_line
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # aiohttp's access log is one line per request: far too chatty at info.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(max(numeric, logging.INFO))
