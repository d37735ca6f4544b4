"""Service configuration: one `Settings` object read from `CLAIMS_*` environment variables.

Nested groups use `__`: `CLAIMS_KAFKA__BOOTSTRAP_SERVERS`, `CLAIMS_TOPICS__SUBMITTED`,
`CLAIMS_CONSUMER__BATCH_SIZE`, `CLAIMS_LOG__FORMAT`, `CLAIMS_HTTP__PORT`,
`CLAIMS_TRACING__ENABLED`, ... `load_settings()` turns a pydantic
`ValidationError` into a `ConfigError` whose message has one line per problem, naming the
environment variable, so a bad deployment stops at start-up with a message an operator can act on.
Values are never echoed in that message: one of them may be a password.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal, Self

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.history_settings import HistorySettings
from service.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "ENV_PREFIX",
    "ApiSettings",
    "BrakeSettings",
    "ConfigError",
    "ConsumerSettings",
    "HealthSettings",
    "HttpSettings",
    "KafkaSettings",
    "LogSettings",
    "PublishSettings",
    "Settings",
    "TopicSettings",
    "TracingSettings",
    "env_name",
    "load_settings",
]

ENV_PREFIX = "CLAIMS_"
NESTED_DELIMITER = "__"
_RESERVED_PREFIXES = ("CLAIMS_TEST_",)
"""`CLAIMS_TEST_*` belongs to the test suite (e.g. CLAIMS_TEST_BOOTSTRAP), not to the service."""

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


class LogSettings(BaseModel):
    model_config = _GROUP

    format: Literal["auto", "json", "console"] = Field(
        "auto", description="json, console, or auto (console on a terminal, JSON otherwise)."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written."
    )


class HttpSettings(BaseModel):
    """The HTTP port of the same process: /metrics, /health/live, /health/ready, and the API
    and what-if page (`api`)."""

    model_config = _GROUP

    enabled: bool = Field(True, description="Serve the HTTP port at all.")
    host: str = Field("0.0.0.0", min_length=1, description="Address to listen on.")  # noqa: S104
    port: int = Field(
        8000, ge=0, le=65_535, description="Port to listen on; 0 picks a free one (tests)."
    )
    ping_timeout_s: float = Field(
        1.0,
        gt=0,
        le=30,
        description="Readiness: how long the broker may take to answer (below the probe's "
        "timeoutSeconds).",
    )
    ping_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="Readiness: how long a broker answer is reused, so probes do not hammer it.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A connection whose request headers have not arrived within this long is "
        "closed.",
    )


class ApiSettings(BaseModel):
    """The HTTP API (`/v1/*`) and the what-if page (`/`), on the same port as /metrics."""

    model_config = _GROUP

    enabled: bool = Field(
        True, description="Serve the HTTP API and the what-if page beside /metrics."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1_024,
        le=256 * 1024 * 1024,
        description="Largest request body accepted; a larger one is refused with 413.",
    )
    max_batch_claims: int = Field(
        1_000,
        ge=1,
        le=100_000,
        description="Most claims judged in one request: the lines of POST "
        "/v1/claims:validate-batch, or the claims of an 837P file sent to "
        "/v1/claims:validate-x12; more are refused with 413.",
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request body that has not fully arrived within this long gets 408.",
    )
    judge_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A batch still being judged after this long gets 503 (send fewer claims).",
    )


class HealthSettings(BaseModel):
    """The bounds behind /health/ready and /health/live."""

    model_config = _GROUP

    publish_failing_s: float = Field(
        15.0,
        gt=0,
        le=3_600,
        description="Readiness fails once publishing has been failing for this long.",
    )
    stalled_s: float = Field(
        60.0,
        gt=0,
        le=3_600,
        description="Readiness fails when there is lag and no batch has completed for this long.",
    )
    loop_blocked_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Liveness fails after the event loop was blocked for longer than this.",
    )


class BrakeSettings(BaseModel):
    """The internal-error brake: a bug that fails most claims stops the service (exit code 6)
    instead of dead-lettering the stream."""

    model_config = _GROUP

    internal_error_max_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Most records of the recent window that may fail with an internal error.",
    )
    internal_error_window: int = Field(
        1_000, ge=1, description="How many recent records the share is taken over."
    )
    internal_error_min_records: int = Field(
        20, ge=1, description="Records seen before the brake can trip."
    )


class TracingSettings(BaseModel):
    """OpenTelemetry tracing of consumed batches; needs the `otel` extra when enabled."""

    model_config = _GROUP

    enabled: bool = Field(False, description="Trace each consumed batch with OpenTelemetry.")
    service_name: str = Field(
        "claims-validator", min_length=1, description="service.name of the emitted spans."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces; unset: "
        "the globally configured tracer provider (e.g. by opentelemetry-instrument).",
    )


class LimitSettings(BaseModel):
    """How much work one input event may cost; the decoder and the verdict builder enforce it."""

    model_config = _GROUP

    max_event_bytes: int = Field(
        DEFAULT_LIMITS.max_event_bytes,
        ge=1,
        description="Largest event value, in bytes; a larger one goes to the dead-letter topic "
        "(reason too-large) unparsed.",
    )
    max_service_lines: int = Field(
        DEFAULT_LIMITS.max_service_lines,
        ge=1,
        description="Most service lines in a claim (an 837P claim allows 50); more gives a "
        "CLAIM_MALFORMED verdict.",
    )
    max_diagnosis_codes: int = Field(
        DEFAULT_LIMITS.max_diagnosis_codes,
        ge=1,
        description="Most diagnosis codes in a claim; more gives a CLAIM_MALFORMED verdict "
        "(an 837P claim allows 12: 13 up to this, the rules' DIAGNOSIS_TOO_MANY finding).",
    )
    max_codes_per_line: int = Field(
        DEFAULT_LIMITS.max_codes_per_line,
        ge=1,
        description="Most modifiers, and most diagnosis pointers, on a service line; more gives "
        "a CLAIM_MALFORMED verdict (over 4 up to this, the rules' findings).",
    )
    max_string_length: int = Field(
        DEFAULT_LIMITS.max_string_length,
        ge=1,
        description="Longest text field of a claim, in characters; longer gives a "
        "CLAIM_MALFORMED verdict (a longer claim_id: a dead letter).",
    )
    max_findings: int = Field(
        DEFAULT_LIMITS.max_findings,
        ge=2,
        description="Most findings in a verdict; the rest are counted in one FINDINGS_TRUNCATED "
        "finding.",
    )

    def limits(self) -> Limits:
        """The plain value the decoder and the verdict builder take (they never read settings)."""
        limits = Limits(**self.model_dump())
        # The default value itself: the decoder has its claim validator for it built already.
        return DEFAULT_LIMITS if limits == DEFAULT_LIMITS else limits


class Settings(BaseSettings):
    """Everything `claims-validator serve` can be told; see the module docstring for env names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="Broker connection and security."
    )
    topics: TopicSettings = Field(default_factory=TopicSettings, description="Topic names.")
    consumer: ConsumerSettings = Field(
        default_factory=ConsumerSettings, description="Consumer group and batching."
    )
    publish: PublishSettings = Field(
        default_factory=PublishSettings, description="Verdict producer and retry backoff."
    )
    log: LogSettings = Field(default_factory=LogSettings, description="Log format and level.")
    http: HttpSettings = Field(
        default_factory=HttpSettings, description="Metrics and health endpoints."
    )
    api: ApiSettings = Field(
        default_factory=ApiSettings, description="HTTP API and what-if page limits."
    )
    tracing: TracingSettings = Field(
        default_factory=TracingSettings, description="OpenTelemetry tracing."
    )
    health: HealthSettings = Field(
        default_factory=HealthSettings, description="Readiness and liveness bounds."
    )
    brake: BrakeSettings = Field(
        default_factory=BrakeSettings, description="The internal-error brake."
    )
    limits: LimitSettings = Field(
        default_factory=LimitSettings, description="Bounds on the work one input event may cost."
    )
    history: HistorySettings = Field(
        default_factory=HistorySettings, description="The claim-history database."
    )
    rule_table_dir: Path | None = Field(
        None,
        description=(
            "Directory of a rule table built by `claims-validator rules import --out DIR`;"
            " unset: the table shipped in the package."
        ),
    )
    shutdown_timeout_s: float = Field(
        20.0,
        gt=0,
        le=600,
        description="On SIGTERM, the longest wait for the batch in flight before exiting.",
    )

    @model_validator(mode="after")
    def _backoff_fits_poll_interval(self) -> Self:
        # A batch whose publish keeps failing sleeps up to retry_max_s between attempts; keep one
        # sleep far below the poll interval, or the consumer would leave the group mid-backoff.
        if self.publish.retry_max_s * 1000 * 4 > self.consumer.max_poll_interval_ms:
            raise ValueError(
                "publish.retry_max_s must stay below a quarter of consumer.max_poll_interval_ms"
            )
        # A batch still retrying when the poll interval runs out would leave the group.
        if self.publish.batch_deadline_s * 1000 * 2 > self.consumer.max_poll_interval_ms:
            raise ValueError(
                "publish.batch_deadline_s must stay below half of consumer.max_poll_interval_ms"
            )
        return self


class ConfigError(Exception):
    """A configuration the service cannot start with; the message has one line per problem."""


def env_name(loc: tuple[int | str, ...]) -> str:
    """`('consumer', 'batch_size')` -> `CLAIMS_CONSUMER__BATCH_SIZE`."""
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in loc)


def _known_env_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(env_name((name,)))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(env_name((name, sub)) for sub in annotation.model_fields)
    return names


def load_settings() -> Settings:
    """Settings from the environment; raise `ConfigError` naming each bad variable.

    An unknown `CLAIMS_*` variable is an error too: a typo would otherwise be silently ignored.
    """
    known = _known_env_names()
    problems: dict[str, str] = {
        name.upper(): "not a setting of claims-validator"
        for name in sorted(os.environ)
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(_RESERVED_PREFIXES)
    }
    settings: Settings | None = None
    try:
        settings = Settings()
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            problems.setdefault(_where(tuple(err["loc"])), _message(err["msg"]))
    if problems or settings is None:
        raise ConfigError("\n".join(f"{name}: {msg}" for name, msg in problems.items()))
    return settings


def _where(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "CLAIMS_*"
    if len(loc) == 1 and loc[0] in _GROUPS:
        # A cross-field rule of one group: the message names the fields.
        return env_name(loc) + NESTED_DELIMITER + "*"
    return env_name(loc)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


_GROUPS = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
)
