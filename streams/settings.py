"""cxpulse configuration: one frozen, typed :class:`Settings` built once at the entry point.

SPEC §5 is the contract: one TOML file, every key optional, every key overridable by
an environment variable ``CXPULSE_<SECTION>_<KEY>`` (the TOML table path and key joined
by ``_``, upper-case: ``CXPULSE_TIME_ALLOWED_LATENESS``, ``CXPULSE_TICKETS_SLA_URGENT``).
A bad value stops startup with exit code 2 and a message naming the key.

Why it looks like this:

* :func:`load_settings` is the only place in cxpulse that reads the environment, and it
  reads only the mapping it is given, so tests build settings with ``env={...}`` and
  nothing leaks in from the developer's shell. Everything else takes a ``Settings``.
* Settings are frozen dataclasses: a worker's behaviour cannot drift at run time.
* Durations are integer milliseconds (``*_ms``), like event time everywhere in cxpulse.
* Every error names the dotted key (``alerts.rules[1].threshold``) and, when the value
  came from the environment, the variable; unknown keys and unknown ``CXPULSE_``
  variables are errors, because a typo that silently keeps a default is worse.
* The key set is defined once, by the readers below: each reader asks for a key and
  thereby also consults its environment variable, so the TOML shape, the env names and
  the unknown-key checks cannot disagree.

Environment values are parsed by the type of their key: strings as is (durations too),
integers from their digits, lists and tables as JSON or a TOML inline value
(``CXPULSE_WINDOWS_LIST='["1h/1m"]'``). ``CXPULSE_BROKER_URL=""`` selects the embedded
broker even when the file names one. ``CXPULSE_CONFIG`` names the TOML file when no path
is passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import itertools
import json
import os
import re
import ssl
import sys
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NoReturn

from cxpulse.streams.catalogue import all_metrics
from cxpulse.streams.durations import parse_duration_ms
from cxpulse.streams.windows import WindowSpec, parse_window

__all__ = [
    "AlertRule",
    "BrokerSettings",
    "BusinessHours",
    "CartSettings",
    "ConfigError",
    "CustomerSettings",
    "LogSettings",
    "Secret",
    "SegmentSettings",
    "Settings",
    "StoreSettings",
    "TicketSettings",
    "TimeSettings",
    "TopicSettings",
    "WorkerSettings",
    "load_settings",
    "settings_or_exit",
]

ENV_PREFIX = "CXPULSE"
CONFIG_ENV = "CXPULSE_CONFIG"

PRIORITIES = ("urgent", "high", "normal", "low")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STORE_SCHEMES = ("memory", "rocksdb")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: Every KPI metric name of SPEC §3 (the catalogue); alert rules may only watch these.
METRICS = frozenset(all_metrics())

# Prometheus labels the KPI gauges already use: a segment dimension may not reuse them.
_RESERVED_DIMENSIONS = frozenset({"window", "stat", "question", "quantile", "alert"})
_DIMENSION = re.compile(r"^[a-z_][a-z0-9_]*$")
_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d{1,5}))?$")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class ConfigError(Exception):
    """A bad configuration value; ``key`` names it, as a dotted TOML path or an env variable."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


# --------------------------------------------------------------------------- settings


class Secret:
    """A password: compared and hashed by value, but never shown by ``repr`` or ``str``.

    Only :meth:`reveal` gives the text, for the one place that hands it to a Kafka client.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where Kafka is and how to connect. ``url`` None: cxpulse starts its embedded broker.

    ``security_protocol`` is Kafka's: ``SSL`` and ``SASL_SSL`` use TLS, verified against
    ``ssl_cafile`` (else the system's CAs), with ``ssl_certfile``/``ssl_keyfile`` as the
    client certificate for mutual TLS; ``SASL_*`` authenticate as ``sasl_username`` with
    ``sasl_mechanism``. The password is read at load time from ``sasl_password_file`` or
    the environment variable named by ``sasl_password_env``, never from the config file;
    it is a :class:`Secret`, so it never appears in a repr or a log line.
    ``connect_timeout`` is how long start-up retries a broker that refuses or is silent.
    """

    url: str | None = None
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None
    sasl_password_env: str | None = None
    sasl_password: Secret | None = field(default=None, repr=False)
    #: how long start-up waits for a broker that refuses or does not answer
    connect_timeout_ms: int = 15_000

    @property
    def bootstrap_servers(self) -> str | None:
        """``host:port[,host:port]`` for aiokafka, or None for the embedded broker."""
        return None if self.url is None else self.url.removeprefix("kafka://")

    @property
    def uses_tls(self) -> bool:
        """Whether connections are TLS (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """Topic names and the partition count cxpulse creates missing topics with."""

    survey: str = "cx.survey.events"
    cart: str = "cx.cart.events"
    ticket: str = "cx.ticket.events"
    customer: str = "cx.customer.events"
    kpi: str = "cx.kpi"
    alerts: str = "cx.alerts"
    deadletter: str = "cx.deadletter"
    partitions: int = 4
    #: None: 1 on the embedded broker, else 3 (see ``replication_factor_for``)
    replication_factor: int | None = None
    kpi_retention_ms: int = 7 * 86_400_000
    alerts_retention_ms: int = 30 * 86_400_000
    deadletter_retention_ms: int = 14 * 86_400_000

    def replication_factor_for(self, *, embedded: bool) -> int:
        """The configured replication factor, else 1 on the embedded broker and 3 elsewhere."""
        if self.replication_factor is not None:
            return self.replication_factor
        return 1 if embedded else 3

    @property
    def inputs(self) -> tuple[str, str, str, str]:
        """The four input topics, in SPEC §1 order."""
        return (self.survey, self.cart, self.ticket, self.customer)


@dataclass(frozen=True, slots=True)
class TimeSettings:
    """Watermark and dedup parameters of SPEC §2 / §1, in milliseconds.

    Lateness and clock skew may be 0; the idle timeout and dedup horizon must be positive.
    """

    allowed_lateness_ms: int = 120_000
    idle_timeout_ms: int = 60_000
    max_clock_skew_ms: int = 300_000
    dedup_horizon_ms: int = 86_400_000


@dataclass(frozen=True, slots=True)
class CustomerSettings:
    """Customer metric parameters of SPEC §3.4 (TOML ``[customers]``)."""

    #: the share of revenue that is margin (0 < gross_margin <= 1), a factor of ``clv``
    gross_margin: float = 1.0


@dataclass(frozen=True, slots=True)
class CartSettings:
    """Cart session rules of SPEC §3.2, in ms (TOML ``[carts]``); recovery may be 0 (off)."""

    abandon_after_ms: int = 1_800_000
    recovery_window_ms: int = 604_800_000


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A weekly schedule for the ``_business`` ticket metrics.

    ``hours`` holds ``(weekday, start_minute, end_minute)`` with weekday 0 = Monday and
    minutes since local midnight in ``timezone`` (end may be 1440), sorted and
    non-overlapping; ``holidays`` are local dates on which nothing is open.
    """

    timezone: str
    hours: tuple[tuple[int, int, int], ...]
    holidays: tuple[dt.date, ...] = ()

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The schedule's time zone (validated at load time, cached by zoneinfo)."""
        return zoneinfo.ZoneInfo(self.timezone)


_DEFAULT_SLA_MS = {"urgent": 3_600_000, "high": 14_400_000, "normal": 28_800_000, "low": 86_400_000}


def _default_sla() -> Mapping[str, int]:
    return MappingProxyType(dict(_DEFAULT_SLA_MS))


@dataclass(frozen=True, slots=True)
class TicketSettings:
    """First-response SLA targets per priority, and the optional business-hours schedule.

    ``sla_ms`` is read-only (a ``MappingProxyType``); it is left out of the hash so that
    settings stay hashable.
    """

    sla_ms: Mapping[str, int] = field(default_factory=_default_sla, hash=False)
    business_hours: BusinessHours | None = None
    #: a ticket silent this long (event time) is forgotten, closed or not: bounded memory
    forget_after_ms: int = 30 * 86_400_000


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    """Segment dimensions (event fields) and the cap on tracked values per dimension."""

    dimensions: tuple[str, ...] = ("channel",)
    max_segment_values: int = 20


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One drop/rise detector of SPEC §4.3, comparing a short window with a baseline.

    ``threshold`` is absolute (10 NPS points, 0.10 of a ratio) unless ``relative``, in
    which case it is a fraction of the baseline (``"50%"`` gives 0.5). ``z`` 0 means no
    significance test. ``stat`` (our addition) names a key of the record's ``stats`` to
    compare instead of ``value``, e.g. ``p90`` for first-response times.
    """

    name: str
    metric: str
    window: WindowSpec
    baseline: WindowSpec
    direction: Literal["drop", "rise"]
    threshold: float
    relative: bool = False
    min_n: int = 1
    z: float = 0.0
    stat: str | None = None


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The ``[log]`` section: ``format`` ``text`` (one line per record) or ``json``."""

    format: str = "text"


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Faust table store (``memory://`` or ``rocksdb://``) and its data directory."""

    url: str = "memory://"
    data_dir: str = "./cxpulse-data"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The ``[worker]`` section, our addition to SPEC §5.

    ``app_id`` is the Faust app id, hence the Kafka consumer group and the prefix of the
    changelog topics: give each independent deployment (or test) its own. ``log_level``
    is the worker's logging level. ``commit_interval`` is how often processed input
    offsets are committed: after a crash, at most that much input is read again
    (harmlessly, see docs/guarantees.md), against one commit request per interval.
    """

    app_id: str = "cxpulse"
    log_level: str = "warning"
    commit_interval_ms: int = 1_000


def _w(*names: str) -> tuple[WindowSpec, ...]:
    return tuple(parse_window(n) for n in names)


DEFAULT_WINDOWS = _w("15m/1m", "1h/1m", "24h/15m", "7d/1h", "30d/1d")
_H1, _D7, _M15, _H24 = _w("1h/1m", "7d/1h", "15m/1m", "24h/15m")
#: The four rules of SPEC §4.3.
DEFAULT_ALERT_RULES = (
    AlertRule("nps_drop", "nps", _H1, _D7, "drop", 10.0, min_n=30, z=1.96),
    AlertRule("csat_drop", "csat", _H1, _D7, "drop", 0.10, min_n=30, z=1.96),
    AlertRule(
        "cart_abandonment_rise", "cart_abandonment", _M15, _H24, "rise", 0.10, min_n=50, z=1.96
    ),
    AlertRule(
        "first_response_slowdown",
        "ticket_first_response_seconds",
        _H1,
        _D7,
        "rise",
        0.5,
        relative=True,
        min_n=20,
        z=0.0,
        stat="p90",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a cxpulse process is configured with; ``Settings()`` is the SPEC default.

    ``web_port`` 0 means "pick a free port" (the worker logs the one it took);
    ``web_host`` is the address the web server binds.
    """

    broker: BrokerSettings = BrokerSettings()
    topics: TopicSettings = TopicSettings()
    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    time: TimeSettings = TimeSettings()
    carts: CartSettings = CartSettings()
    tickets: TicketSettings = field(default_factory=TicketSettings)
    customers: CustomerSettings = CustomerSettings()
    segments: SegmentSettings = SegmentSettings()
    alerts: tuple[AlertRule, ...] = DEFAULT_ALERT_RULES
    emit_interval_ms: int = 10_000
    web_port: int = 6066
    web_host: str = "0.0.0.0"
    store: StoreSettings = StoreSettings()
    worker: WorkerSettings = WorkerSettings()
    log: LogSettings = LogSettings()


# --------------------------------------------------------------------------- reading

_Kind = Literal["str", "int", "value"]


class _Source:
    """The environment overrides, and what was read from them, for one load."""

    def __init__(self, env: Mapping[str, str]) -> None:
        prefix = ENV_PREFIX + "_"
        self.env = {k: v for k, v in env.items() if k.startswith(prefix) and k != CONFIG_ENV}
        self.all_env = env  # for variables a setting names (broker.sasl_password_env)
        self.known: set[str] = set()
        self.origins: dict[str, str] = {}  # dotted key -> env variable that set it

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError for ``key``, saying which env variable set it if one did."""
        for dotted, var in self.origins.items():
            if key == dotted or key.startswith((dotted + ".", dotted + "[")):
                return ConfigError(key, f"{message} (set by {var})")
        return ConfigError(key, message)

    def parse(self, key: str, text: str, kind: _Kind) -> object:
        if kind == "str":
            return text
        if kind == "int":
            try:
                return int(text.strip())
            except ValueError:
                raise self.error(key, f"expected an integer, got {text!r}") from None
        try:
            return json.loads(text)
        except ValueError:
            pass
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            raise self.error(key, f"expected JSON or a TOML inline value, got {text!r}") from None

    def check_all_used(self) -> None:
        unknown = sorted(set(self.env) - self.known)
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(self.known), n=1)
            more = f"; did you mean {hint[0]}?" if hint else ""
            raise ConfigError(unknown[0], f"unknown cxpulse setting{more}")


class _Table:
    """A TOML table being read, key by key, with its env overrides; reports leftovers."""

    def __init__(
        self, src: _Source, data: object, key: str, env_name: str | None, *, what: str = "table"
    ) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise src.error(key or "config", f"expected a {what}, got {data!r}")
        self.src, self.data, self.key, self.env_name = src, data, key, env_name
        self._read: set[str] = set()

    def child(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def child_env(self, name: str) -> str | None:
        return None if self.env_name is None else f"{self.env_name}_{name.upper()}"

    def fail(self, name: str, message: str) -> NoReturn:
        raise self.src.error(self.child(name), message)

    def raw(self, name: str, kind: _Kind) -> object:
        """The value of ``name``: its env variable if set, else the TOML value, else None."""
        self._read.add(name)
        var = self.child_env(name)
        if var is not None:
            self.src.known.add(var)
            if var in self.src.env:
                self.src.origins[self.child(name)] = var
                return self.src.parse(self.child(name), self.src.env[var], kind)
        return self.data.get(name)

    def present(self, name: str) -> bool:
        """Whether sub-table ``name`` is given, in the file or by any env variable."""
        var = self.child_env(name)
        env_given = var is not None and any(k.startswith(var + "_") for k in self.src.env)
        return name in self.data or env_given

    def table(self, name: str) -> _Table:
        self._read.add(name)
        return _Table(self.src, self.data.get(name), self.child(name), self.child_env(name))

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw(name, "str")
        if value is None:
            if default is None:
                self.fail(name, "required")
            return default
        if not isinstance(value, str):
            self.fail(name, f"expected a string, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        value = self.raw(name, "int")
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, f"expected an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            self.fail(name, f"must be {bounds}, got {value}")
        return value

    def number(self, name: str, default: float, low: float = 0.0) -> float:
        value = self.raw(name, "value")
        if value is None:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(name, f"expected a number, got {value!r}")
        if value < low:
            self.fail(name, f"must be >= {low}, got {value}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        """``true``/``false`` (the same words in the environment)."""
        value = self.raw(name, "str")  # the environment's text as is
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(name, f"expected true or false, got {value!r}")
        return value

    def duration_ms(self, name: str, default: int, *, positive: bool = True) -> int:
        value = self.raw(name, "str")
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(name, f"expected a duration string such as '90s', got {value!r}")
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            self.fail(name, str(exc))
        if positive and ms <= 0:
            self.fail(name, f"must be a positive duration, got {value!r}")
        return ms

    def window(self, name: str) -> WindowSpec:
        text = self.text(name)
        try:
            return parse_window(text)
        except ValueError as exc:
            self.fail(name, str(exc))

    def strings(self, name: str) -> tuple[str, ...] | None:
        """A list of strings (a JSON/TOML list in the environment), None when absent."""
        value = self.raw(name, "value")
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(name, f"expected a list of strings, got {value!r}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{name}[{i}]", f"expected a string, got {item!r}")
        return tuple(value)

    def done(self) -> None:
        """Reject keys nobody asked for: they are typos or settings cxpulse does not have."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(self._read), n=1)
            self.fail(unknown[0], "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))


def _read_broker(t: _Table) -> BrokerSettings:
    url = t.raw("url", "str")
    if url is None or url == "":
        url = None
    elif not isinstance(url, str) or not url.startswith("kafka://"):
        t.fail("url", f"expected kafka://host:port[,host:port...], got {url!r}")
    else:
        for server in url.removeprefix("kafka://").split(","):
            match = _HOST_PORT.match(server.strip())
            port = match and match.group("port")
            if match is None or (port is not None and not 1 <= int(port) <= 65535):
                t.fail("url", f"{server!r} in {url!r} is not host:port")
    security = _read_broker_security(t, url)
    timeout = t.duration_ms("connect_timeout", BrokerSettings().connect_timeout_ms)
    t.done()
    return dataclasses.replace(security, connect_timeout_ms=timeout)


def _readable_file(t: _Table, name: str) -> str | None:
    """An optional path setting that must name a readable file."""
    value = t.raw(name, "str")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        t.fail(name, f"expected a file path, got {value!r}")
    if not os.path.isfile(value) or not os.access(value, os.R_OK):
        t.fail(name, f"{value!r} is not a readable file")
    return value


def _check_tls_files(t: _Table, cafile: str | None, cert: str | None, key: str | None) -> None:
    """Load the CA and the client certificate as the Kafka clients will, to fail at start-up."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        t.fail("ssl_cafile", f"{cafile!r} holds no usable PEM CA certificate ({exc})")
    if cert is not None:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            t.fail("ssl_certfile", f"{cert!r} with key {key!r} cannot be loaded ({exc})")


def _read_broker_security(t: _Table, url: str | None) -> BrokerSettings:
    """The TLS and SASL keys of ``[broker]``, checked against each other."""
    protocol = t.text("security_protocol", "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        t.fail(
            "security_protocol",
            f"expected one of {', '.join(SECURITY_PROTOCOLS)}, got {protocol!r}",
        )
    if url is None and protocol != "PLAINTEXT":
        t.fail("security_protocol", "the embedded broker (no [broker] url) speaks PLAINTEXT only")
    tls, sasl = protocol in ("SSL", "SASL_SSL"), protocol.startswith("SASL_")
    cafile, cert, key = (
        _readable_file(t, n) for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    )
    check_hostname = t.boolean("ssl_check_hostname", True)
    if not tls:
        given: dict[str, object] = {"ssl_cafile": cafile, "ssl_certfile": cert, "ssl_keyfile": key}
        given["ssl_check_hostname"] = t.raw("ssl_check_hostname", "str")
        for name, value in given.items():
            if value is not None:
                t.fail(name, f"only used with security_protocol SSL or SASL_SSL, not {protocol}")
    if (cert is None) != (key is None):
        t.fail(
            "ssl_certfile" if cert is None else "ssl_keyfile",
            "ssl_certfile and ssl_keyfile go together (the client certificate for mutual TLS)",
        )
    if tls:
        _check_tls_files(t, cafile, cert, key)
    mechanism = t.raw("sasl_mechanism", "str")
    username = t.raw("sasl_username", "str")
    password_file = _readable_file(t, "sasl_password_file")
    password_env = t.raw("sasl_password_env", "str")
    if t.raw("sasl_password", "str") is not None:
        t.fail(
            "sasl_password",
            "a password is never read from the config: use sasl_password_file or sasl_password_env",
        )
    if not sasl:
        sasl_given: tuple[tuple[str, object], ...] = (
            ("sasl_mechanism", mechanism),
            ("sasl_username", username),
            ("sasl_password_file", password_file),
            ("sasl_password_env", password_env),
        )
        for name, value in sasl_given:
            if value is not None:
                t.fail(
                    name,
                    f"only used with security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}",
                )
        return BrokerSettings(url, protocol, cafile, cert, key, check_hostname)
    if not isinstance(mechanism, str) or mechanism.upper() not in SASL_MECHANISMS:
        t.fail(
            "sasl_mechanism",
            f"expected one of {', '.join(SASL_MECHANISMS)} with {protocol}, got {mechanism!r}",
        )
    if not isinstance(username, str) or not username:
        t.fail("sasl_username", f"required with {protocol}")
    if (password_file is None) == (password_env is None):
        t.fail(
            "sasl_password_file",
            f"give exactly one of sasl_password_file and sasl_password_env with {protocol}",
        )
    if password_file is not None:
        with open(password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
        if not password:
            t.fail("sasl_password_file", f"{password_file!r} is empty")
    else:
        if not isinstance(password_env, str) or not password_env:
            t.fail(
                "sasl_password_env",
                f"expected the name of an environment variable, got {password_env!r}",
            )
        t.src.known.add(password_env)
        password = t.src.all_env.get(password_env, "")
        if not password:
            t.fail(
                "sasl_password_env", f"the environment variable {password_env} is not set or empty"
            )
    return BrokerSettings(
        url,
        protocol,
        cafile,
        cert,
        key,
        check_hostname,
        mechanism.upper(),
        username,
        password_file,
        str(password_env) if password_env is not None else None,
        Secret(password),
    )


def _read_topics(t: _Table) -> TopicSettings:
    d = TopicSettings()
    topics: dict[str, str] = {}  # field -> topic name
    for name in ("survey", "cart", "ticket", "customer", "kpi", "alerts", "deadletter"):
        topic = t.text(name, getattr(d, name))
        if not _KAFKA_NAME.match(topic) or topic in (".", ".."):
            t.fail(name, f"{topic!r} is not a valid Kafka topic name ([A-Za-z0-9._-], 1-249)")
        for other, taken in topics.items():
            if taken == topic:
                t.fail(name, f"{topic!r} is already topics.{other}")
        topics[name] = topic
    partitions = t.integer("partitions", d.partitions, 1)
    rf_value = t.raw("replication_factor", "int")
    replication = None if rf_value is None else t.integer("replication_factor", 1, 1, 32767)
    kpi_ms = t.duration_ms("kpi_retention", d.kpi_retention_ms)
    alerts_ms = t.duration_ms("alerts_retention", d.alerts_retention_ms)
    deadletter_ms = t.duration_ms("deadletter_retention", d.deadletter_retention_ms)
    t.done()
    return dataclasses.replace(
        d,
        **topics,
        partitions=partitions,
        replication_factor=replication,
        kpi_retention_ms=kpi_ms,
        alerts_retention_ms=alerts_ms,
        deadletter_retention_ms=deadletter_ms,
    )


def _read_windows(t: _Table) -> tuple[WindowSpec, ...]:
    names = t.strings("list")
    t.done()
    if names is None:
        return DEFAULT_WINDOWS
    if not names:
        t.fail("list", "needs at least one window")
    specs: list[WindowSpec] = []
    for i, name in enumerate(names):
        try:
            spec = parse_window(name)
        except ValueError as exc:
            t.fail(f"list[{i}]", str(exc))
        if spec in specs:
            t.fail(f"list[{i}]", f"{name!r} is listed twice")
        specs.append(spec)
    return tuple(specs)


def _read_time(t: _Table) -> TimeSettings:
    d = TimeSettings()
    time = TimeSettings(
        allowed_lateness_ms=t.duration_ms(
            "allowed_lateness", d.allowed_lateness_ms, positive=False
        ),
        idle_timeout_ms=t.duration_ms("idle_timeout", d.idle_timeout_ms),
        max_clock_skew_ms=t.duration_ms("max_clock_skew", d.max_clock_skew_ms, positive=False),
        dedup_horizon_ms=t.duration_ms("dedup_horizon", d.dedup_horizon_ms),
    )
    t.done()
    return time


def _read_carts(t: _Table) -> CartSettings:
    d = CartSettings()
    carts = CartSettings(
        abandon_after_ms=t.duration_ms("abandon_after", d.abandon_after_ms),
        recovery_window_ms=t.duration_ms("recovery_window", d.recovery_window_ms, positive=False),
    )
    t.done()
    return carts


def _read_customers(t: _Table) -> CustomerSettings:
    d = CustomerSettings()
    margin = t.number("gross_margin", d.gross_margin)
    if not 0.0 < margin <= 1.0:  # also false for NaN
        t.fail("gross_margin", f"must be a share of revenue, 0 < gross_margin <= 1, got {margin}")
    t.done()
    return CustomerSettings(gross_margin=margin)


def _parse_ranges(t: _Table, day: str, value: object) -> list[tuple[int, int]]:
    """``"09:00-18:00"``, ``"09:00-13:00, 14:00-18:00"`` or a list of such strings."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        t.fail(day, f"expected 'HH:MM-HH:MM' or a list of them, got {value!r}")
    ranges: list[tuple[int, int]] = []
    for i, item in enumerate(items):
        key = day if isinstance(value, str) else f"{day}[{i}]"
        match = _RANGE.match(item.strip()) if isinstance(item, str) else None
        if match is None:
            t.fail(key, f"expected 'HH:MM-HH:MM', got {item!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            t.fail(key, f"{item!r} is not a time of day (00:00 to 24:00)")
        if end <= start:
            t.fail(key, f"{item!r} must end after it starts")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            t.fail(day, f"ranges overlap in {value!r}")
    return ranges


def _read_holiday(t: _Table, key: str, item: object) -> dt.date:
    if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
        return item
    if isinstance(item, str) and _DATE.match(item):
        try:
            return dt.date.fromisoformat(item)
        except ValueError:
            pass
    t.fail(key, f"expected a date YYYY-MM-DD, got {item!r}")


def _read_business_hours(t: _Table) -> BusinessHours:
    timezone = t.text("timezone")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        t.fail("timezone", f"unknown time zone {timezone!r} (use an IANA name: 'Europe/Madrid')")
    hours_value = t.raw("hours", "value")
    if hours_value is None:
        t.fail("hours", 'required, e.g. { mon = "09:00-18:00" }')
    days = _Table(t.src, hours_value, t.child("hours"), t.child_env("hours"), what="table of days")
    hours: list[tuple[int, int, int]] = []
    for weekday, day in enumerate(WEEKDAYS):
        value = days.raw(day, "str")
        if value is not None:
            hours.extend((weekday, start, end) for start, end in _parse_ranges(days, day, value))
    days.done()
    if not hours:
        t.fail("hours", "no open hours in the week")
    holidays_value = t.raw("holidays", "value")
    if holidays_value is not None and not isinstance(holidays_value, list):
        t.fail("holidays", f"expected a list of dates, got {holidays_value!r}")
    holidays = {
        _read_holiday(t, f"holidays[{i}]", item) for i, item in enumerate(holidays_value or [])
    }
    t.done()
    return BusinessHours(timezone, tuple(hours), tuple(sorted(holidays)))


def _read_tickets(t: _Table) -> TicketSettings:
    sla_table = t.table("sla")
    sla = {p: sla_table.duration_ms(p, _DEFAULT_SLA_MS[p]) for p in PRIORITIES}
    sla_table.done()
    business_table = t.table("business_hours")
    business = _read_business_hours(business_table) if t.present("business_hours") else None
    forget = t.duration_ms("forget_after", TicketSettings().forget_after_ms)
    t.done()
    return TicketSettings(MappingProxyType(sla), business, forget)


def _read_segments(t: _Table) -> SegmentSettings:
    d = SegmentSettings()
    dimensions = t.strings("dimensions")
    dimensions = d.dimensions if dimensions is None else dimensions
    for i, dim in enumerate(dimensions):
        if not _DIMENSION.match(dim) or dim in _RESERVED_DIMENSIONS:
            t.fail(f"dimensions[{i}]", f"{dim!r} is not usable as a Prometheus label name")
        if dim in dimensions[:i]:
            t.fail(f"dimensions[{i}]", f"{dim!r} is listed twice")
    cap = t.integer("max_segment_values", d.max_segment_values, 1)
    t.done()
    return SegmentSettings(dimensions, cap)


def _read_rule(t: _Table, windows: tuple[WindowSpec, ...]) -> AlertRule:
    name = t.text("name")
    metric = t.text("metric")
    if metric not in METRICS:
        t.fail("metric", f"unknown metric {metric!r} (known: {', '.join(sorted(METRICS))})")
    specs: list[WindowSpec] = []
    for key in ("window", "baseline"):
        spec = t.window(key)
        if spec not in windows:
            t.fail(key, f"{spec.name} is not in windows.list, so it is never computed")
        specs.append(spec)
    direction: Literal["drop", "rise"]
    match t.text("direction"):
        case "drop":
            direction = "drop"
        case "rise":
            direction = "rise"
        case other:
            t.fail("direction", f"expected 'drop' or 'rise', got {other!r}")
    threshold = t.raw("threshold", "str")
    percent = _PERCENT.match(threshold) if isinstance(threshold, str) else None
    if percent is not None:
        value, relative = float(percent.group(1)) / 100, True
    elif isinstance(threshold, int | float) and not isinstance(threshold, bool) and threshold >= 0:
        value, relative = float(threshold), False
    else:
        t.fail("threshold", f"expected a number >= 0 or a percentage like '50%', got {threshold!r}")
    min_n = t.integer("min_n", 1, 1)
    z = t.number("z", 0.0)
    stat = t.raw("stat", "str")
    if stat is not None and not (isinstance(stat, str) and stat):
        t.fail("stat", f"expected the name of a stats field such as 'p90', got {stat!r}")
    t.done()
    window, baseline = specs
    return AlertRule(name, metric, window, baseline, direction, value, relative, min_n, z, stat)


def _read_alerts(t: _Table, windows: tuple[WindowSpec, ...]) -> tuple[AlertRule, ...]:
    value = t.raw("rules", "value")
    t.done()
    if value is None:
        # The defaults adapt to the configured windows; explicit rules must match them.
        return tuple(r for r in DEFAULT_ALERT_RULES if {r.window, r.baseline} <= set(windows))
    if not isinstance(value, list):
        t.fail("rules", f"expected a list of tables ([[alerts.rules]]), got {value!r}")
    rules: list[AlertRule] = []
    for i, item in enumerate(value):
        rule = _read_rule(_Table(t.src, item, t.child(f"rules[{i}]"), None), windows)
        if any(r.name == rule.name for r in rules):
            t.fail(f"rules[{i}].name", f"{rule.name!r} is used by another rule")
        rules.append(rule)
    return tuple(rules)


def _read_store(t: _Table) -> StoreSettings:
    d = StoreSettings()
    url = t.text("url", d.url)
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in STORE_SCHEMES:
        t.fail("url", f"expected memory:// or rocksdb://, got {url!r}")
    data_dir = t.text("data_dir", d.data_dir)
    if not data_dir:
        t.fail("data_dir", "must not be empty")
    t.done()
    return StoreSettings(url, data_dir)


def _read_worker(t: _Table) -> WorkerSettings:
    d = WorkerSettings()
    app_id = t.text("app_id", d.app_id)
    if not _KAFKA_NAME.match(app_id):
        t.fail("app_id", f"{app_id!r} must be 1-249 of [A-Za-z0-9._-] (it names Kafka topics)")
    level = t.text("log_level", d.log_level).lower()
    if level not in LOG_LEVELS:
        t.fail("log_level", f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    commit_ms = t.duration_ms("commit_interval", d.commit_interval_ms)
    t.done()
    return WorkerSettings(app_id, level, commit_ms)


def _read_emit_interval(t: _Table) -> int:
    interval = t.duration_ms("interval", Settings().emit_interval_ms)
    t.done()
    return interval


_WEB_HOST = re.compile(r"^(?:[0-9A-Fa-f:.]+|[A-Za-z0-9._-]+)$")


def _read_web(t: _Table) -> tuple[int, str]:
    """``[web] port`` (0: any free port) and ``host`` (the address the server binds)."""
    port = t.integer("port", Settings().web_port, 0, 65535)
    host = t.text("host", Settings().web_host)
    if not _WEB_HOST.match(host):
        t.fail("host", f"expected an IP address or a host name, got {host!r}")
    t.done()
    return port, host


def _read_log(t: _Table) -> LogSettings:
    fmt = t.text("format", LogSettings().format).lower()
    if fmt not in LOG_FORMATS:
        t.fail("format", f"expected one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    t.done()
    return LogSettings(fmt)


def _read_toml(path: str | os.PathLike[str]) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{os.fspath(path)!r} is not valid TOML: {exc}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from the TOML file at ``path`` and the ``CXPULSE_*`` variables.

    ``env`` defaults to ``os.environ``; pass ``{}`` for pure-file settings (tests do).
    Without ``path``, ``CXPULSE_CONFIG`` names the file; without either, only defaults
    and env apply. Raises :class:`ConfigError` naming the first bad key.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get(CONFIG_ENV) or None
    src = _Source(env)
    root = _Table(src, _read_toml(path) if path is not None else {}, "", ENV_PREFIX)
    windows = _read_windows(root.table("windows"))
    web_port, web_host = _read_web(root.table("web"))
    settings = Settings(
        broker=_read_broker(root.table("broker")),
        topics=_read_topics(root.table("topics")),
        windows=windows,
        time=_read_time(root.table("time")),
        carts=_read_carts(root.table("carts")),
        tickets=_read_tickets(root.table("tickets")),
        customers=_read_customers(root.table("customers")),
        segments=_read_segments(root.table("segments")),
        alerts=_read_alerts(root.table("alerts"), windows),
        emit_interval_ms=_read_emit_interval(root.table("emit")),
        web_port=web_port,
        web_host=web_host,
        store=_read_store(root.table("store")),
        worker=_read_worker(root.table("worker")),
        log=_read_log(root.table("log")),
    )
    root.done()
    src.check_all_used()
    return settings


def settings_or_exit(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """:func:`load_settings` for entry points: a bad config prints the key and exits 2."""
    try:
        return load_settings(path, env)
    except ConfigError as exc:
        print(f"cxpulse: bad config: {exc}", file=sys.stderr)
        sys.exit(2)
