"""The embedded Tansu broker: real process, real aiokafka clients."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cxpulse.agents.kafka.security import EXIT_UNREACHABLE, BrokerError
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics, free_port, wait_for_kafka

pytestmark = pytest.mark.integration


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
async def producer(broker: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await client.start()
    yield client
    await client.stop()


async def test_produce_then_consume(
    broker: EmbeddedBroker, producer: AIOKafkaProducer, unique: str
) -> None:
    topic = f"test.roundtrip.{unique}"
    await ensure_topics(broker.bootstrap, {topic: 1})
    await producer.send_and_wait(topic, b'{"hello": 1}', key=b"k1")
    # No group: Tansu takes ~5 s to complete a new group's first join.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k1", b'{"hello": 1}')


async def test_ensure_topics_creates_partitions_and_is_idempotent(
    broker: EmbeddedBroker, unique: str
) -> None:
    wanted = {f"test.four.{unique}": 4, f"test.one.{unique}": 1}
    await ensure_topics(broker.bootstrap, wanted)
    await ensure_topics(broker.bootstrap, wanted)  # already there: no error
    consumer = AIOKafkaConsumer(*wanted, bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        assert consumer.partitions_for_topic(f"test.four.{unique}") == {0, 1, 2, 3}
        assert consumer.partitions_for_topic(f"test.one.{unique}") == {0}
    finally:
        await consumer.stop()


async def test_wait_for_kafka_answers_and_times_out(broker: EmbeddedBroker) -> None:
    await wait_for_kafka(broker.bootstrap, timeout=5)
    port = free_port()
    with pytest.raises(BrokerError) as refused:
        await wait_for_kafka(f"127.0.0.1:{port}", timeout=0.5)
    assert refused.value.exit_code == EXIT_UNREACHABLE
    assert str(refused.value) == (
        f"cannot connect to 127.0.0.1:{port}: connection refused (tried for 1s)"
        " — check [broker] url (or --broker)"
    )


def test_stop_leaves_no_process_and_is_idempotent() -> None:
    embedded = EmbeddedBroker()
    embedded.start()
    pid = embedded.pid
    assert pid is not None and embedded.is_running()
    embedded.stop()
    embedded.stop()
    assert _process_gone(pid)
    assert not embedded.is_running() and embedded.pid is None


def test_start_refuses_a_port_in_use(broker: EmbeddedBroker) -> None:
    with pytest.raises(RuntimeError, match="in use"):
        EmbeddedBroker(port=broker.port).start()


async def test_pause_holds_requests_until_resume(unique: str) -> None:
    async with EmbeddedBroker() as embedded:
        topic = f"test.pause.{unique}"
        await ensure_topics(embedded.bootstrap, {topic: 1})
        producer = AIOKafkaProducer(bootstrap_servers=embedded.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"before")
            embedded.pause()
            pending = asyncio.ensure_future(producer.send_and_wait(topic, b"during"))
            done, _ = await asyncio.wait([pending], timeout=1.0)
            assert not done, "a paused broker must not answer"
            embedded.resume()
            metadata = await asyncio.wait_for(pending, 20)
            assert metadata.offset == 1
        finally:
            embedded.resume()
            await producer.stop()
        pid = embedded.pid
    assert pid is not None and _process_gone(pid)


def test_stop_kills_a_paused_broker() -> None:
    with EmbeddedBroker() as embedded:
        pid = embedded.pid
        embedded.pause()
    assert pid is not None and _process_gone(pid)


def test_run_broker_forever_serves_until_sigint() -> None:
    port = free_port()
    code = (
        "from cxpulse.agents.tools.broker import run_broker_forever; "
        f"exit(run_broker_forever({port}))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == f"cxpulse broker: kafka://127.0.0.1:{port} (Ctrl-C to stop)"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    with pytest.raises(ConnectionRefusedError):  # the broker is gone with its parent
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
