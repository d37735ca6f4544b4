"""Fixtures of the in-memory service tests: settings, the shipped rule table, the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import structlog
from faststream import FastStream, TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker

from service.app import create_app
from service.producers import Producer
from service.ruletable.compiled import RuleTable
from service.settings import PublishSettings, Settings
from service.tables import default_table
from tests.service.fakes import RecordingProducer

RunApp = Callable[..., AbstractAsyncContextManager[KafkaBroker]]


@pytest.fixture
def settings() -> Settings:
    # Explicit values: nothing in the test environment changes what these tests run with.
    return Settings(publish=PublishSettings(retry_initial_s=0.01, retry_max_s=0.04))


@pytest.fixture(scope="session")
def table() -> RuleTable:
    return default_table()


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def run_app(settings: Settings, table: RuleTable, producer: RecordingProducer) -> RunApp:
    """`async with run_app() as broker:` runs the real app against FastStream's in-memory
    broker; keyword arguments replace the settings, table or producer."""

    @asynccontextmanager
    async def running(
        *,
        settings: Settings = settings,
        table: RuleTable = table,
        producer: Producer = producer,
    ) -> AsyncIterator[KafkaBroker]:
        app: FastStream = create_app(settings, table=table, producer=producer)
        broker = app.broker
        assert isinstance(broker, KafkaBroker)
        async with TestKafkaBroker(broker) as test_broker, TestApp(app):
            yield test_broker

    return running


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that configures logging must not leak its handlers or processors into the next."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
