"""Render every Kustomize overlay under deploy/ and check what a cluster would receive.

Rendering uses the project-pinned kustomize that scripts/kustomize.sh builds from the Go module
proxy; if it cannot be built the tests fail (never skip) and say why. Every rendered object is
validated offline: Kubernetes kinds against the strict schemas shipped in kubernetes-validate
(unknown fields are errors) for each version in K8S_SCHEMA_VERSIONS, KEDA's CRDs against the
schemas in tests/deploy/keda_schema.py. On top of schema validity the tests assert the properties
operators rely on: non-root pods, probe paths, the replica cap versus partitions, one autoscaler,
a PodDisruptionBudget, settings the service accepts, and no secret values anywhere.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from service.settings import Settings, env_name, load_settings
from tests.deploy.compose import created_topics, load_compose
from tests.deploy.keda_schema import SCALED_OBJECT, TRIGGER_AUTHENTICATION
from tests.deploy.rendering import (
    APP,
    DEPLOY,
    FILE_SETTINGS,
    HISTORY_OVERLAYS,
    KUSTOMIZE_VERSION,
    OVERLAYS,
    SECRET_SETTINGS,
    Rendered,
    pod_environment,
    secret_file,
    use_environment,
)

# 1.31: the oldest minor where every field used here is GA (PDB unhealthyPodEvictionPolicy);
# 1.37: the newest schema kubernetes-validate ships, to catch removed or changed fields.
K8S_SCHEMA_VERSIONS = ("1.31.0", "1.37.0")
HTTP_PORT = 8000
RSS_CEILING_BYTES = 250 * 1000 * 1000
"""The service stays under 250 MB RSS; requests must cover it, limits leave headroom."""
SHUTDOWN_MARGIN_S = 10
"""After shutdown_timeout_s the consumer still commits, leaves the group and flushes."""

# Partitions of claims.submitted that each overlay runs against: dev is the topic as
# docker-compose.yml creates it; prod is the production topic (deploy/README.md).
PROD_INPUT_PARTITIONS = 12
EXPECTED_REPLICAS = {"dev": (1, 3), "prod": (3, 12), "prod-hpa": (3, 12)}
SASL_SSL_OVERLAYS = frozenset({"prod", "prod-hpa"})
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION,
}


def _validate(obj: dict[str, Any], k8s_version: str) -> None:
    """Raise if `obj` does not match its schema; fail if there is no schema for its kind."""
    schema = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if schema is not None:
        jsonschema.Draft202012Validator(schema).validate(obj)
        behavior = obj["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        if "behavior" in behavior:
            # KEDA passes this to the HPA it creates: check it as an autoscaling/v2 HPA would.
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": obj["metadata"]["name"]},
                "spec": {
                    "scaleTargetRef": obj["spec"]["scaleTargetRef"],
                    "maxReplicas": obj["spec"]["maxReplicaCount"],
                    "behavior": behavior["behavior"],
                },
            }
            kubernetes_validate.validate(hpa, k8s_version, strict=True)
        return
    try:
        used = kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"no schema for {obj['apiVersion']} {obj['kind']}: {exc.message}")
    assert used == k8s_version.rsplit(".", 1)[0], f"validated against {used}, not {k8s_version}"


def _memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity)


def _cpu_cores(quantity: str) -> float:
    if quantity.endswith("m"):
        return float(quantity[:-1]) / 1000
    return float(quantity)


def test_every_overlay_is_tested() -> None:
    overlays = sorted(p.parent.name for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
    assert overlays == sorted(OVERLAYS)


def test_kustomize_is_the_pinned_version(kustomize: Path) -> None:
    proc = subprocess.run(
        [str(kustomize), "version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == KUSTOMIZE_VERSION


@pytest.mark.parametrize("k8s_version", K8S_SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_its_schema(
    rendered: dict[str, Rendered], overlay: str, k8s_version: str
) -> None:
    errors = []
    for obj in rendered[overlay].objects:
        try:
            _validate(obj, k8s_version)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")
    assert errors == []


def test_strict_schema_rejects_a_misspelt_field(rendered: dict[str, Rendered]) -> None:
    deployment = copy.deepcopy(rendered["dev"].one("Deployment", APP))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        _validate(deployment, K8S_SCHEMA_VERSIONS[0])


@pytest.mark.parametrize(
    ("key", "value"),
    [("lagThreshold", 1000), ("lagTreshold", "1000"), ("allowIdleConsumers", "yes")],
)
def test_keda_schema_rejects_bad_trigger_metadata(
    rendered: dict[str, Rendered], key: str, value: object
) -> None:
    scaled_object = copy.deepcopy(rendered["dev"].one("ScaledObject", APP))
    scaled_object["spec"]["triggers"][0]["metadata"][key] = value
    with pytest.raises(jsonschema.ValidationError):
        _validate(scaled_object, K8S_SCHEMA_VERSIONS[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_shipped(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    kinds = sorted(o["kind"] for o in r.objects)
    autoscaler = ["HorizontalPodAutoscaler"] if overlay == "prod-hpa" else ["ScaledObject"]
    auth = ["TriggerAuthentication"] if overlay == "prod" else []
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            *autoscaler,
            *auth,
        ]
    )
    for obj in r.objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == APP, obj["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_runs_non_root_with_a_read_only_root(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    pod_sc, sc = r.pod["securityContext"], r.container["securityContext"]
    for context in (pod_sc, sc):
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 10001
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert r.pod["automountServiceAccountToken"] is False
    # The image's WORKDIR is /tmp: the only writable path, a bounded emptyDir.
    tmp = next(m for m in r.container["volumeMounts"] if m["mountPath"] == "/tmp")  # noqa: S108
    volume = next(v for v in r.pod["volumes"] if v["name"] == tmp["name"])
    assert "sizeLimit" in volume["emptyDir"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_http_port(rendered: dict[str, Rendered], overlay: str) -> None:
    c = rendered[overlay].container
    assert c["ports"] == [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert c["startupProbe"]["httpGet"]["port"] == "http"
    assert c["args"] == ["serve"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_fit_a_250_mb_service(rendered: dict[str, Rendered], overlay: str) -> None:
    res = rendered[overlay].container["resources"]
    request = _memory_bytes(res["requests"]["memory"])
    limit = _memory_bytes(res["limits"]["memory"])
    assert RSS_CEILING_BYTES <= request <= limit
    assert 1.25 * RSS_CEILING_BYTES <= limit <= 4 * RSS_CEILING_BYTES
    assert 0 < _cpu_cores(res["requests"]["cpu"]) <= _cpu_cores(res["limits"]["cpu"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_the_shutdown_timeout(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    default = Settings.model_fields["shutdown_timeout_s"].default
    timeout = float(r.settings_data.get(env_name(("shutdown_timeout_s",)), default))
    assert r.pod["terminationGracePeriodSeconds"] >= timeout + SHUTDOWN_MARGIN_S


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_scraped_through_the_http_port(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    template = r.one("Deployment", APP)["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(HTTP_PORT),
        "prometheus.io/path": "/metrics",
    }
    service = r.one("Service", APP)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_covers_the_pods(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    pdb = r.one("PodDisruptionBudget", APP)
    deployment = r.one("Deployment", APP)
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    # maxUnavailable (not minAvailable) so a 1-replica dev deployment can still be drained.
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_autoscaler_capped_at_the_input_partitions(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    submitted = r.settings_data["CLAIMS_TOPICS__SUBMITTED"]
    if overlay.startswith("prod"):
        partitions = PROD_INPUT_PARTITIONS
    else:
        partitions = created_topics(load_compose())[submitted]
    scalers = r.all("ScaledObject") + r.all("HorizontalPodAutoscaler")
    # KEDA drives the Deployment through an HPA of its own: a second HPA would fight it.
    assert len(scalers) == 1, f"{overlay}: KEDA and an HPA both target the Deployment"
    scaler = scalers[0]
    target = scaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", APP)
    if scaler["kind"] == "ScaledObject":
        low, high = scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]
        assert scaler["spec"]["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"
    else:
        low, high = scaler["spec"]["minReplicas"], scaler["spec"]["maxReplicas"]
    assert 1 <= low <= high <= partitions
    assert (low, high) == EXPECTED_REPLICAS[overlay]
    assert r.one("Deployment", APP)["spec"]["replicas"] == low


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "prod-hpa"])
def test_keda_watches_the_group_and_topic_the_service_consumes(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    r = rendered[overlay]
    data = r.settings_data
    trigger = r.one("ScaledObject", APP)["spec"]["triggers"][0]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["bootstrapServers"] == data["CLAIMS_KAFKA__BOOTSTRAP_SERVERS"]
    assert meta["consumerGroup"] == data["CLAIMS_CONSUMER__GROUP_ID"] == APP
    assert meta["topic"] == data["CLAIMS_TOPICS__SUBMITTED"] == "claims.submitted"
    assert meta["offsetResetPolicy"] == data["CLAIMS_CONSUMER__AUTO_OFFSET_RESET"]
    assert int(meta["lagThreshold"]) > 0
    protocol = data["CLAIMS_KAFKA__SECURITY_PROTOCOL"]
    assert meta.get("tls", "disable") == ("enable" if protocol.endswith("SSL") else "disable")
    if protocol.startswith("SASL_"):
        assert meta["sasl"] == KEDA_SASL[data["CLAIMS_KAFKA__SASL_MECHANISM"]]
        # KEDA reads the lag with the very credentials and CA the pods use.
        auth = r.one("TriggerAuthentication", trigger["authenticationRef"]["name"])
        refs = {t["parameter"]: (t["name"], t["key"]) for t in auth["spec"]["secretTargetRef"]}
        env_refs = r.secret_env()
        assert refs["username"] == env_refs["CLAIMS_KAFKA__SASL_USERNAME"]
        assert refs["password"] == env_refs["CLAIMS_KAFKA__SASL_PASSWORD"]
        assert refs["ca"] == secret_file(r, data["CLAIMS_KAFKA__SSL_CAFILE"])
    else:
        assert "sasl" not in meta
        assert "authenticationRef" not in trigger


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_environment_is_accepted_by_the_service(
    rendered: dict[str, Rendered],
    overlay: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """load_settings() - which refuses unknown CLAIMS_* names - accepts the pod's environment,
    with the Secret files present where their volume mounts them."""
    r = rendered[overlay]
    env = pod_environment(r)
    for name in FILE_SETTINGS & env.keys():
        secret, key = secret_file(r, env[name])
        local = tmp_path / secret / key
        local.parent.mkdir(exist_ok=True)
        local.write_text("placeholder\n", encoding="utf-8")
        env[name] = str(local)
    use_environment(monkeypatch, env)

    settings = load_settings()

    assert settings.consumer.group_id == APP
    assert settings.topics.submitted == "claims.submitted"
    assert settings.log.format == "json"
    if overlay in SASL_SSL_OVERLAYS:
        assert settings.kafka.security_protocol == "SASL_SSL"
        assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
        assert settings.kafka.ssl_cafile is not None
    else:
        assert settings.kafka.security_protocol == "PLAINTEXT"
    history = settings.history
    if overlay in HISTORY_OVERLAYS:
        assert history.enabled is True
        assert history.ssl_mode == "verify-full"
        # The CA the service trusts is the file its Secret volume mounts.
        ca_secret, ca_key = secret_file(r, r.settings_data["CLAIMS_HISTORY__SSL_ROOT_CERT"])
        assert history.ssl_root_cert == tmp_path / ca_secret / ca_key
        assert history.dsn is not None
        assert history.hmac_key is not None
    else:
        assert history.enabled is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_are_shipped(rendered: dict[str, Rendered], overlay: str) -> None:
    r = rendered[overlay]
    assert r.all("Secret") == []
    assert "-----BEGIN" not in r.text
    assert SECRET_SETTINGS.isdisjoint(r.settings_data), "credentials belong in a Secret"
    for var in r.container.get("env", []):
        if var["name"] in SECRET_SETTINGS:
            assert "value" not in var, var["name"]
            assert "secretKeyRef" in var["valueFrom"], var["name"]
    # A connection string carries the database password: never in a manifest.
    assert "postgresql://" not in r.text
    assert "postgres://" not in r.text
    secret_env = {v["name"] for v in r.container.get("env", []) if v["name"] in SECRET_SETTINGS}
    expected: set[str] = set()
    if overlay in SASL_SSL_OVERLAYS:
        expected |= {"CLAIMS_KAFKA__SASL_USERNAME", "CLAIMS_KAFKA__SASL_PASSWORD"}
    if overlay in HISTORY_OVERLAYS:
        expected |= {"CLAIMS_HISTORY__DSN", "CLAIMS_HISTORY__HMAC_KEY"}
    assert secret_env == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_is_pinned(rendered: dict[str, Rendered], overlay: str) -> None:
    image = rendered[overlay].container["image"]
    name, _, tag = image.rpartition(":")
    assert name.endswith(APP), image
    assert "/" not in tag, f"{image} has no tag"
    assert tag not in ("", "latest"), image
