"""The Kafka groups of the settings: the cluster (`CLAIMS_KAFKA__*`), the topic names
(`CLAIMS_TOPICS__*`), the consumer (`CLAIMS_CONSUMER__*`) and publishing (`CLAIMS_PUBLISH__*`).

Part of the one `service.settings.Settings` object, which re-exports them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ConsumerSettings", "KafkaSettings", "PublishSettings", "TopicSettings"]

_GROUP = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(BaseModel):
    """How to reach the cluster. Security settings are passed through to aiokafka unchanged."""

    model_config = _GROUP

    bootstrap_servers: str = Field(
        "127.0.0.1:19092",
        min_length=1,
        description="Comma-separated host:port list of Kafka brokers to bootstrap from.",
    )
    client_id: str = Field(
        "claims-validator", min_length=1, description="Client id the broker sees in its logs."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism, used with SASL_PLAINTEXT and SASL_SSL."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(
        None, description="PEM file of CA certificates to trust (SSL, SASL_SSL)."
    )
    ssl_certfile: Path | None = Field(None, description="PEM client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="PEM private key of ssl_certfile.")
    ssl_keyfile_password: SecretStr | None = Field(
        None, description="Password of ssl_keyfile, if it is encrypted (never logged)."
    )
    request_timeout_ms: int = Field(
        30_000, ge=1_000, description="Client request timeout; a publish fails after this long."
    )

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.uses_sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and sasl_password"
            )
        tls_files = [self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile]
        if not self.uses_ssl and any(f is not None for f in tls_files):
            raise ValueError(
                "ssl_cafile/ssl_certfile/ssl_keyfile need security_protocol SSL or SASL_SSL"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        for name, path in (
            ("ssl_cafile", self.ssl_cafile),
            ("ssl_certfile", self.ssl_certfile),
            ("ssl_keyfile", self.ssl_keyfile),
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file {path}")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context aiokafka gets, or None without TLS."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile),
                str(self.ssl_keyfile) if self.ssl_keyfile else None,
                self.ssl_keyfile_password.get_secret_value()
                if self.ssl_keyfile_password
                else None,
            )
        return context

    def security(self) -> BaseSecurity | None:
        """FastStream's security object; `faststream.kafka.security.parse_security` turns it
        into the aiokafka keyword arguments, so the consumer and the producer agree."""
        context = self.ssl_context()
        if not self.uses_sasl:
            return BaseSecurity(ssl_context=context) if context is not None else None
        assert self.sasl_username is not None  # checked by _consistent
        assert self.sasl_password is not None
        kind = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }[self.sasl_mechanism]
        return kind(
            self.sasl_username,
            self.sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=self.uses_ssl,
        )


class TopicSettings(BaseModel):
    """Topic names. The service creates none of them: they are declared by the deployment."""

    model_config = _GROUP

    submitted: str = Field(
        "claims.submitted", min_length=1, description="Input topic of claim.submitted events."
    )
    accepted: str = Field(
        "claims.accepted", min_length=1, description="Output topic of claim.accepted verdicts."
    )
    flagged: str = Field(
        "claims.flagged", min_length=1, description="Output topic of claim.flagged verdicts."
    )
    dead_letter: str = Field(
        "claims.dead-letter",
        min_length=1,
        description="Unreadable input events, with their original bytes and x-dlq-* headers.",
    )

    @model_validator(mode="after")
    def _input_is_not_an_output(self) -> Self:
        if self.submitted in (self.accepted, self.flagged, self.dead_letter):
            raise ValueError("submitted must differ from accepted, flagged and dead_letter")
        return self


class ConsumerSettings(BaseModel):
    """The consumer group and how records are fetched."""

    model_config = _GROUP

    group_id: str = Field(
        "claims-validator", min_length=1, description="Consumer group id; offsets commit here."
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a group with no committed offset starts; earliest judges every claim.",
    )
    batch_size: int = Field(
        1_000, ge=1, le=50_000, description="Most records handled (and committed) as one batch."
    )
    batch_timeout_ms: int = Field(
        100, ge=1, le=60_000, description="Longest wait for a batch when the topic is quiet."
    )
    max_poll_interval_ms: int = Field(
        300_000,
        ge=10_000,
        description="A batch taking longer than this (e.g. publish retries) leaves the group.",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1_000, description="Group session timeout: how soon a dead member is noticed."
    )
    heartbeat_interval_ms: int = Field(
        3_000, ge=100, description="Heartbeat interval; about a third of session_timeout_ms."
    )
    fetch_max_bytes: int = Field(
        52_428_800,
        ge=1_048_576,
        description="Most bytes one fetch returns across partitions (bounds memory per batch).",
    )
    max_partition_fetch_bytes: int = Field(
        1_048_576,
        ge=65_536,
        description="Most bytes one fetch returns per partition.",
    )

    @model_validator(mode="after")
    def _heartbeat_inside_session(self) -> Self:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        return self


class PublishSettings(BaseModel):
    """The verdict producer (acks=all, idempotent) and its retry backoff."""

    model_config = _GROUP

    linger_ms: int = Field(
        0,
        ge=0,
        le=1_000,
        description="How long the producer waits to fill a batch for records sent one by one "
        "(records without a key); keyed records are packed into per-partition batches by the "
        "service and sent at once.",
    )
    max_batch_size: int = Field(
        262_144, ge=16_384, description="Producer batch size per partition, in bytes."
    )
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", description="Compression of produced batches (every codec is installed)."
    )
    retry_initial_s: float = Field(
        0.2, gt=0, le=60, description="First backoff after a failed publish, in seconds."
    )
    retry_max_s: float = Field(
        10.0, gt=0, le=600, description="Backoff cap; it doubles from retry_initial_s up to this."
    )
    batch_deadline_s: float = Field(
        60.0,
        gt=0,
        le=3_600,
        description="A batch not acknowledged within this long is handed back uncommitted and "
        "consumed again (keeps the consumer polling, so it stays in its group).",
    )
    give_up_after_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Publishing failing for this long without a success: the service exits "
        "(code 5) so the orchestrator restarts it and an operator is told.",
    )
    max_producer_rebuilds: int = Field(
        3,
        ge=1,
        le=100,
        description="New producers built for one batch after the producer's own state broke "
        "(out-of-order sequence, unknown producer id, fenced epoch) before giving up (code 5).",
    )

    @model_validator(mode="after")
    def _initial_below_max(self) -> Self:
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        return self
