"""The image and the kind workflow, as far as a machine without a Docker engine can check
them: hadolint on the Dockerfile, what the image must carry for the chart, the build
context, the kind config, the make sequence, the scripts, the docs."""

from __future__ import annotations

import fnmatch
import re
import shutil

import pytest
import yaml

from conftest import CHART, ROOT, SERVICES, Rendered, run, tool

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_hadolint() -> None:
    result = run(tool("hadolint"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_every_binary_the_chart_runs(default: Rendered) -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) >= 2, "multi-stage: build, then a minimal runtime"
    assert "distroless" in stages[-1]
    user = re.findall(r"^USER\s+(\S+)", text, re.M)[-1]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), "numeric non-root user"
    uid = int(user.split(":")[0])
    chart_uid = yaml.safe_load((CHART / "values.yaml").read_text())["common"]["podSecurityContext"]["runAsUser"]
    assert uid == chart_uid, "the chart runs the services as the image's user"
    ports = yaml.safe_load((CHART / "values.yaml").read_text())["ports"]
    assert f"LOOPSCOPE_PORT={ports['http']}" in text and f"LOOPSCOPE_ADMIN_PORT={ports['admin']}" in text
    assert "LOOPSCOPE_HOST=0.0.0.0" in text
    built = set(re.findall(r"--bin (\S+)", text))
    commands = set()
    for _label, _, spec in default.pod_specs():
        for c in spec["containers"]:
            if c["image"].startswith("ghcr.io/loopscope/"):
                commands.add(c["command"][0].removeprefix("/usr/local/bin/"))
    assert commands == {"gateway", "worker", "backend", "loadgen"}
    assert commands <= built
    assert "COPY --from=build /out/bin/ /usr/local/bin/" in text
    assert "--locked" in text


def test_image_keeps_the_line_tables() -> None:
    """Sentry's stack traces and the stall capture (in-process symbolication) need file:line:
    the release profile builds line tables, the Dockerfile compresses them and never strips
    them, and exports the debug sections for `sentry-cli debug-files upload`."""
    text = DOCKERFILE.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\bstrip\b|--strip|strip-debug|strip-all|-s\b.*objcopy", code), "the image strips debug info"
    assert "objcopy --compress-debug-sections=zlib" in code
    assert "--only-keep-debug" in code
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", code, re.M)
    assert "debug-files" in stages and stages[-1] == "runtime", "the runtime image is the default target"
    cargo = (ROOT / "Cargo.toml").read_text()
    profile = re.search(r"^\[profile\.release\]\n((?:[^\[].*\n?)*)", cargo, re.M).group(1)
    debug = re.search(r"^debug\s*=\s*(.+)$", profile, re.M)
    assert debug and debug.group(1).strip() in ('"line-tables-only"', '"limited"', '"full"', "true", "1", "2"), profile
    assert not re.search(r"^strip\s*=\s*(true|\"debuginfo\"|\"symbols\")", profile, re.M)


def test_kind_load_avoids_provenance_attestations() -> None:
    """kind load fails on Docker >= 29 (containerd image store) with BuildKit's default
    provenance attestation: the image is built without one, and loaded through an archive."""
    result = run("make", "-n", "-C", str(ROOT), "kind-load")
    assert result.returncode == 0, result.stderr
    build = next(line for line in result.stdout.splitlines() if "buildx build" in line)
    assert "--provenance=false" in build and "--load" in build
    assert "docker save -o" in result.stdout and "kind load image-archive" in result.stdout


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches a path or one of its parents wins."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pattern[3:])
            ):
                ignored = not negate
                break
    return ignored


def test_build_context_has_the_workspace_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", (ROOT / "Cargo.toml").read_text(), re.M)
    needed = ["Cargo.toml", "Cargo.lock"]
    for member in re.findall(r'"([^"]+)"', members.group(1)):
        needed += [f"{member}/Cargo.toml", f"{member}/src/lib.rs"]
    for path in needed:
        assert not dockerignored(path, patterns), f"{path} is needed by the build but .dockerignore drops it"
    for path in ("target/release/worker", ".git/HEAD", "helm/loopscope/values.yaml", "tests/chart/conftest.py"):
        assert dockerignored(path, patterns), path


def test_kind_config() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "kind.yaml").read_text())
    (node,) = config["nodes"]
    assert re.fullmatch(r"kindest/node:v1\.[0-9]+\.[0-9]+@sha256:[0-9a-f]{64}", node["image"]), "pinned by digest"
    mapped = {m["containerPort"]: m for m in node["extraPortMappings"]}
    values = yaml.safe_load((ROOT / "deploy" / "kind-values.yaml").read_text())
    for key in ("gateway", "grafana", "prometheus"):
        port = values[key]["service"]["nodePort"]
        assert values[key]["service"]["type"] == "NodePort"
        assert mapped[port]["hostPort"] == port and mapped[port]["listenAddress"] == "127.0.0.1", key


def test_make_shows_the_kind_sequence() -> None:
    result = run("make", "-n", "-C", str(ROOT), "kind-up", "deploy", "e2e")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    steps = [
        "scripts/kind-up.sh",
        "-f deploy/Dockerfile",
        "kind load image-archive",
        "pod-security.kubernetes.io/enforce=restricted",
        "helm upgrade --install",
        "--wait",
        "scripts/e2e.sh",
    ]
    positions = [out.find(s) for s in steps]
    assert all(p >= 0 for p in positions), dict(zip(steps, positions))
    assert positions == sorted(positions), out
    tag = re.search(r"-t 'loopscope:(dev-[0-9a-z]+)'", out).group(1)
    assert "--provenance=false" in out
    assert f"image.tag='{tag}'" in out, "deploy installs the image that was built"
    assert "-f deploy/kind-values.yaml" in out


@pytest.mark.parametrize(
    "target",
    ["kind-up", "images", "push", "kind-load", "deploy", "e2e", "grafana", "kind-down", "test-chart", "compose-check", "compose-up"],
)
def test_make_targets_are_documented(target: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{target}:[^\n]*## \S", makefile, re.M), f"{target} has no ## help"
    readme = (ROOT / "README.md").read_text()
    assert f"make {target}" in readme or f"`{target}`" in readme, f"README says nothing of {target}"


def test_scripts_pass_shellcheck() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (make tools); make lint-shell checks the scripts in CI")
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh") if re.match(r"(kind-.*|e2e)\.sh", p.name))
    assert len(scripts) >= 4
    result = run("shellcheck", "-x", *scripts, cwd=str(ROOT / "scripts"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_has_a_kubernetes_section() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^## Kubernetes$", readme, re.M)
    assert "helm upgrade --install" in readme or "helm install" in readme


STOP = {"resources", "podSecurityContext", "containerSecurityContext", "livenessProbe", "readinessProbe"}


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in STOP:
            out += leaf_paths(value, f"{path}.")
        else:
            out.append(path)
    return out


def test_chart_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    service_keys = "|".join(SERVICES)
    missing = []
    for path in leaf_paths(values):
        generic = re.sub(rf"^({service_keys})\.", "<service>.", path)
        if path not in documented and generic not in documented:
            missing.append(path)
    assert not missing, f"not in helm/loopscope/README.md's values table: {missing}"


def test_readme_says_in_one_place_how_to_use_your_own_image() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.count("### Your own image") == 1
    section = readme.split("### Your own image", 1)[1].split("\n#", 1)[0]
    build = re.search(r"make images push IMAGE_REPO=(\S+) IMAGE_TAG=(\S+)", section)
    assert build, section
    repo, tag = build.groups()
    assert f"--set image.repository={repo} --set image.tag={tag}" in section
    assert "helm upgrade --install loopscope helm/loopscope" in section
    # make push says the same install line.
    out = run("make", "-n", "-C", str(ROOT), "images", "push", f"IMAGE_REPO={repo}", f"IMAGE_TAG={tag}").stdout
    assert f"docker push '{repo}:{tag}'" in out
    assert f"--set image.repository='{repo}' --set image.tag='{tag}'" in out
