"""Shared by the chart tests: the chart rendered with Helm's own library (helm-python-sdk,
Helm v4's Go SDK; no helm binary, no cluster) for every value set, once per session.

A value set is a file of helm/loopscope/ci/ (the cases `helm lint` and chart-testing use)
or deploy/kind-values.yaml (what `make deploy` installs). Rendering is fast (tens of ms a
set), so it happens at import: tests are parametrized by what the chart renders.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "loopscope"
DASHBOARDS = ROOT / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "loopscope.rules.yml"
RELEASE = "loopscope"
NAMESPACE = "loopscope"
VENV_BIN = Path(sys.executable).parent

# The loopscope services: values key -> component (resource suffix, label, Prometheus job).
SERVICES = {
    "gateway": "gateway",
    "workerAsync": "worker-async",
    "workerThreadpool": "worker-threadpool",
    "backend": "backend",
    "loadgen": "loadgen",
}

# Kinds that are CRDs: kubernetes-validate has no schema for them.
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "HTTPRoute", "CiliumNetworkPolicy"}

helm.disable_logging()


def value_set_files() -> dict[str, Path]:
    sets = {p.stem.removesuffix("-values"): p for p in sorted((CHART / "ci").glob("*.yaml"))}
    sets["kind"] = ROOT / "deploy" / "kind-values.yaml"
    return sets


def load_values(path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text()) or {}
    if path.name == "kind-values.yaml":
        # As the Makefile's deploy target sets it.
        values.setdefault("image", {})["tag"] = "dev-0123456789ab"
    return values


@dataclass
class Rendered:
    name: str
    values: dict[str, Any]
    manifests: dict[str, str]
    docs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notes(self) -> str:
        return next((v for k, v in self.manifests.items() if k.endswith("NOTES.txt")), "")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} {name}; have {sorted(self.names(kind))}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.of_kind(kind)}

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(label, pod metadata, pod spec) of every pod this set creates."""
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                t = d["spec"]["template"]
                yield f"{d['kind']}/{d['metadata']['name']}", t["metadata"], t["spec"]
            elif d["kind"] == "Pod":
                yield f"Pod/{d['metadata']['name']}", d["metadata"], d["spec"]


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render(values: dict[str, Any] | None = None, name: str = "adhoc", release: str = RELEASE) -> Rendered:
    manifests = chart().render(values=values or {}, name=release, namespace=NAMESPACE)
    r = Rendered(name=name, values=values or {}, manifests=manifests)
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                r.docs.append(doc)
    return r


@functools.cache
def rendered_sets() -> dict[str, Rendered]:
    return {name: render(load_values(path), name) for name, path in value_set_files().items()}


@pytest.fixture(scope="session")
def sets() -> dict[str, Rendered]:
    return rendered_sets()


@pytest.fixture(scope="session")
def default() -> Rendered:
    return rendered_sets()["default"]


@pytest.fixture(scope="session")
def manifests_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every rendered object in a file of its own: <dir>/<value set>/<n>-<kind>-<name>.yaml."""
    out = tmp_path_factory.mktemp("rendered")
    for name, r in rendered_sets().items():
        d = out / name
        d.mkdir()
        for i, doc in enumerate(r.docs, 1):
            path = d / f"{i:03d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def tool(name: str) -> str:
    """A tool from the venv (kubernetes-validate, checkov, hadolint) or PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run the tests with `make test-chart`, which installs it")
    return found


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **kwargs.pop("env", {})}
    return subprocess.run(args, capture_output=True, text=True, env=env, **kwargs)


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom dict."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))
