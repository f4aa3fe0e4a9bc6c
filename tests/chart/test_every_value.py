"""Every value the schema accepts changes what the chart renders (or the schema rejects it):
no setting is silently ignored, as prometheus.service.annotations once was.

For each leaf of values.yaml: render with a context that makes the value matter (Sentry on
for sentry.*, the Ingress on for ingress.*, ...), then again with the value changed to
another one the schema accepts, and compare every rendered file (NOTES.txt included)."""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

import pytest
import yaml

from conftest import CHART, NAMESPACE, RELEASE, chart

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DSN = "https://public@o0.ingest.sentry.io/0"
SERVICES = ("gateway", "workerAsync", "workerThreadpool", "backend", "loadgen")

# Objects changed as a whole (their members are Kubernetes' fields, not the chart's).
WHOLE = {"resources", "podSecurityContext", "containerSecurityContext", "affinity"}

# Values that only matter when another one is set: (path pattern, values to merge first).
CONTEXTS: list[tuple[str, dict[str, Any]]] = [
    (r"sentry\.(environment|tracesSampleRate|timeoutMs|stallReportIntervalSecs)", {"sentry": {"dsn": DSN}}),
    (r"sentry\.existingSecretKey", {"sentry": {"existingSecret": "dsn-secret"}}),
    (r"networkPolicy\.sentry\..*", {"sentry": {"dsn": DSN}}),
    (r"ingress\.(?!enabled$).*", {"ingress": {"enabled": True}}),
    (r"httpRoute\.(?!enabled$).*", {"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}}),
    (r"httpRoute\.enabled", {"httpRoute": {"parentRefs": [{"name": "gw"}]}}),
    (r"prometheus\.enabled", {"grafana": {"prometheusUrl": "http://prometheus.monitoring:9090"}}),
    (r"serviceMonitor\.(?!enabled$).*", {"serviceMonitor": {"enabled": True}}),
    (r"podMonitor\.(?!enabled$).*", {"podMonitor": {"enabled": True}}),
    (r"prometheusRule\.(?!enabled$).*", {"prometheusRule": {"enabled": True}}),
    (r"grafanaDashboards\.(?!enabled$).*", {"grafanaDashboards": {"enabled": True}}),
    (r"prometheus\.persistence\.(size|storageClassName)", {"prometheus": {"persistence": {"enabled": True}}}),
    (r"grafana\.admin\.(userKey|passwordKey)", {"grafana": {"admin": {"password": "pw"}}}),
    (r"networkPolicy\.apiServer\.cidrs", {"networkPolicy": {"apiServer": {"mode": "cidrs"}}}),
] + [
    (rf"{s}\.service\.nodePort", {s: {"service": {"type": "NodePort"}}}) for s in ("gateway", "prometheus", "grafana")
] + [(rf"{s}\.autoscaling\.(?!enabled$).*", {s: {"autoscaling": {"enabled": True}}}) for s in SERVICES]

PEER = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}]
RULE = [{"ports": [{"port": 8443, "protocol": "TCP"}]}]
RELABEL = [{"action": "labeldrop", "regex": "pod_template_hash"}]

# New values that the generic rules below cannot guess.
NEW: dict[str, Any] = {
    "nameOverride": "ls",
    "fullnameOverride": "ls-full",
    "image.tag": "9.9.9",
    "image.digest": "sha256:" + "b" * 64,
    "prometheus.image.digest": "sha256:" + "c" * 64,
    "grafana.image.digest": "sha256:" + "d" * 64,
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount.name": "custom",
    "common.tolerations": [{"key": "lab", "operator": "Exists"}],
    "common.topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "common.priorityClassName": "high",
    "common.podDisruptionBudget.maxUnavailable": "50%",
    "sentry.dsn": DSN,
    "sentry.existingSecret": "dsn-secret",
    "loadgen.mix": "1:/api/compare?kind=io&ms=5",
    "loadgen.requestTimeout": "42s",
    "grafana.admin.password": "pw",
    "grafana.admin.existingSecret": "grafana-admin",
    "grafana.prometheusUrl": "http://prometheus.monitoring:9090",
    "grafana.ini": {"server": {"domain": "grafana.example.com"}},
    "prometheus.externalLabels": {"cluster": "lab"},
    "prometheus.extraArgs": ["--log.level=debug"],
    "prometheus.retentionSize": "2GB",
    "prometheus.persistence.storageClassName": "fast",
    "prometheus.tolerations": [{"key": "lab", "operator": "Exists"}],
    "grafana.tolerations": [{"key": "lab", "operator": "Exists"}],
    "networkPolicy.gatewayFrom": PEER,
    "networkPolicy.grafanaFrom": PEER,
    "networkPolicy.prometheusFrom": PEER,
    "networkPolicy.metricsFrom": PEER,
    "networkPolicy.dns.to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
    "networkPolicy.dns.ports": [53, 5353],
    "networkPolicy.apiServer.cidrs": ["10.96.0.1/32"],
    "networkPolicy.apiServer.ports": [6443],
    "networkPolicy.sentry.cidrs": ["203.0.113.0/24"],
    "networkPolicy.sentry.ports": [8443],
    "networkPolicy.extraIngress": {"gateway": RULE},
    "networkPolicy.extraEgress": {"grafana": RULE},
    "ingress.className": "nginx",
    "ingress.hosts": [{"host": "lab.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
    "ingress.tls": [{"secretName": "tls", "hosts": ["loopscope.local"]}],
    "httpRoute.parentRefs": [{"name": "other"}],
    "httpRoute.hostnames": ["lab.example.com"],
    "serviceMonitor.relabelings": RELABEL,
    "serviceMonitor.metricRelabelings": RELABEL,
    "podMonitor.relabelings": RELABEL,
    "podMonitor.metricRelabelings": RELABEL,
    "serviceAccount.annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"},
}
for s in SERVICES:
    NEW[f"{s}.extraEnv"] = [{"name": "LAB", "value": "1"}]
NEW["common.extraEnv"] = [{"name": "LAB", "value": "1"}]
NEW["grafana.extraEnv"] = [{"name": "LAB", "value": "1"}]

# Schema keys that are not the chart's values.
NOT_VALUES = {"global"}


def leaves(values: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in WHOLE:
            out += leaves(value, f"{path}.")
        else:
            out.append((path, value))
    return out


def resolve(node: dict) -> dict:
    while "$ref" in node:
        node = functools.reduce(lambda n, k: n[k], node["$ref"].lstrip("#/").split("/"), SCHEMA)
    return node


def schema_of(path: str) -> dict:
    node = SCHEMA
    for key in path.split("."):
        node = resolve(node)["properties"][key]
    return resolve(node)


def changed(path: str, value: Any) -> Any:
    """Another value the schema accepts."""
    if path in NEW:
        return NEW[path]
    schema = schema_of(path)
    if "enum" in schema:
        return next(v for v in schema["enum"] if v != value)
    if isinstance(value, bool):
        return not value
    if value is None:  # nodePort
        return 30123
    if isinstance(value, (int, float)):
        maximum = schema.get("maximum")
        step = 1 if isinstance(value, int) and schema.get("type") != "number" else 0.25
        return value - step if maximum is not None and value + step > maximum else value + step
    if isinstance(value, str):
        if "pattern" in schema:
            for candidate in ("42s", "3m", "7d", "5GB"):
                if re.fullmatch(schema["pattern"], candidate) and candidate != value:
                    return candidate
        return value + "x" if value else "set"
    if isinstance(value, dict):
        if not value:
            return {"example.com/lab": "x"}
        new = copy.deepcopy(value)
        if "runAsUser" in new:
            new["runAsUser"] = 12345
        elif "requests" in new:
            new["requests"] = {"cpu": "1", "memory": "1Gi"}
        else:
            new["example"] = "x"
        return new
    raise AssertionError(f"{path}: no new value for {value!r}; add one to NEW")


def merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def nested(path: str, value: Any) -> dict:
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def context(path: str) -> dict:
    base: dict = {}
    for pattern, values in CONTEXTS:
        if re.fullmatch(pattern, path):
            base = merge(base, values)
    return base


LEAVES = leaves(VALUES)


def test_leaves_cover_the_values() -> None:
    paths = {p for p, _ in LEAVES}
    assert len(paths) > 120
    assert {"prometheus.service.annotations", "grafana.service.annotations", "openshift"} <= paths


@functools.cache
def rendered(values_json: str) -> dict[str, str]:
    # The text of each file: parsing it would triple the time, and text differs when objects do.
    return chart().render(values=json.loads(values_json), name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize("path, value", LEAVES, ids=[p for p, _ in LEAVES])
def test_value_changes_the_render(path: str, value: Any) -> None:
    base = context(path)
    new = changed(path, value)
    assert new != value
    before = rendered(json.dumps(base, sort_keys=True))
    after = rendered(json.dumps(merge(base, nested(path, new)), sort_keys=True))
    differs = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert differs, f"{path}: {value!r} -> {new!r} renders the same (with {base})"


def test_the_check_catches_an_ignored_value() -> None:
    """Negative control: a value no template reads (as prometheus.service.annotations was)
    renders the same, which the test above reports. Under `global`, which the schema lets
    through for parent charts and no template reads."""
    before = rendered(json.dumps({}))
    after = rendered(json.dumps({"global": {"ignored": "x"}}))
    assert before == after


def schema_leaves(node: dict, prefix: str = "") -> list[str]:
    node = resolve(node)
    props = node.get("properties")
    if node.get("type") != "object" or not props:
        return [prefix.rstrip(".")]
    out = []
    for key, child in props.items():
        out += schema_leaves(child, f"{prefix}{key}.")
    return out


def test_the_schema_accepts_nothing_values_yaml_does_not_have() -> None:
    """A key the schema accepts but values.yaml lacks would escape the test above."""
    value_paths = {p for p, _ in LEAVES}
    extra = []
    for path in schema_leaves(SCHEMA):
        if path.split(".")[0] in NOT_VALUES:
            continue
        covered = path in value_paths or any(path.startswith(p + ".") for p in value_paths)
        if not covered:
            extra.append(path)
    assert not extra, f"in values.schema.json, not in values.yaml: {extra}"
