"""Every rendered object validates against the official OpenAPI schemas of every Kubernetes
version from 1.29 to the newest kubernetes-validate ships (strict: an unknown field fails),
and the NetworkPolicies allow exactly the flows the stack needs."""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from conftest import CRD_KINDS, Rendered, render, run, tool

OLDEST = Version("1.29")
VERSIONS = [v for v in all_versions() if Version(v) >= OLDEST]


def test_versions_span_1_29_to_the_newest() -> None:
    assert VERSIONS[0].startswith("1.29.")
    assert VERSIONS[-1] == all_versions()[-1]
    assert len(VERSIONS) >= 8


@pytest.fixture(scope="module")
def validations(manifests_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """One kubernetes-validate process per version, over every value set's files, as many
    at once as there are CPUs (each takes seconds: it parses the version's schemas)."""
    files = sorted(str(p) for p in manifests_dir.glob("*/*.yaml"))
    validate = tool("kubernetes-validate")

    def one(version: str) -> subprocess.CompletedProcess[str]:
        return run(validate, "--strict", "-k", version, "--quiet", *files)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(VERSIONS, pool.map(one, VERSIONS)))


@pytest.mark.parametrize("version", VERSIONS)
def test_kubernetes_validate_strict(version: str, validations: dict) -> None:
    result = validations[version]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("WARN")]
    # CRDs (the operator's monitors and rules, the Gateway API's HTTPRoute) have no
    # schema here: a warning, and only for those kinds.
    unexpected_warnings = [
        line for line in lines if line.startswith("WARN") and not any(f"kind {k} " in line for k in CRD_KINDS)
    ]
    assert result.returncode == 0 and not errors, "\n".join(lines)
    assert not unexpected_warnings, "\n".join(unexpected_warnings)


def test_validation_catches_unknown_fields(tmp_path: Path) -> None:
    """The check above can fail: a misspelled field is an error."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: 80, targetPrt: 8080}]}\n"
    )
    result = run(tool("kubernetes-validate"), "--strict", "-k", VERSIONS[0], "--quiet", str(bad))
    assert result.returncode != 0 and "targetPrt" in result.stdout + result.stderr


def test_prestop_sleep_validates(tmp_path: Path) -> None:
    """common.preStopSleepSeconds (off by default) renders the sleep action. Its field is
    in every schema from 1.29, but the API serves it from 1.30 (the template fails below
    1.30, which only a real install can show: render sees Kubernetes 1.36)."""
    r = render({"common": {"preStopSleepSeconds": 5}})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(r.get("Deployment", "loopscope-gateway")))
    result = run(tool("kubernetes-validate"), "--strict", "-k", VERSIONS[-1], "--quiet", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- NetworkPolicy: a small evaluator over the rendered policies -------------------------


def selects(selector: dict, labels: dict) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def peer_matches(peer: dict, labels: dict) -> bool:
    # Same-namespace pods only: a namespaceSelector names another namespace here.
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    return selects(peer["podSelector"], labels)


def port_matches(ports: list | None, port: int, named: dict[str, int]) -> bool:
    if not ports:
        return True
    for p in ports:
        want = p.get("port")
        if want is None or want == port or (isinstance(want, str) and named.get(want) == port):
            return True
    return False


class Cluster:
    def __init__(self, r: Rendered) -> None:
        self.pods: dict[str, tuple[dict, dict[str, int]]] = {}
        for _label, meta, spec in r.pod_specs():
            component = meta["labels"]["app.kubernetes.io/component"]
            named = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
            self.pods[component] = (meta["labels"], named)
        self.policies = r.of_kind("NetworkPolicy")

    def allowed(self, src: str, dst: str, port: int | str) -> bool:
        src_labels, _ = self.pods[src]
        dst_labels, dst_ports = self.pods[dst]
        number = dst_ports[port] if isinstance(port, str) else port
        egress = [p for p in self.policies if selects(p["spec"]["podSelector"], src_labels)]
        egress = [p for p in egress if "Egress" in p["spec"]["policyTypes"]]
        if egress and not any(
            port_matches(rule.get("ports"), number, {})
            and (not rule.get("to") or any(peer_matches(t, dst_labels) for t in rule["to"]))
            for p in egress
            for rule in p["spec"].get("egress", [])
        ):
            return False
        ingress = [p for p in self.policies if selects(p["spec"]["podSelector"], dst_labels)]
        ingress = [p for p in ingress if "Ingress" in p["spec"]["policyTypes"]]
        return not ingress or any(
            port_matches(rule.get("ports"), number, dst_ports)
            and (not rule.get("from") or any(peer_matches(f, src_labels) for f in rule["from"]))
            for p in ingress
            for rule in p["spec"].get("ingress", [])
        )

    def dns_allowed(self, src: str) -> bool:
        labels, _ = self.pods[src]
        return any(
            any(p.get("port") == 53 and p.get("protocol") == "UDP" for p in rule.get("ports", []))
            for policy in self.policies
            if selects(policy["spec"]["podSelector"], labels)
            for rule in policy["spec"].get("egress", [])
        )


APP = ["gateway", "worker-async", "worker-threadpool", "backend", "loadgen"]
FLOWS = {
    ("loadgen", "gateway", "http"),
    ("test", "gateway", "http"),
    ("gateway", "worker-async", "http"),
    ("gateway", "worker-threadpool", "http"),
    ("worker-async", "backend", "http"),
    ("worker-threadpool", "backend", "http"),
    ("grafana", "prometheus", "http"),
    ("test", "prometheus", "http"),
} | {("prometheus", c, "admin") for c in APP}


def test_network_policies_allow_what_flows_and_nothing_else(default: Rendered) -> None:
    cluster = Cluster(default)
    assert set(cluster.pods) == set(APP) | {"prometheus", "grafana", "test"}
    for src in cluster.pods:
        for dst in cluster.pods:
            if dst == "test" or src == dst:
                continue
            for port in cluster.pods[dst][1]:
                want = (src, dst, port) in FLOWS
                assert cluster.allowed(src, dst, port) == want, f"{src} -> {dst}:{port} should be {want}"
    for component in set(APP) | {"grafana", "test"}:
        assert cluster.dns_allowed(component), component
    # Prometheus scrapes by pod IP and reaches the API by its Service IP: no DNS needed.
    assert not cluster.dns_allowed("prometheus")


def test_network_policies_with_mounted_metrics_and_sentry(sets: dict[str, Rendered]) -> None:
    r = sets["sentry-podmonitor-exposition"]
    cluster = Cluster(r)
    # Mounted: Prometheus scrapes the app port, which is otherwise the gateway's alone.
    assert cluster.allowed("prometheus", "worker-async", "http")
    assert cluster.allowed("gateway", "worker-async", "http")
    assert not cluster.allowed("loadgen", "worker-async", "http")
    assert cluster.allowed("prometheus", "worker-threadpool", "admin")
    # Sentry: egress on 443 to anywhere, for the services only.
    for component in APP:
        policy = r.get("NetworkPolicy", f"lab-{component}")
        assert {"ipBlock": {"cidr": "0.0.0.0/0"}} in [t for e in policy["spec"]["egress"] for t in e["to"]]
    grafana = r.get("NetworkPolicy", "lab-grafana")
    assert not [t for e in grafana["spec"]["egress"] for t in e["to"] if "ipBlock" in t]


def test_gateway_from_narrows_the_public_entry(sets: dict[str, Rendered]) -> None:
    cluster = Cluster(sets["hpa-ingress"])
    assert cluster.allowed("loadgen", "gateway", "http")
    assert cluster.allowed("test", "gateway", "http")
    assert not cluster.allowed("backend", "gateway", "http")


def test_prometheus_rbac_is_namespaced_and_read_only(default: Rendered) -> None:
    (role,) = default.of_kind("Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    (binding,) = default.of_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "loopscope-prometheus", "namespace": "loopscope"}
    ]
    assert not default.of_kind("ClusterRole") and not default.of_kind("ClusterRoleBinding")


def test_every_crd_object_is_well_formed(sets: dict[str, Rendered]) -> None:
    """No schema for CRDs offline: check the fields the operator and Gateway API require."""
    for r in sets.values():
        for doc in r.docs:
            if doc["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
                assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            if doc["kind"] in ("ServiceMonitor", "PodMonitor"):
                endpoints = doc["spec"]["endpoints" if doc["kind"] == "ServiceMonitor" else "podMetricsEndpoints"]
                for e in endpoints:
                    assert set(e) <= {
                        "port", "path", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings"
                    }
                    assert re.fullmatch(r"[0-9]+[smh]", e["interval"])
            if doc["kind"] == "PrometheusRule":
                for group in doc["spec"]["groups"]:
                    assert group["name"] and group["rules"]
            if doc["kind"] == "HTTPRoute":
                assert doc["apiVersion"] == "gateway.networking.k8s.io/v1"
                assert doc["spec"]["parentRefs"]
