"""The claim history in the Kubernetes overlays (components/claim-history).

prod and prod-hpa turn the history on: PostgreSQL over verify-full TLS, the DSN and HMAC key
from a Secret through secretKeyRef, the database CA from a read-only Secret volume at the path
the settings name. dev has no database and keeps the history off. The numbers operators must
plan for (connections at the replica cap, the readiness probe's time budget) are checked against
the service's own settings, and every Secret the pods reference has its `kubectl create secret`
in deploy/README.md.
"""

from __future__ import annotations

import re

import pytest

from service.health import PING_GRACE_S
from service.history_settings import HistorySettings
from service.historydb.gate import PING_TIMEOUT_S as HISTORY_PING_TIMEOUT_S
from service.settings import ConfigError, HttpSettings, load_settings
from tests.deploy.rendering import (
    APP,
    DEPLOY,
    FILE_SETTINGS,
    HISTORY_OVERLAYS,
    OVERLAYS,
    Rendered,
    pod_environment,
    secret_file,
    use_environment,
)

HISTORY_SECRET = "claims-validator-history"
HISTORY_TLS_SECRET = "claims-validator-history-tls"
POSTGRES_DEFAULT_CONNECTIONS = 100 - 3
"""PostgreSQL's default max_connections less its superuser_reserved_connections: what a
database left at its defaults gives every other role together."""


def _setting(
    r: Rendered, model: type[HistorySettings | HttpSettings], group: str, name: str
) -> str:
    """A setting's value in the pod: the ConfigMap's, else the service's default."""
    default = model.model_fields[name].default
    return r.settings_data.get(f"CLAIMS_{group}__{name.upper()}", str(default))


@pytest.mark.parametrize("overlay", sorted(HISTORY_OVERLAYS))
def test_prod_turns_the_history_on_over_verified_tls(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    data = r.settings_data
    assert data["CLAIMS_HISTORY__ENABLED"] == "true"
    assert data["CLAIMS_HISTORY__SSL_MODE"] == "verify-full"
    env = r.secret_env()
    assert env["CLAIMS_HISTORY__DSN"] == (HISTORY_SECRET, "dsn")
    assert env["CLAIMS_HISTORY__HMAC_KEY"] == (HISTORY_SECRET, "hmac-key")
    # The CA path the service reads is a key of the TLS Secret, mounted read-only.
    ca = data["CLAIMS_HISTORY__SSL_ROOT_CERT"]
    assert secret_file(r, ca) == (HISTORY_TLS_SECRET, "ca.crt")


def test_dev_keeps_the_history_off(rendered: dict[str, Rendered]) -> None:
    r = rendered["dev"]
    assert not [k for k in r.settings_data if k.startswith("CLAIMS_HISTORY__")]
    assert not [v for v in r.container.get("env", []) if v["name"].startswith("CLAIMS_HISTORY__")]
    secrets = {v["secret"]["secretName"] for v in r.pod["volumes"] if "secret" in v}
    assert HISTORY_TLS_SECRET not in secrets


@pytest.mark.parametrize("overlay", sorted(HISTORY_OVERLAYS))
def test_a_missing_database_ca_stops_start_up_naming_it(
    rendered: dict[str, Rendered], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mounted CA is what lets the pod start: without the file (a Secret lacking ca.crt)
    the service refuses its settings and says which one."""
    use_environment(monkeypatch, pod_environment(rendered[overlay]))
    with pytest.raises(ConfigError, match=r"ssl_root_cert: no such file /etc/claims-validator"):
        load_settings()


@pytest.mark.parametrize("overlay", sorted(HISTORY_OVERLAYS))
def test_connections_at_the_replica_cap_fit_a_default_postgres(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    """Every pod holds up to pool_size connections; the most pods at once is the autoscaler's
    cap plus the rolling update's surge. deploy/README.md states the same sum."""
    r = rendered[overlay]
    scaler = (r.all("ScaledObject") + r.all("HorizontalPodAutoscaler"))[0]["spec"]
    cap = scaler.get("maxReplicaCount", scaler.get("maxReplicas"))
    surge = r.one("Deployment", APP)["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    pool = int(_setting(r, HistorySettings, "HISTORY", "pool_size"))
    peak = (cap + surge) * pool
    assert peak <= POSTGRES_DEFAULT_CONNECTIONS
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert f"({cap} + {surge}) x {pool} = {peak}" in readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_readiness_probe_waits_for_every_check(rendered: dict[str, Rendered], overlay: str) -> None:
    """/health/ready pings the broker, then (history on) the database, one after the other:
    the probe must not time out while both are still within their own bounds."""
    r = rendered[overlay]
    budget = float(_setting(r, HttpSettings, "HTTP", "ping_timeout_s")) + PING_GRACE_S
    if r.settings_data.get("CLAIMS_HISTORY__ENABLED") == "true":
        budget += HISTORY_PING_TIMEOUT_S
    assert r.container["readinessProbe"]["timeoutSeconds"] >= budget


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_referenced_secret_is_documented(rendered: dict[str, Rendered], overlay: str) -> None:
    """Each Secret key the pods read has its `kubectl create secret` line in deploy/README.md."""
    r = rendered[overlay]
    wanted = set(r.secret_env().values())
    for setting in FILE_SETTINGS & r.settings_data.keys():
        wanted.add(secret_file(r, r.settings_data[setting]))
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    created: dict[str, set[str]] = {}
    for block in re.findall(r"create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", readme):
        created.setdefault(block[0], set()).update(re.findall(r"--from-\w+=([\w.-]+)=", block[1]))
    missing = {(s, k) for s, k in wanted if k not in created.get(s, set())}
    assert missing == set()
    if overlay in HISTORY_OVERLAYS:
        assert (HISTORY_SECRET, "hmac-key") in wanted
