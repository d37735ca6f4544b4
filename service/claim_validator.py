"""The claim.submitted validator for configured limits, as fast as the model's own.

The models declare the default limits (so the published schema states them). Other limits are
the same core schema with other maxLength / maxItems numbers, compiled once per `Limits`. The
schema names a subclass of each model and dataclass, with no validator of its own: pydantic-core
reuses a complete class's own validator, which would bring the default limits back. Decoded
events are instances of those subclasses, so they are still `ClaimSubmitted`, `Claim`, ...
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator

from service.limits import Limits
from service.models.events import ClaimSubmitted

__all__ = ["claim_validator"]

_LIST_LIMITS = {
    "service_lines": "max_service_lines",
    "diagnosis_codes": "max_diagnosis_codes",
    "modifiers": "max_codes_per_line",
    "diagnosis_pointers": "max_codes_per_line",
}
"""Field name -> the `Limits` attribute bounding its item count."""

_Classes = dict[type[Any], type[Any]]


@lru_cache(maxsize=8)
def claim_validator(limits: Limits) -> SchemaValidator:
    """Validates claim.submitted JSON like `ClaimSubmitted`, within `limits` (a pure function)."""
    classes: _Classes = {}
    schema = _with_limits(ClaimSubmitted.__pydantic_core_schema__, limits, None, classes)
    return SchemaValidator(schema)


def _with_limits(node: object, limits: Limits, field: str | None, classes: _Classes) -> Any:
    """A copy of the core schema `node` with `limits` in place of the declared numbers."""
    if isinstance(node, list):
        return [_with_limits(item, limits, field, classes) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "model-fields":
        fields = {
            name: _with_limits(f, limits, name, classes) for name, f in node["fields"].items()
        }
        return {**node, "fields": fields}
    if node.get("type") == "dataclass-field":
        return {**node, "schema": _with_limits(node["schema"], limits, node["name"], classes)}
    out = {key: _with_limits(value, limits, field, classes) for key, value in node.items()}
    kind = node.get("type")
    if kind in ("model", "dataclass"):
        out["cls"] = _deferred(node["cls"], classes)
    elif kind == "str" and "max_length" in node:
        out["max_length"] = limits.max_string_length
    elif kind == "tuple" and field in _LIST_LIMITS:
        out["max_length"] = getattr(limits, _LIST_LIMITS[field])
    elif kind == "int" and field == "line_number":
        out["le"] = limits.max_service_lines
    return out


def _deferred(cls: type[Any], classes: _Classes) -> type[Any]:
    if cls not in classes:
        attrs: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        if issubclass(cls, BaseModel):
            attrs["model_config"] = {**cls.model_config, "defer_build": True}
        else:
            attrs["__slots__"] = ()  # a dataclass's subclass: no validator in its own __dict__
        classes[cls] = type(cls.__name__, (cls,), attrs)
    return classes[cls]
