"""The topics cxpulse needs, created and checked from one plan.

:func:`topic_plan` says what every topic should look like (partitions, replication
factor, ``cleanup.policy``, retention, ``max.message.bytes``, ``min.insync.replicas``);
:func:`apply_topics` creates the missing ones and reports how existing ones differ,
never changing them (``cxpulse topics``, the worker at start-up, the tools). Clients
connect with :func:`cxpulse.agents.kafka.security.client_options`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cxpulse.agents.kafka.security import client_options
from cxpulse.streams.settings import BrokerSettings, Settings

__all__ = [
    "DEADLETTER_MAX_MESSAGE_BYTES",
    "EXIT_TOPICS_DIFFER",
    "TopicReport",
    "TopicSpec",
    "apply_topics",
    "ensure_topics",
    "topic_plan",
]

#: exit code of ``cxpulse topics`` when a topic is missing or differs (docs/operations.md)
EXIT_TOPICS_DIFFER = 5

#: A dead letter carries a source record whole, base64 when not UTF-8 (4/3 of its size)
#: inside JSON: 4 MiB holds a source record of 3 MiB, three times Kafka's default limit.
DEADLETTER_MAX_MESSAGE_BYTES = 4 << 20

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic should look like; ``role`` says what cxpulse uses it for."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    role: str


@dataclass(slots=True)
class TopicReport:
    """What :func:`apply_topics` did and saw: created, missing (not created) and differences."""

    created: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No topic is missing and none differs from its plan."""
        return not self.missing and not self.differences


def topic_plan(
    settings: Settings,
    *,
    embedded: bool,
    changelogs: Mapping[str, int] | None = None,
    internal: Mapping[str, int] | None = None,
    only: Iterable[str] | None = None,
) -> list[TopicSpec]:
    """Every topic cxpulse reads or writes, with its settings (docs/operations.md).

    Inputs and the worker's internal topics (``internal``: partials, ticks, the Faust
    leader topic) are ``delete`` with the broker's retention; ``cx.kpi``, ``cx.alerts``
    and ``cx.deadletter`` ``delete`` with ``[topics] *_retention``; table ``changelogs``
    ``compact``. Every topic asks ``min.insync.replicas`` = min(2, replication factor).
    ``only`` keeps the named topics (a tool needing a few of them).
    """
    t = settings.topics
    rf = t.replication_factor_for(embedded=embedded)
    isr = {"min.insync.replicas": str(min(2, rf))}
    n = t.partitions

    def spec(name: str, role: str, configs: Mapping[str, str], partitions: int = n) -> TopicSpec:
        return TopicSpec(name, partitions, rf, {"cleanup.policy": "delete", **configs, **isr}, role)

    from cxpulse.agents.worker.app import topic_names  # imports this module

    inputs = dict.fromkeys([*t.inputs, *topic_names(settings).sources.values()])
    plan = [spec(name, "input", {}) for name in inputs]
    plan.append(spec(t.kpi, "output", {"retention.ms": str(t.kpi_retention_ms)}))
    plan.append(spec(t.alerts, "output", {"retention.ms": str(t.alerts_retention_ms)}))
    dead = {
        "retention.ms": str(t.deadletter_retention_ms),
        "max.message.bytes": str(DEADLETTER_MAX_MESSAGE_BYTES),
    }
    plan.append(spec(t.deadletter, "output", dead))
    plan.extend(spec(name, "internal", {}, p) for name, p in (internal or {}).items())
    plan.extend(
        TopicSpec(name, p, rf, {"cleanup.policy": "compact", **isr}, "changelog")
        for name, p in (changelogs or {}).items()
    )
    if only is not None:
        wanted = set(only)
        plan = [s for s in plan if s.name in wanted]
    return plan


async def _describe(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]
) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, str]]]:
    """Per topic (partitions, smallest replica count), and its configs as the broker says."""
    shapes: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics([s.name for s in specs]):
        if topic["error_code"] != 0:
            continue
        parts = topic["partitions"]
        shapes[topic["topic"]] = (len(parts), min((len(p["replicas"]) for p in parts), default=0))
    configs: dict[str, dict[str, str]] = {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                continue
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in resource["config_entries"]
            }
    return shapes, configs


def _differences(spec: TopicSpec, shape: tuple[int, int], configs: Mapping[str, str]) -> list[str]:
    out = []
    partitions, replicas = shape
    if partitions != spec.partitions:
        out.append(f"{spec.name}: {partitions} partitions, the plan says {spec.partitions}")
    if replicas != spec.replication_factor:
        out.append(
            f"{spec.name}: replication factor {replicas}, the plan says {spec.replication_factor}"
        )
    for key, want in spec.configs.items():
        have = configs.get(key)
        if have != want:
            shown = "not set (the broker's default applies)" if have is None else f"{have}"
            out.append(f"{spec.name}: {key} is {shown}, the plan says {want}")
    return out


async def apply_topics(
    bootstrap: str,
    specs: Sequence[TopicSpec],
    *,
    broker: BrokerSettings | None = None,
    create: bool = True,
) -> TopicReport:
    """Create the missing topics of ``specs`` (unless not ``create``); report the others.

    Existing topics are never changed: how they differ from their spec (partitions,
    replication factor, configs) is in the report. Safe to race with another process
    creating the same topics. Raises ``RuntimeError`` when the broker refuses a topic.
    """
    report = TopicReport()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(broker))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        present = [s for s in specs if s.name in existing]
        if missing and create:
            new = [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
                for s in missing
            ]
            response = (await admin.create_topics(new)).to_object()
            raced = set()
            for result in response.get("topic_errors", []):
                code = result["error_code"]
                if code == _TOPIC_ALREADY_EXISTS:
                    raced.add(result["topic"])
                elif code != 0:
                    message = result.get("error_message") or f"error code {code}"
                    raise RuntimeError(f"cannot create topic {result['topic']!r}: {message}")
            report.created = [s.name for s in missing if s.name not in raced]
            present += [s for s in missing if s.name in raced]
        elif missing:
            report.missing = [s.name for s in missing]
        if present:
            shapes, configs = await _describe(admin, present)
            for spec in present:
                report.checked.append(spec.name)
                shape = shapes.get(spec.name, (0, 0))
                report.differences += _differences(spec, shape, configs.get(spec.name, {}))
    finally:
        await admin.close()
    return report


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    broker: BrokerSettings | None = None,
    replication_factor: int = 1,
) -> None:
    """Create each missing topic with its number of partitions; existing ones are kept.

    For tests and the benchmark on the embedded broker (replication factor 1, no
    configs); the worker and the tools use :func:`topic_plan` and :func:`apply_topics`.
    """
    specs = [TopicSpec(name, n, replication_factor, {}, "any") for name, n in topics.items()]
    await apply_topics(bootstrap, specs, broker=broker)
