"""The `history` group of the settings (`CLAIMS_HISTORY__*`): the claim-history database.

Kept out of `service.settings` so the store can be configured by a test without the rest.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["HistorySettings"]


class HistorySettings(BaseModel):
    """Where the claim history lives and how the service treats it when it is away."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description=(
            "Judge the cross-claim rules (DUPLICATE_CLAIM, DUPLICATE_LINE, FREQUENCY_LIMIT)"
            " against a PostgreSQL claim history; off: they are skipped, said once at start-up."
        ),
    )
    dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL connection string, e.g. postgresql://user:pass@host:5432/claims"
        " (never logged); required when enabled.",
    )
    ssl_mode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="TLS to the database, as libpq's sslmode."
    )
    ssl_root_cert: Path | None = Field(
        None, description="PEM CA certificates to trust (verify-ca, verify-full)."
    )
    ssl_cert: Path | None = Field(None, description="PEM client certificate for mutual TLS.")
    ssl_key: Path | None = Field(None, description="PEM private key of ssl_cert.")
    hmac_key: SecretStr | None = Field(
        None,
        description="Secret of the HMAC-SHA256 that keys each member (payer id and member id)"
        " in the database instead of the member ID; at least 32 characters; required when"
        " enabled. Changing it starts a new history.",
    )
    pool_size: int = Field(4, ge=1, le=100, description="Database connections per instance.")
    connect_timeout_s: float = Field(
        5.0, gt=0, le=120, description="How long connecting to the database may take."
    )
    statement_timeout_s: float = Field(
        10.0, gt=0, le=600, description="How long one batch's database round trip may take."
    )
    retry_initial_s: float = Field(
        0.5, gt=0, le=60, description="First backoff after the database failed a batch."
    )
    retry_max_s: float = Field(
        10.0, gt=0, le=60, description="Backoff cap; it doubles from retry_initial_s up to this."
    )
    give_up_after_s: float = Field(
        300.0,
        gt=0,
        description="The database failing for this long without a success: the service exits"
        " (code 7) so the orchestrator restarts it and an operator is told.",
    )
    purge_margin_days: int = Field(
        30,
        ge=0,
        le=3650,
        description="Rows older than the longest rule window plus this many days are purged.",
    )
    purge_interval_s: float = Field(
        3600.0, gt=0, description="How often the service purges old rows (0 < seconds)."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled:
            if self.dsn is None:
                raise ValueError("dsn is required when history is enabled")
            if self.hmac_key is None or len(self.hmac_key.get_secret_value()) < 32:
                raise ValueError(
                    "hmac_key of at least 32 characters is required when history is enabled"
                )
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        if self.ssl_key is not None and self.ssl_cert is None:
            raise ValueError("ssl_key needs ssl_cert")
        for name, path in (
            ("ssl_root_cert", self.ssl_root_cert),
            ("ssl_cert", self.ssl_cert),
            ("ssl_key", self.ssl_key),
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file {path}")
        return self

    def ssl(self) -> ssl.SSLContext | str | bool:
        """What asyncpg's `ssl` argument gets: a context for the verifying modes or a client
        certificate, else the libpq mode name."""
        if self.ssl_mode == "disable":
            return False
        verify = self.ssl_mode in ("verify-ca", "verify-full")
        if not verify and self.ssl_cert is None:
            return self.ssl_mode
        context = ssl.create_default_context(
            cafile=str(self.ssl_root_cert) if self.ssl_root_cert else None
        )
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.check_hostname = self.ssl_mode == "verify-full"
        if self.ssl_cert is not None:
            context.load_cert_chain(
                str(self.ssl_cert), str(self.ssl_key) if self.ssl_key else None
            )
        return context
