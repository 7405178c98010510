"""Shared fixtures: one embedded broker per test session, and unique names per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from streams.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free port for the whole session (its log is kept in a tmp dir)."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=str(log_path)) as running:
        yield running


@pytest.fixture
def unique() -> str:
    """A short random string for topic names, group and app ids that no other test uses."""
    return uuid.uuid4().hex[:8]
