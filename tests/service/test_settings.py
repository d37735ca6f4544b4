"""Settings from CLAIMS_* variables; a bad configuration names the variable, never the value."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import certifi
import pytest
from faststream.kafka.security import parse_security
from faststream.security import SASLScram512

from service.settings import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CLAIMS_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_documented_topics_group_and_local_broker() -> None:
    settings = load_settings()
    assert (
        "claims.submitted",
        "claims.accepted",
        "claims.flagged",
        "claims.dead-letter",
    ) == (
        settings.topics.submitted,
        settings.topics.accepted,
        settings.topics.flagged,
        settings.topics.dead_letter,
    )
    assert ("claims-validator", "earliest") == (
        settings.consumer.group_id,
        settings.consumer.auto_offset_reset,
    )
    assert ["127.0.0.1:19092"] == settings.kafka.servers
    assert settings.kafka.security() is None


def test_nested_variables_use_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_KAFKA__BOOTSTRAP_SERVERS", "k1:9092, k2:9092")
    monkeypatch.setenv("CLAIMS_TOPICS__SUBMITTED", "in.v2")
    monkeypatch.setenv("CLAIMS_CONSUMER__BATCH_SIZE", "250")
    monkeypatch.setenv("CLAIMS_LOG__FORMAT", "json")
    monkeypatch.setenv("CLAIMS_SHUTDOWN_TIMEOUT_S", "7.5")
    settings = load_settings()
    assert (["k1:9092", "k2:9092"], "in.v2", 250, "json", 7.5) == (
        settings.kafka.servers,
        settings.topics.submitted,
        settings.consumer.batch_size,
        settings.log.format,
        settings.shutdown_timeout_s,
    )


def test_each_bad_variable_is_named_on_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_CONSUMER__BATCH_SIZE", "0")
    monkeypatch.setenv("CLAIMS_LOG__FORMAT", "xml")
    monkeypatch.setenv("CLAIMS_CONSUMER__AUTO_OFFSET_RESET", "sometimes")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert 3 == len(lines)
    assert {
        "CLAIMS_CONSUMER__BATCH_SIZE",
        "CLAIMS_LOG__FORMAT",
        "CLAIMS_CONSUMER__AUTO_OFFSET_RESET",
    } == {line.split(":", 1)[0] for line in lines}
    assert "sometimes" not in str(caught.value)


def test_misspelt_variable_is_an_error_not_silently_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAIMS_SHUTDOWN_TIMEOUT", "5")  # missing _S
    monkeypatch.setenv("CLAIMS_TOPICS__SUBMITED", "x")  # typo inside a group
    monkeypatch.setenv("CLAIMS_TEST_BOOTSTRAP", "127.0.0.1:1")  # the test suite's own
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [
        "CLAIMS_SHUTDOWN_TIMEOUT: not a setting of claims-validator",
        "CLAIMS_TOPICS__SUBMITED: not a setting of claims-validator",
    ] == str(caught.value).splitlines()


def test_sasl_needs_credentials_and_the_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAIMS_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CLAIMS_KAFKA__SASL_PASSWORD", "hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("CLAIMS_KAFKA__*: security_protocol SASL_PLAINTEXT needs")
    assert "hunter2-secret" not in str(caught.value)

    monkeypatch.setenv("CLAIMS_KAFKA__SASL_USERNAME", "validator")
    monkeypatch.setenv("CLAIMS_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())
    security = settings.kafka.security()
    assert isinstance(security, SASLScram512)
    assert {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "validator",
        "sasl_plain_password": "hunter2-secret",
    }.items() <= parse_security(security).items()


def test_tls_files_are_passed_through_as_an_ssl_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(Path(certifi.where()).read_bytes())  # any real CA bundle will do
    monkeypatch.setenv("CLAIMS_KAFKA__SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CLAIMS_KAFKA__SSL_CAFILE", str(cafile))
    kwargs = parse_security(load_settings().kafka.security())
    assert "SSL" == kwargs["security_protocol"]
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_tls_file_that_does_not_exist_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLAIMS_KAFKA__SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CLAIMS_KAFKA__SSL_CAFILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"CLAIMS_KAFKA__\*: ssl_cafile: no such file"):
        load_settings()


def test_backoff_must_stay_well_below_the_poll_interval() -> None:
    with pytest.raises(ValueError, match="retry_max_s must stay below a quarter"):
        Settings.model_validate(
            {"publish": {"retry_max_s": 100}, "consumer": {"max_poll_interval_ms": 300_000}}
        )


def test_every_setting_is_documented() -> None:
    groups = [Settings, *(f.annotation for f in Settings.model_fields.values())]
    for model in groups:
        fields = getattr(model, "model_fields", {})
        for name, field in fields.items():
            assert field.description, f"{getattr(model, '__name__', model)}.{name}"

