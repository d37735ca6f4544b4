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
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.history_settings import HistorySettings
from service.kafka_settings import (
    ConsumerSettings,
    KafkaSettings,
    PublishSettings,
    TopicSettings,
)
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
