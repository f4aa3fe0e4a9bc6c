"""ServiceMonitor, PodMonitor and PrometheusRule against the prometheus-operator CRD schemas,
as the pydantic models PyPI `cloudcoil-models-prometheus-operator` generates from them: types,
enums, patterns (durations) and required fields by validation; unknown fields (which the
models accept and keep) by walking every key of the rendered object through the models'
declared fields. A negative control for each."""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import pytest
from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule, ServiceMonitor
from pydantic import BaseModel, ValidationError

from conftest import rendered_sets

MODELS: dict[str, type[BaseModel]] = {
    "ServiceMonitor": ServiceMonitor,
    "PodMonitor": PodMonitor,
    "PrometheusRule": PrometheusRule,
}


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (Optional, list, Annotated, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += models_in(arg)
    return out


def is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, typing.Dict):
        return True
    if origin in (typing.Union, types.UnionType, typing.Annotated, list, typing.List):
        return any(is_mapping(a) for a in typing.get_args(annotation))
    return False


def unknown_keys(model: type[BaseModel], data: Any, path: str = "") -> list[str]:
    """Keys of data (and of its nested objects) that the model does not declare."""
    if isinstance(data, list):
        return [k for i, item in enumerate(data) for k in unknown_keys(model, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    fields = {}
    for name, info in model.model_fields.items():
        fields[info.alias or name] = info
        fields[name] = info
    out = []
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            out.append(f"{path}.{key}")
            continue
        if is_mapping(info.annotation):
            continue  # labels, annotations: free keys
        for sub in models_in(info.annotation)[:1]:
            out += unknown_keys(sub, value, f"{path}.{key}")
    return out


def check(doc: dict) -> None:
    model = MODELS[doc["kind"]]
    model.model_validate(doc)  # raises on a bad type, enum, pattern, missing field
    unknown = unknown_keys(model, doc)
    assert not unknown, f"{doc['kind']} {doc['metadata']['name']}: unknown fields {unknown}"


OPERATOR_DOCS = [
    pytest.param(doc, id=f"{name}:{doc['kind']}/{doc['metadata']['name']}")
    for name, r in rendered_sets().items()
    for doc in r.docs
    if doc["kind"] in MODELS
]


def test_every_operator_kind_is_rendered_somewhere() -> None:
    assert {p.values[0]["kind"] for p in OPERATOR_DOCS} == set(MODELS)


@pytest.mark.parametrize("doc", OPERATOR_DOCS)
def test_operator_objects_match_the_crds(doc: dict) -> None:
    check(doc)


def first(kind: str) -> dict:
    return copy.deepcopy(next(p.values[0] for p in OPERATOR_DOCS if p.values[0]["kind"] == kind))


def test_a_bad_duration_is_rejected() -> None:
    doc = first("ServiceMonitor")
    doc["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(ValidationError, match="interval"):
        check(doc)


def test_a_bad_type_is_rejected() -> None:
    doc = first("PodMonitor")
    doc["spec"]["podMetricsEndpoints"][0]["honorLabels"] = "sometimes"
    with pytest.raises(ValidationError, match="honorLabels"):
        check(doc)


@pytest.mark.parametrize(
    "kind, where",
    [
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0]),
        ("PodMonitor", lambda d: d["spec"]),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0]),
    ],
)
def test_an_unknown_field_is_reported(kind: str, where: Any) -> None:
    """The models accept unknown fields silently; the key walk does not."""
    doc = first(kind)
    where(doc)["honorLabel"] = True
    MODELS[kind].model_validate(doc)  # the models alone let it through
    with pytest.raises(AssertionError, match="honorLabel"):
        check(doc)
