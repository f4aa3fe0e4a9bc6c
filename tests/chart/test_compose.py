"""deploy/compose.yaml, the container path without a cluster: valid against the Compose
specification (docker-compose config, no engine needed; a broken copy fails), and the same
image, rules, Grafana provisioning and dashboards as the chart."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CHART, ROOT, SERVICES, Rendered, container_env, run

COMPOSE = ROOT / "deploy" / "compose.yaml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "compose" / "prometheus.yml"


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and run("docker", "compose", "version").returncode == 0:
        return ["docker", "compose"]
    pytest.fail("no docker-compose or `docker compose`: run the tests with `make test-chart`, which installs it")


def config(path: Path) -> tuple[int, str]:
    result = run(*compose_cli(), "-f", str(path), "config", "-q", cwd=str(path.parent))
    return result.returncode, result.stdout + result.stderr


def test_compose_file_is_valid() -> None:
    code, out = config(COMPOSE)
    assert code == 0, out


@pytest.mark.parametrize(
    "breakage",
    [
        ("depends_on: [prometheus]", "depends_on: 42"),  # a wrong type
        ("working_dir: /spotlight", "workdir: /spotlight"),  # an unknown key
        ('      - "127.0.0.1:8080:8080"', "      - {published: eighty}"),  # a bad port
    ],
)
def test_a_broken_compose_file_fails(tmp_path: Path, breakage: tuple[str, str]) -> None:
    """Negative control: the validation above can fail."""
    text = COMPOSE.read_text()
    assert breakage[0] in text
    broken = COMPOSE.parent / f".broken-{tmp_path.name}.yaml"
    try:
        broken.write_text(text.replace(breakage[0], breakage[1], 1))
        code, out = config(broken)
    finally:
        broken.unlink()
    assert code != 0, out


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def default_image(service: dict) -> str:
    m = re.fullmatch(r"\$\{LOOPSCOPE_IMAGE:-([^}]+)\}", service["image"])
    assert m, service["image"]
    return m.group(1)


def test_same_images_as_the_chart(compose: dict, default: Rendered) -> None:
    chart_images = {
        c["name"]: c["image"] for _, _, spec in default.pod_specs() for c in spec["containers"]
    }
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    loopscope = f"{values['image']['repository']}:{chart['appVersion']}"
    for component in SERVICES.values():
        assert default_image(compose["services"][component]) == loopscope == chart_images[component]
    assert compose["services"]["prometheus"]["image"] == chart_images["prometheus"]
    assert compose["services"]["grafana"]["image"] == chart_images["grafana"]


def mounts(service: dict) -> dict[str, Path]:
    """container path -> host path (resolved from deploy/)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (COMPOSE.parent / source).resolve()
    return out


def test_same_rules_provisioning_and_dashboards_as_the_chart(compose: dict, default: Rendered) -> None:
    prometheus = mounts(compose["services"]["prometheus"])
    assert prometheus["/etc/prometheus/rules"] == (CHART / "rules").resolve()
    assert prometheus["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    grafana = compose["services"]["grafana"]
    volumes = mounts(grafana)
    assert volumes["/etc/grafana/provisioning"] == (CHART / "provisioning").resolve()
    env = grafana["environment"]
    assert volumes[env["LOOPSCOPE_DASHBOARDS"]] == (CHART / "dashboards").resolve()
    # Every variable the provisioning files read is set, here and in the chart.
    wanted = set()
    for f in (ROOT / "grafana" / "provisioning").rglob("*.yml"):
        wanted |= set(re.findall(r"\$\{?(LOOPSCOPE_[A-Z_]+)", f.read_text()))
    assert wanted == {"LOOPSCOPE_PROMETHEUS_URL", "LOOPSCOPE_SCRAPE_INTERVAL", "LOOPSCOPE_DASHBOARDS"}
    chart_env = container_env(default.get("Deployment", "loopscope-grafana")["spec"]["template"]["spec"]["containers"][0])
    assert wanted <= set(env) and wanted <= set(chart_env)
    assert env["LOOPSCOPE_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert env["LOOPSCOPE_SCRAPE_INTERVAL"] == yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]


def test_prometheus_scrapes_every_service_as_the_chart_names_its_jobs(compose: dict) -> None:
    result = run("promtool", "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES.values()) | {"prometheus"}
    for component in SERVICES.values():
        assert jobs[component] == [f"{component}:9100"]
        env = compose["services"][component]["environment"]
        assert env["LOOPSCOPE_ADMIN_PORT"] == "9100"


def test_services_call_each_other_by_compose_name(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and value.startswith("http://"):
                host = re.match(r"http://(?:[^@/]+@)?([a-z0-9-]+):", value).group(1)
                assert host in services, f"{name}: {key}={value}"
    assert services["worker-async"]["environment"]["LOOPSCOPE_HANDLING"] == "async"
    assert services["worker-threadpool"]["environment"]["LOOPSCOPE_HANDLING"] == "threadpool"
    assert services["loadgen"]["command"] == ["/usr/local/bin/loadgen", "serve"]
    # Sentry events go to Spotlight, pinned as tools/spotlight pins it.
    assert services["gateway"]["environment"]["SENTRY_DSN"] == "http://public@spotlight:8969/0"
    spotlight = mounts(services["spotlight"])
    assert spotlight["/pinned/package-lock.json"] == ROOT / "tools" / "spotlight" / "package-lock.json"
    # Published on loopback only.
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
