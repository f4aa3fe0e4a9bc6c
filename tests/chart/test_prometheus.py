"""The bundled Prometheus: its rendered config passes `promtool check config` (with the
Kubernetes discovery block swapped for static targets: Debian's promtool has no Kubernetes
discovery), and the rules it loads, the rules file of the chart, pass `promtool check
rules` and are the file itself, byte for byte; the PrometheusRule carries the same groups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CHART, NAMESPACE, RULES, Rendered, rendered_sets, run

BUNDLED = [name for name, r in rendered_sets().items() if r.of_kind("Deployment") and any(
    d["metadata"]["name"].endswith("-prometheus") for d in r.of_kind("Deployment"))]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool not found: `make test-chart` installs it (make prometheus; apt, root only)")
    return found


def config_of(r: Rendered) -> dict:
    (cm,) = [c for c in r.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-prometheus")]
    return yaml.safe_load(cm["data"]["prometheus.yml"])


def rules_of(r: Rendered) -> dict[str, str]:
    (cm,) = [c for c in r.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-prometheus-rules")]
    return cm.get("data") or {}


def test_rules_file_is_there() -> None:
    assert RULES.is_file(), f"{RULES} is missing: the chart's rules come from it"
    assert RULES.read_text().strip(), f"{RULES} is empty"


def test_kubernetes_discovery_is_the_release_namespace(default: Rendered) -> None:
    config = config_of(default)
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd == {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
    assert job["honor_labels"] is True
    relabel = job["relabel_configs"]
    assert relabel[0] == {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "regex": "true",
        "action": "keep",
    }
    targets = {r.get("target_label") for r in relabel}
    # job is the component; namespace and pod as the rules and dashboards expect.
    assert {"job", "namespace", "pod", "__metrics_path__"} <= targets
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


@pytest.mark.parametrize("name", BUNDLED)
def test_promtool_check_config(name: str, tmp_path: Path) -> None:
    r = rendered_sets()[name]
    config = config_of(r)
    for job in config["scrape_configs"]:
        if "kubernetes_sd_configs" in job:
            del job["kubernetes_sd_configs"]
            job["static_configs"] = [{"targets": ["127.0.0.1:9100"]}]
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for file, text in rules_of(r).items():
        (rules_dir / file).write_text(text)
    config["rule_files"] = [str(rules_dir / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run(promtool(), "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    if rules_of(r):
        assert "rule files found" in result.stdout + result.stderr


def test_promtool_check_rules(default: Rendered, tmp_path: Path) -> None:
    rules = rules_of(default)
    assert list(rules) == ["loopscope.rules.yml"]
    path = tmp_path / "loopscope.rules.yml"
    path.write_text(rules["loopscope.rules.yml"])
    result = run(promtool(), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_bundled_rules_are_the_file_byte_for_byte(default: Rendered) -> None:
    assert rules_of(default)["loopscope.rules.yml"].encode() == RULES.read_bytes()


def test_prometheus_rule_has_the_file_groups(sets: dict[str, Rendered]) -> None:
    (rule,) = sets["kube-prometheus-stack"].of_kind("PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_rules_reach_the_chart_through_its_symlink() -> None:
    link = CHART / "rules"
    assert link.is_symlink() and str(link.readlink()) == "../../deploy/prometheus/rules"
    assert (link / "loopscope.rules.yml").resolve() == RULES.resolve()


def test_prometheus_pod(default: Rendered) -> None:
    spec = default.get("Deployment", "loopscope-prometheus")["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "loopscope-prometheus"
    (c,) = pod["containers"]
    assert "--config.file=/etc/prometheus/config/prometheus.yml" in c["args"]
    assert "--storage.tsdb.retention.time=2d" in c["args"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/prometheus/rules"]]["configMap"]["name"] == "loopscope-prometheus-rules"
    assert volumes[mounts["/prometheus"]]["emptyDir"]["sizeLimit"] == "2Gi"
    pvc = rendered_sets()["sentry-podmonitor-exposition"]
    pod = pvc.get("Deployment", "lab-prometheus")["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "lab-prometheus"
    assert pvc.get("PersistentVolumeClaim", "lab-prometheus")


def test_prometheus_test_pod_checks_every_job(default: Rendered) -> None:
    pod = default.get("Pod", "loopscope-test-prometheus")
    script = pod["spec"]["containers"][0]["command"][2]
    for job in ("gateway", "worker-async", "worker-threadpool", "backend", "loadgen", "prometheus"):
        assert f"min%28up%7Bjob%3D%22{job}%22%7D%29+%3D%3D+1" in script, job
    assert "/api/v1/rules" in script
