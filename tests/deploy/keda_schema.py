"""JSON Schemas for the two KEDA custom resources the manifests use.

KEDA's ScaledObject and TriggerAuthentication are CRDs, so the Kubernetes schemas shipped by
kubernetes-validate do not cover them, and no PyPI package ships KEDA's CRD schema. These schemas
are written here, from KEDA's documentation (keda.sh/v1alpha1, KEDA 2.x, Apache Kafka scaler),
for exactly the fields this project uses or may plausibly use, and they are closed
(`additionalProperties: false`) so that a misspelt field fails instead of being ignored by the
operator. The Kafka trigger's metadata is closed too, and every metadata value must be a string:
the CRD types metadata as map[string]string, so an unquoted `lagThreshold: 50` would be rejected
by the API server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KAFKA_TRIGGER_METADATA", "SCALED_OBJECT", "TRIGGER_AUTHENTICATION"]

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_DIGITS = {"type": "string", "pattern": r"^[0-9]+$"}
_BOOL_STRING = {"enum": ["true", "false"]}

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "namespace": _NAME,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}

KAFKA_TRIGGER_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
    "properties": {
        "bootstrapServers": {"type": "string", "pattern": r"^[^,\s]+:[0-9]+(,[^,\s]+:[0-9]+)*$"},
        "consumerGroup": {"type": "string", "minLength": 1},
        "topic": {"type": "string", "minLength": 1},
        "lagThreshold": _DIGITS,
        "activationLagThreshold": _DIGITS,
        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
        "allowIdleConsumers": _BOOL_STRING,
        "scaleToZeroOnInvalidOffset": _BOOL_STRING,
        "excludePersistentLag": _BOOL_STRING,
        "limitToPartitionsWithLag": _BOOL_STRING,
        "ensureEvenDistributionOfPartitions": _BOOL_STRING,
        "partitionLimitation": {"type": "string"},
        "version": {"type": "string"},
        "sasl": {
            "enum": ["none", "plaintext", "scram_sha256", "scram_sha512", "gssapi", "oauthbearer"]
        },
        "tls": {"enum": ["enable", "disable"]},
        "unsafeSsl": _BOOL_STRING,
    },
    "additionalProperties": False,
}

_TRIGGER: dict[str, Any] = {
    "type": "object",
    "required": ["type", "metadata"],
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _NAME,
                "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "kafka"}}},
            "then": {"properties": {"metadata": KAFKA_TRIGGER_METADATA}},
        }
    ],
}

SCALED_OBJECT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "keda.sh/v1alpha1 ScaledObject (fields used by claims-validator)",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": _NAME,
                        "envSourceContainerName": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "properties": {
                        "failureThreshold": {"type": "integer", "minimum": 1},
                        "replicas": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
                "advanced": {
                    "type": "object",
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                # An autoscaling/v2 HorizontalPodAutoscalerBehavior: the test
                                # validates it with the Kubernetes HPA schema.
                                "behavior": {"type": "object"},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
                "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

TRIGGER_AUTHENTICATION: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "keda.sh/v1alpha1 TriggerAuthentication (secretTargetRef only)",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            # Only references to Secrets: a literal credential has nowhere to go.
            "required": ["secretTargetRef"],
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "properties": {
                            "parameter": {
                                "enum": [
                                    "sasl",
                                    "username",
                                    "password",
                                    "tls",
                                    "ca",
                                    "cert",
                                    "key",
                                    "keyPassword",
                                ]
                            },
                            "name": _NAME,
                            "key": {"type": "string", "minLength": 1},
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
