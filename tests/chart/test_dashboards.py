"""The dashboards inside the rendered chart are grafana/dashboards, byte for byte: the chart
reaches them through a symlink (Helm follows it), never a copy. Checked for the bundled
Grafana's ConfigMap and for the sidecar's ConfigMaps (kube-prometheus-stack)."""

from __future__ import annotations

import json

import yaml

from conftest import CHART, DASHBOARDS, ROOT, Rendered, container_env, dashboard_files


def test_dashboards_reach_the_chart_through_its_symlink() -> None:
    link = CHART / "dashboards"
    assert link.is_symlink() and str(link.readlink()) == "../../grafana/dashboards"
    assert link.resolve() == DASHBOARDS.resolve()


def test_there_are_dashboards() -> None:
    files = dashboard_files()
    assert files, f"no dashboard in {DASHBOARDS}"
    for f in files:
        json.loads(f.read_bytes())


def test_bundled_grafana_dashboards_are_byte_identical(default: Rendered) -> None:
    cm = default.get("ConfigMap", "loopscope-grafana-dashboards")
    data = cm.get("data") or {}
    assert sorted(data) == [f.name for f in dashboard_files()]
    for f in dashboard_files():
        assert data[f.name].encode() == f.read_bytes(), f.name
    # A ConfigMap holds at most 1 MiB.
    assert sum(len(v.encode()) for v in data.values()) < 1_000_000


def test_sidecar_dashboards_are_byte_identical_one_per_configmap(sets: dict[str, Rendered]) -> None:
    r = sets["kube-prometheus-stack"]
    cms = [c for c in r.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    by_file = {}
    for cm in cms:
        (name,) = cm["data"]
        by_file[name] = cm["data"][name]
    assert sorted(by_file) == [f.name for f in dashboard_files()]
    for f in dashboard_files():
        assert by_file[f.name].encode() == f.read_bytes(), f.name


def test_grafana_is_provisioned_with_them(default: Rendered) -> None:
    cm = default.get("ConfigMap", "loopscope-grafana")
    (datasource,) = yaml.safe_load(cm["data"]["datasources.yaml"])["datasources"]
    assert datasource["uid"] == "prometheus"
    # The provisioning files of grafana/provisioning, byte for byte (the local stack and
    # deploy/compose.yaml read the same ones); Grafana fills in $LOOPSCOPE_* from its env.
    provisioning = ROOT / "grafana" / "provisioning"
    assert cm["data"]["datasources.yaml"] == (provisioning / "datasources" / "loopscope.yml").read_text()
    assert cm["data"]["dashboards.yaml"] == (provisioning / "dashboards" / "loopscope.yml").read_text()
    (provider,) = yaml.safe_load(cm["data"]["dashboards.yaml"])["providers"]
    pod = default.get("Deployment", "loopscope-grafana")["spec"]["template"]["spec"]
    env = container_env(pod["containers"][0])
    assert datasource["url"] == "$LOOPSCOPE_PROMETHEUS_URL"
    assert env["LOOPSCOPE_PROMETHEUS_URL"] == "http://loopscope-prometheus:9090"
    assert datasource["jsonData"]["timeInterval"] == "$LOOPSCOPE_SCRAPE_INTERVAL"
    assert env["LOOPSCOPE_SCRAPE_INTERVAL"] == "15s"
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert provider["options"]["path"] == "$LOOPSCOPE_DASHBOARDS"
    path = env["LOOPSCOPE_DASHBOARDS"]
    assert volumes[mounts[path]]["configMap"]["name"] == "loopscope-grafana-dashboards"
    assert volumes[mounts["/etc/grafana/provisioning/dashboards"]]["configMap"]["items"] == [
        {"key": "dashboards.yaml", "path": "dashboards.yaml"}
    ]
    # Read-only root filesystem: Grafana writes to emptyDirs only.
    for writable in ("/var/lib/grafana", "/tmp", "/var/log/grafana"):
        assert "emptyDir" in volumes[mounts[writable]], writable


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(f.read_bytes()).get("uid") for f in dashboard_files()]
    assert len(set(uids)) == len(uids), uids


def test_packaged_chart_carries_the_real_files(tmp_path) -> None:
    """`helm package` follows the links too: the archive has the files, not links."""
    import tarfile

    from conftest import RULES, chart

    archive = chart().save(tmp_path)
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for f in dashboard_files():
            m = members[f"loopscope/dashboards/{f.name}"]
            assert m.isfile(), m.name
            assert tar.extractfile(m).read() == f.read_bytes(), f.name
        rules = members["loopscope/rules/loopscope.rules.yml"]
        assert rules.isfile() and tar.extractfile(rules).read() == RULES.read_bytes()
