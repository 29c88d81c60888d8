"""Logging through structlog: key=value lines in a terminal, one JSON object per line with
-log-json. Standard-library loggers (aiohttp's) are routed through the same renderer.

Every destination is a `logging.Handler` with its own level and format: the console, the
`log_file` (rotated as Consul rotates it), syslog, and one handler per `/v1/agent/monitor`
stream. A monitor may ask for more detail than the agent logs, so events are produced down to
the lowest level any destination wants and each handler filters for itself.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import socket
import sys
import threading
import time
from collections import deque
from typing import IO, Any

import structlog

from consulpy.util.goquote import go_quote

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "err": logging.ERROR,
    "error": logging.ERROR,
}

# Where syslog lines go. Tests point it at a unix datagram socket they create.
SYSLOG_ADDRESS_ENV = "CONSULPY_SYSLOG_ADDRESS"
SYSLOG_TAG = "consul"
MONITOR_BUFFER = 512


def parse_level(name: str) -> int | None:
    """The numeric level for a Consul level name (any case), None when unknown."""
    return LEVELS.get(name.strip().lower())


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


_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
]


def formatter(json: bool) -> logging.Formatter:
    """A formatter rendering one event as a text line or a JSON object."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else render_line
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


# The lowest level any destination wants; events below it are dropped before any processing.
_floor = [logging.INFO]


def enabled(level: int) -> bool:
    """Whether an event at `level` reaches any destination (skip building costly fields)."""
    return level >= _floor[0]


class LevelBoundLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger with a cheap level check that follows `_floor` at run time,
    so loggers can be cached (building one per call costs more than the call) and the level
    still changes on reload or when a monitor asks for more."""

    def debug(self, event: str | None = None, *args: object, **kw: object) -> object:
        if _floor[0] > logging.DEBUG:
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: object, **kw: object) -> object:
        if _floor[0] > logging.INFO:
            return None
        return super().info(event, *args, **kw)

    def warning(self, event: str | None = None, *args: object, **kw: object) -> object:
        if _floor[0] > logging.WARNING:
            return None
        return super().warning(event, *args, **kw)

    warn = warning


class RotatingLogFile(logging.Handler):
    """Consul's `log_file`: the active file keeps its name (truncated on open, mode 0640); it
    is renamed to `<base>-<unix nanoseconds><ext>` when it reached `rotate_bytes` or is older
    than `rotate_duration`, checked before each write; `max_files` archives are kept (0: all,
    -1: none)."""

    def __init__(
        self,
        path: str,
        *,
        rotate_bytes: int = 0,
        rotate_duration: float = 24 * 3600.0,
        max_files: int = 0,
    ) -> None:
        super().__init__()
        if path.endswith(os.sep) or os.path.isdir(path):
            path = os.path.join(path, "consul.log")
        self.path = path
        directory = os.path.dirname(path) or "."
        base = os.path.basename(path)
        self._stem, ext = os.path.splitext(base)
        self._ext = ext or ".log"
        self._dir = directory
        self.rotate_bytes = rotate_bytes
        self.rotate_duration = rotate_duration
        self.max_files = max_files
        os.makedirs(directory, exist_ok=True)
        self._stream: IO[str] | None = None
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        self._stream = os.fdopen(fd, "w", encoding="utf-8")
        self._opened = time.monotonic()
        self._written = 0

    def _due(self) -> bool:
        if self.rotate_bytes > 0 and self._written >= self.rotate_bytes:
            return True
        return self.rotate_duration > 0 and time.monotonic() - self._opened >= self.rotate_duration

    def _rotate(self) -> None:
        assert self._stream is not None
        self._stream.close()
        archive = os.path.join(self._dir, f"{self._stem}-{time.time_ns()}{self._ext}")
        os.replace(self.path, archive)
        self._prune()
        self._open()

    def archives(self) -> list[str]:
        prefix = f"{self._stem}-"
        names = [
            n
            for n in os.listdir(self._dir)
            if n.startswith(prefix) and n.endswith(self._ext) and n[len(prefix) :][:1].isdigit()
        ]
        return sorted(os.path.join(self._dir, n) for n in names)

    def _prune(self) -> None:
        if self.max_files == 0:
            return
        archives = self.archives()
        keep = max(self.max_files, 0)
        for old in archives[: max(len(archives) - keep, 0)]:
            try:
                os.remove(old)
            except FileNotFoundError:
                pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            with self.lock:  # type: ignore[union-attr]
                if self._due():
                    self._rotate()
                assert self._stream is not None
                self._stream.write(line)
                self._stream.flush()
                self._written += len(line.encode("utf-8"))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        super().close()


class MonitorStream(logging.Handler):
    """The lines one `/v1/agent/monitor` request asked for, at its own level. A slow reader
    loses lines beyond a 512-line buffer; `dropped` counts them."""

    def __init__(self, level: int, json: bool) -> None:
        super().__init__(level)
        self.setFormatter(formatter(json))
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._lines: deque[str] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            return
        if threading.get_ident() == self._thread:
            self._put(line)
        else:
            try:
                self._loop.call_soon_threadsafe(self._put, line)
            except RuntimeError:  # the loop is closed: nobody reads any more
                pass

    def _put(self, line: str) -> None:
        if len(self._lines) >= MONITOR_BUFFER:
            self.dropped += 1
            return
        self._lines.append(line)
        self._ready.set()

    async def next_lines(self, timeout: float) -> list[str]:
        """The buffered lines, waiting up to `timeout` for at least one."""
        if not self._lines:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        self._ready.clear()
        lines = list(self._lines)
        self._lines.clear()
        return lines


def _sublevel_keys(name: str) -> tuple[str, ...]:
    """The logger names a log_sublevels key covers: as written, and under `consulpy.` (so
    `agent.checks` means consulpy.agent.checks, as Consul's names are relative)."""
    name = name.strip(".")
    return (name,) if name.startswith("consulpy") else (name, f"consulpy.{name}")


class _SublevelFilter(logging.Filter):
    """Consul's log_sublevels on an output: a logger (and its children) logs at its own
    level; the longest configured name that covers a logger wins, else the agent's level."""

    def __init__(self, owner: Logging) -> None:
        super().__init__()
        self.owner = owner

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.owner.level_for(record.name)


class Logging:
    """The process's log destinations; `configure_logging` sets it up once per process."""

    def __init__(self) -> None:
        self.level = logging.INFO
        self.outputs: list[logging.Handler] = []  # console, file, syslog: at `level`
        self.monitors: list[MonitorStream] = []
        # log_sublevels: logger name (and its children) -> level, for the outputs
        self.sublevels: dict[str, int] = {}
        self._filter = _SublevelFilter(self)

    def level_for(self, logger: str) -> int:
        best, level = -1, self.level
        for name, sub in self.sublevels.items():
            if (logger == name or logger.startswith(name + ".")) and len(name) > best:
                best, level = len(name), sub
        return level

    def _apply(self) -> None:
        lowest = min([self.level, *self.sublevels.values()])
        floor = min([lowest, *(m.level for m in self.monitors)])
        _floor[0] = floor
        root = logging.getLogger()
        root.setLevel(floor)
        for handler in self.outputs:
            handler.setLevel(lowest)
            if self.sublevels:
                handler.addFilter(self._filter)
            else:
                handler.removeFilter(self._filter)
        logging.getLogger("asyncio").setLevel(max(floor, logging.INFO))

    def set_sublevels(self, sublevels: dict[str, str]) -> None:
        """Set log_sublevels (at start and on reload); raises ValueError for a bad level."""
        self.sublevels = parse_sublevels(sublevels)
        self._apply()

    def set_level(self, name: str) -> None:
        """Change the level of the agent's own outputs (what `log_level` on reload does)."""
        level = parse_level(name)
        if level is None:
            raise ValueError(f"Unknown log level: {name}")
        self.level = level
        self._apply()

    def add_monitor(self, level: int, json: bool) -> MonitorStream:
        monitor = MonitorStream(level, json)
        self.monitors.append(monitor)
        logging.getLogger().addHandler(monitor)
        self._apply()
        return monitor

    def remove_monitor(self, monitor: MonitorStream) -> None:
        logging.getLogger().removeHandler(monitor)
        if monitor in self.monitors:
            self.monitors.remove(monitor)
        self._apply()


def parse_sublevels(sublevels: dict[str, str]) -> dict[str, int]:
    """log_sublevels as logger name -> numeric level; ValueError for a bad level."""
    parsed: dict[str, int] = {}
    for name, level_name in sublevels.items():
        level = parse_level(level_name)
        if level is None:
            raise ValueError(f"Unknown log level for {name}: {level_name}")
        for key in _sublevel_keys(name):
            parsed[key] = level
    return parsed


LOGS = Logging()


class _SyslogHandler(logging.handlers.SysLogHandler):
    """Never stalls the agent: a syslog reader that falls behind loses lines (counted in
    `dropped`) instead of blocking the event loop on a full datagram socket."""

    dropped = 0

    def _connect_unixsocket(self, address: Any) -> None:
        super()._connect_unixsocket(address)
        if self.socktype == socket.SOCK_DGRAM:
            self.socket.setblocking(False)

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BlockingIOError):
            self.dropped += 1
            return
        super().handleError(record)


def syslog_handler(facility: str) -> logging.Handler:
    """A SysLogHandler to /dev/log (or $CONSULPY_SYSLOG_ADDRESS), tagged `consul`. Raises
    ValueError for an unknown facility and OSError when nothing listens there."""
    names = logging.handlers.SysLogHandler.facility_names
    code = names.get(facility.lower())
    if code is None:
        raise ValueError(f"Unknown syslog facility: {facility}")
    address = os.environ.get(SYSLOG_ADDRESS_ENV, "/dev/log")
    # SysLogHandler swallows a failed connect; an operator who asked for syslog must know.
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        probe = socket.socket(socket.AF_UNIX, kind)
        try:
            probe.connect(address)
            break
        except OSError as exc:
            error = exc
        finally:
            probe.close()
    else:
        raise OSError(f"syslog at {address}: {error}")
    handler = _SyslogHandler(address=address, facility=code)
    handler.ident = f"{SYSLOG_TAG}: "
    return handler


def setup_logging(
    level: str = "info",
    json: bool = False,
    stream: IO[str] | None = None,
    *,
    log_file: str | None = None,
    rotate_bytes: int = 0,
    rotate_duration: float = 24 * 3600.0,
    rotate_max_files: int = 0,
    syslog: bool = False,
    syslog_facility: str = "LOCAL0",
    sublevels: dict[str, str] | None = None,
) -> None:
    """Route every log event to the console and, when asked, a rotated file and syslog.
    Raises OSError/ValueError when a file or syslog destination cannot be opened."""
    numeric = parse_level(level) or logging.INFO
    # No renderer here prints a record's caller, thread or process: skip gathering them (the
    # logging module's documented optimisation), a quarter of a debug line's cost, which
    # matters for -dev's one `Request finished` line per HTTP request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=LevelBoundLogger,
        cache_logger_on_first_use=True,
    )
    text = formatter(json)
    console = logging.StreamHandler(stream or sys.stderr)
    console.setFormatter(text)
    outputs: list[logging.Handler] = [console]
    if log_file:
        rotating = RotatingLogFile(
            log_file,
            rotate_bytes=rotate_bytes,
            rotate_duration=rotate_duration,
            max_files=rotate_max_files,
        )
        rotating.setFormatter(text)
        outputs.append(rotating)
    if syslog:
        handler = syslog_handler(syslog_facility)
        handler.setFormatter(formatter(False))
        outputs.append(handler)
    root = logging.getLogger()
    for old in LOGS.outputs:
        old.close()
    root.handlers[:] = [*outputs, *LOGS.monitors]
    LOGS.outputs = outputs
    LOGS.level = numeric
    LOGS.set_sublevels(sublevels or {})
    # aiohttp's access log is one line per request: far too chatty at info.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
