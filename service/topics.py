"""Creating and deleting the service's topics: `claims-validator topics create`, the demo, the
benchmark and the real-broker tests all go through here.

The service itself never creates a topic while it runs (the deployment declares them, and a
missing output topic must show as a stall, not be papered over by auto-creation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import TopicAlreadyExistsError  # type: ignore[import-untyped]
from faststream.kafka.security import parse_security

from service.settings import KafkaSettings, TopicSettings

__all__ = ["create_topics", "delete_topics", "service_topics"]


def service_topics(topics: TopicSettings) -> list[str]:
    """The input, the two verdict topics and the dead-letter topic."""
    return [topics.submitted, topics.accepted, topics.flagged, topics.dead_letter]


def _admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=kafka.servers,
        request_timeout_ms=kafka.request_timeout_ms,
        **parse_security(kafka.security()),
    )


async def create_topics(
    kafka: KafkaSettings,
    names: Sequence[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create those of `names` that do not exist yet; the ones created."""
    admin = _admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            # Created meanwhile by someone else is what we wanted too.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=dict(config or {}),
                        )
                        for n in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaSettings, names: Sequence[str]) -> None:
    admin = _admin(kafka)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()
