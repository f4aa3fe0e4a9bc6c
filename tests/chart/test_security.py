"""Pod Security "restricted", checked field by field on every pod the chart creates
(Deployments and helm test pods, every value set), and checkov on the rendered manifests
with every skip explained."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import rendered_sets, run, tool

PODS = [
    pytest.param(name, label, meta, spec, r.values.get("openshift", False), id=f"{name}:{label}")
    for name, r in rendered_sets().items()
    for label, meta, spec in r.pod_specs()
]

# The restricted profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
# as of Kubernetes 1.29+.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Only Prometheus talks to the API server (pod discovery).
NEEDS_TOKEN = re.compile(r"Deployment/.*-prometheus$")


ID_FIELDS = ("runAsUser", "runAsGroup", "fsGroup")


@pytest.mark.parametrize("name, label, meta, spec, openshift", PODS)
def test_pod_meets_restricted(name: str, label: str, meta: dict, spec: dict[str, Any], openshift: bool) -> None:
    pod_sc = spec.get("securityContext", {})
    containers = spec.get("initContainers", []) + spec["containers"] + spec.get("ephemeralContainers", [])

    # Baseline: host namespaces, host ports, hostPath, privileged, capabilities, /proc,
    # SELinux, AppArmor, sysctls.
    for field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if field == "hostUsers":
            assert spec.get(field, True) in (True, False)
        else:
            assert not spec.get(field, False), f"{label}: {field}"
    assert not pod_sc.get("windowsOptions", {}).get("hostProcess", False)
    for sysctl in pod_sc.get("sysctls", []):
        assert sysctl["name"] in SAFE_SYSCTLS, f"{label}: sysctl {sysctl['name']}"
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUMES, f"{label}: volume {volume['name']} is {kinds}"
    assert pod_sc.get("seLinuxOptions", {}).get("type", "") in ("", "container_t", "container_init_t", "container_kvm_t")
    assert pod_sc.get("appArmorProfile", {}).get("type", "RuntimeDefault") in ("RuntimeDefault", "Localhost")

    # Pod level: non-root with a numeric uid (OpenShift: none, restricted-v2 assigns one
    # from the namespace's range and rejects a fixed one outside it), RuntimeDefault seccomp.
    assert pod_sc.get("runAsNonRoot") is True, f"{label}: pod runAsNonRoot"
    if openshift:
        for c in containers:
            fixed = [f for f in ID_FIELDS if f in pod_sc or f in c.get("securityContext", {})]
            assert not fixed, f"{label} container {c['name']}: fixed {fixed} with openshift: true"
    else:
        assert isinstance(pod_sc.get("runAsUser"), int) and pod_sc["runAsUser"] > 0, f"{label}: pod runAsUser"
    assert pod_sc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"), label

    # A token only where the API is used.
    assert spec.get("automountServiceAccountToken") is (bool(NEEDS_TOKEN.match(label))), label

    for c in containers:
        where = f"{label} container {c['name']}"
        sc = c.get("securityContext", {})
        assert not sc.get("privileged", False), where
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation must be false"
        assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        assert openshift or (isinstance(uid, int) and uid > 0), f"{where}: numeric non-root uid"
        caps = sc.get("capabilities", {})
        assert "ALL" in caps.get("drop", []), f"{where}: drop ALL"
        assert set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}, where
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
        assert sc.get("procMount", "Default") == "Default", where
        assert sc.get("seLinuxOptions", {}).get("user") is None, where
        assert sc.get("seLinuxOptions", {}).get("role") is None, where
        for port in c.get("ports", []):
            assert not port.get("hostPort"), f"{where}: hostPort"
        # Resources: every container asks for what it needs and has a memory ceiling.
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"], where


def test_every_value_set_has_pods() -> None:
    counts = {name: len(list(r.pod_specs())) for name, r in rendered_sets().items()}
    assert all(counts.values()), counts


# checkov: each skip is one check, on the resources it names, for the reason beside it.
# Anything else that fails, fails the test.
CHECKOV_SKIPS: dict[str, tuple[str, str]] = {
    # openshift: true sets no uid at all: OpenShift's restricted-v2 SCC assigns one from the
    # namespace's range (1000000000 and up), which checkov cannot know.
    "CKV_K8S_40@openshift": (r"(Deployment|Pod)\..*", "uid assigned by the SCC"),
    # No CPU limits by default, on purpose: CFS throttling stalls event loops, the very
    # thing loopscope measures, and a stall the lab caused itself would be a lie. Memory
    # is limited everywhere; CPU limits are a value away (`<service>.resources.limits`).
    "CKV_K8S_11": (r"Deployment\..*", "CPU limits"),
    # Tags by default: readable, and the kind workflow loads images that have no registry
    # digest. `image.digest` (and prometheus/grafana.image.digest) pins by digest.
    "CKV_K8S_43": (r"(Deployment|Pod)\..*", "image digest"),
    # IfNotPresent with versioned tags (or digests); Always cannot work with images
    # loaded into kind, and re-pulls on every restart.
    "CKV_K8S_15": (r"(Deployment|Pod)\..*", "pull policy Always"),
    # SENTRY_DSN: the services read it from the environment only (clap env). It comes from
    # a Secret, never from the pod spec; a DSN is a send-only key.
    "CKV_K8S_35": (r"Deployment\..*-(gateway|worker-async|worker-threadpool|backend|loadgen)", "secret as env"),
    # Prometheus lists and watches pods (kubernetes_sd_configs): it needs its token, and
    # its Role allows only get/list/watch on pods of the release namespace.
    "CKV_K8S_38": (r"Deployment\..*-prometheus", "service account token"),
    # Grafana runs as 472, the user its image owns its files with.
    "CKV_K8S_40": (r"Deployment\..*-grafana", "high uid"),
    # helm test pods run once to completion: nothing to probe.
    "CKV_K8S_8": (r"Pod\..*-test-.*", "liveness probe"),
    "CKV_K8S_9": (r"Pod\..*-test-.*", "readiness probe"),
}


@pytest.fixture(scope="module")
def checkov_report(manifests_dir: Path) -> list[dict[str, Any]]:
    result = run(
        tool("checkov"),
        "--framework", "kubernetes",
        "--directory", str(manifests_dir),
        "--output", "json",
        "--skip-download",  # offline: no guidelines or severities from the vendor's API
        "--quiet",
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def test_checkov_fails_only_explained_checks(checkov_report: list[dict[str, Any]]) -> None:
    failed = [f for r in checkov_report for f in r["results"]["failed_checks"]]
    passed = sum(r["summary"]["passed"] for r in checkov_report)
    assert passed > 500, "checkov ran almost nothing"
    assert not any(r["summary"]["parsing_errors"] for r in checkov_report)
    unexplained = []
    used = set()
    for f in failed:
        value_set = f["file_path"].strip("/").split("/")[0]
        key = next(
            (k for k in (f"{f['check_id']}@{value_set}", f["check_id"]) if k in CHECKOV_SKIPS), f["check_id"]
        )
        skip = CHECKOV_SKIPS.get(key)
        parts = f["resource"].split(".")  # Kind.namespace.name
        resource = f"{parts[0]}.{parts[-1]}"
        if skip and re.fullmatch(skip[0], resource):
            used.add(key)
        else:
            unexplained.append(f"{f['check_id']} {f['check_name']}: {f['resource']} ({f['file_path']})")
    assert not unexplained, "\n".join(sorted(set(unexplained)))
    # A skip nothing needs any more is a stale comment: remove it.
    assert used == set(CHECKOV_SKIPS), f"unused skips: {set(CHECKOV_SKIPS) - used}"
