"""The chart renders for every value set, passes a strict lint, rejects bad values, and wires
the services to each other the way the binaries expect (their env contract)."""

from __future__ import annotations

import base64
import re

import helm_python as helm
import pytest
import yaml

from conftest import (
    CHART,
    NAMESPACE,
    SERVICES,
    Rendered,
    container_env,
    dashboard_files,
    load_values,
    render,
    rendered_sets,
    value_set_files,
)

SETS = list(value_set_files())
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def test_ci_value_sets_cover_the_issue() -> None:
    assert {
        "default",
        "kube-prometheus-stack",
        "no-monitoring",
        "existing-sentry-secret",
        "hpa-ingress",
        "cilium",
        "openshift",
        "nodelocal-dns-dualstack",
    } <= set(SETS)


@pytest.mark.parametrize("kube_version", [None, "v1.29.0"])
@pytest.mark.parametrize("name", SETS)
def test_strict_lint(name: str, kube_version: str | None) -> None:
    """Warnings are errors; at the oldest supported Kubernetes too (deprecated APIs)."""
    values = load_values(value_set_files()[name])
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("name", SETS)
def test_renders_namespaced_objects(name: str) -> None:
    r = rendered_sets()[name]
    assert r.docs
    seen = set()
    for doc in r.docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        meta = doc["metadata"]
        key = (doc["kind"], meta["name"])
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)
        assert len(meta["name"]) <= 63, meta["name"]
        if doc["kind"] not in CLUSTER_SCOPED:
            assert meta.get("namespace") == NAMESPACE, key
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", key


@pytest.mark.parametrize(
    "values, message",
    [
        ({"gatway": {}}, "gatway"),
        ({"gateway": {"replica": 2}}, "replica"),
        ({"workerAsync": {"handling": "threads"}}, "handling"),
        ({"backend": {"errorRate": 2}}, "errorRate"),
        ({"gateway": {"metricsExposition": "mount"}}, "metricsExposition"),
        ({"sentry": {"dsn": "not a dsn"}}, "dsn"),
        ({"prometheus": {"retention": "2 days"}}, "retention"),
        ({"grafana": {"admin": {"pasword": "x"}}}, "pasword"),
        ({"serviceMonitor": {"enabled": True, "labels": {}}}, "labels"),
    ],
)
def test_schema_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"sentry": {"dsn": "https://k@o0.ingest.sentry.io/0", "existingSecret": "s"}}, "not both"),
        ({"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}, "choose one"),
        ({"httpRoute": {"enabled": True}}, "parentRefs"),
        ({"prometheus": {"enabled": False}}, "prometheusUrl"),
    ],
)
def test_contradictions_fail_with_a_reason(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


def deployment(r: Rendered, component: str) -> dict:
    prefix = r.values.get("fullnameOverride") or "loopscope"
    return r.get("Deployment", f"{prefix}-{component}")


def app_container(r: Rendered, component: str) -> dict:
    return deployment(r, component)["spec"]["template"]["spec"]["containers"][0]


def test_default_workloads(default: Rendered) -> None:
    assert default.names("Deployment") == {f"loopscope-{c}" for c in SERVICES.values()} | {
        "loopscope-prometheus",
        "loopscope-grafana",
    }
    assert default.names("Service") == default.names("Deployment")
    assert default.names("PodDisruptionBudget") == {f"loopscope-{c}" for c in SERVICES.values()}
    assert default.names("Pod") == {
        "loopscope-test-compare",
        "loopscope-test-async-call",
        "loopscope-test-threadpool-call",
        "loopscope-test-prometheus",
    }
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "Ingress", "HTTPRoute"):
        assert not default.of_kind(kind), kind
    assert not default.of_kind("HorizontalPodAutoscaler")


def test_no_monitoring(sets: dict[str, Rendered]) -> None:
    r = sets["no-monitoring"]
    assert r.names("Deployment") == {f"loopscope-{c}" for c in SERVICES.values()}
    assert not r.of_kind("NetworkPolicy")
    assert r.names("Pod") == {"loopscope-test-compare", "loopscope-test-async-call", "loopscope-test-threadpool-call"}
    assert not [d for d in r.docs if d["kind"] in ("Role", "RoleBinding", "ConfigMap")]


def test_kube_prometheus_stack(sets: dict[str, Rendered]) -> None:
    r = sets["kube-prometheus-stack"]
    assert "loopscope-prometheus" not in r.names("Deployment")
    assert "loopscope-grafana" not in r.names("Deployment")
    monitors = r.of_kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {f"loopscope-{c}" for c in SERVICES.values()}
    for m in monitors:
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert m["spec"]["jobLabel"] == "app.kubernetes.io/component"
        (endpoint,) = m["spec"]["endpoints"]
        # The services label their own series `service`: without honorLabels the operator's
        # `service` target label would rename it to exported_service.
        assert endpoint["honorLabels"] is True
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        service = r.get("Service", m["metadata"]["name"])
        assert m["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    (rule,) = r.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    cms = [c for c in r.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert len(cms) == len(dashboard_files())
    for cm in cms:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "loopscope"}
    # kube-prometheus-stack's Prometheus, in its own namespace, may scrape.
    policy = r.get("NetworkPolicy", "loopscope-gateway")
    metrics_rule = policy["spec"]["ingress"][-1]
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


def test_pod_monitors_follow_the_exposition(sets: dict[str, Rendered]) -> None:
    r = sets["sentry-podmonitor-exposition"]
    ports = {
        m["metadata"]["name"]: m["spec"]["podMetricsEndpoints"][0]["port"] for m in r.of_kind("PodMonitor")
    }
    assert ports == {
        "lab-gateway": "admin",
        "lab-worker-async": "http",  # mounted: /metrics on the app port, no admin port
        "lab-worker-threadpool": "admin",  # both: the admin port
        "lab-backend": "admin",
        "lab-loadgen": "admin",
    }
    for m in r.of_kind("PodMonitor"):
        assert m["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True
        pod = deployment(r, m["metadata"]["name"].removeprefix("lab-"))["spec"]["template"]
        names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert m["spec"]["podMetricsEndpoints"][0]["port"] in names
        assert m["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_hpa_and_ingress(sets: dict[str, Rendered]) -> None:
    r = sets["hpa-ingress"]
    hpas = {h["metadata"]["name"]: h for h in r.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {"loopscope-gateway", "loopscope-worker-async", "loopscope-worker-threadpool"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        # The HPA owns the replica count: a Deployment that set it would fight it on upgrades.
        assert "replicas" not in r.get("Deployment", name)["spec"]
    assert r.get("Deployment", "loopscope-backend")["spec"]["replicas"] == 2
    (ingress,) = r.of_kind("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "loopscope-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["secretName"] == "loopscope-tls"
    (route,) = r.of_kind("HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "loopscope-gateway", "port": 8080}
    ]


def test_env_contract(default: Rendered) -> None:
    """The settings each binary reads, pointing at Services that exist, on ports they expose."""
    services = {s["metadata"]["name"]: s for s in default.of_kind("Service")}
    for key, component in SERVICES.items():
        c = app_container(default, component)
        env = container_env(c)
        values = default.values.get(key, {})
        # Dual-stack: `::` takes IPv4 too (Linux maps it), so pod IPs of either family work.
        assert env["LOOPSCOPE_HOST"] == "::"
        assert env["LOOPSCOPE_PORT"] == "8080"
        assert env["LOOPSCOPE_ADMIN_PORT"] == "9100"
        assert env["LOOPSCOPE_METRICS_EXPOSITION"] == values.get("metricsExposition", "separate")
        for name in ("LOOPSCOPE_WORKERS", "LOOPSCOPE_BLOCKING_THREADS", "LOOPSCOPE_STALL_THRESHOLD_MS"):
            assert re.fullmatch(r"[0-9]+", env[name]), (component, name, env[name])
        assert "SENTRY_DSN" not in env, "Sentry is off without a DSN"
        binary = c["command"][0]
        assert binary == f"/usr/local/bin/{'worker' if key.startswith('worker') else key}"
        for name, value in env.items():
            if isinstance(value, str) and value.startswith("http://"):
                host, port = re.fullmatch(r"http://([a-z0-9-]+):([0-9]+)", value).groups()
                assert host in services, (component, name, value)
                assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
    assert container_env(app_container(default, "worker-async"))["LOOPSCOPE_HANDLING"] == "async"
    assert container_env(app_container(default, "worker-threadpool"))["LOOPSCOPE_HANDLING"] == "threadpool"
    assert app_container(default, "loadgen")["command"] == ["/usr/local/bin/loadgen", "serve"]
    gateway = container_env(app_container(default, "gateway"))
    assert gateway["LOOPSCOPE_WORKER_ASYNC_URL"] == "http://loopscope-worker-async:8080"
    assert gateway["LOOPSCOPE_WORKER_THREADPOOL_URL"] == "http://loopscope-worker-threadpool:8080"
    worker = container_env(app_container(default, "worker-async"))
    assert worker["LOOPSCOPE_BACKEND_URL"] == "http://loopscope-backend:8080"
    loadgen = container_env(app_container(default, "loadgen"))
    assert loadgen["LOOPSCOPE_GATEWAY_URL"] == "http://loopscope-gateway:8080"
    assert loadgen["LOOPSCOPE_RATE"] == "5"


def test_large_numbers_are_not_printed_in_exponent_form() -> None:
    r = render({"gateway": {"upstreamTimeoutMs": 1000000}})
    env = container_env(app_container(r, "gateway"))
    assert env["LOOPSCOPE_UPSTREAM_TIMEOUT_MS"] == "1000000"


@pytest.mark.parametrize("name", SETS)
def test_probes_scrape_annotations_and_grace(name: str) -> None:
    r = rendered_sets()[name]
    for component in SERVICES.values():
        pod = deployment(r, component)["spec"]["template"]
        spec = pod["spec"]
        c = spec["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        # Probes on the app port, where a stalled event loop shows.
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        exposition = container_env(c)["LOOPSCOPE_METRICS_EXPOSITION"]
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        want = ports["http"] if exposition == "mounted" else ports["admin"]
        assert int(annotations["prometheus.io/port"]) == want
        assert ("admin" in ports) == (exposition != "mounted")
        # The drain, then the Sentry flush, must fit before the SIGKILL; the drain covers the
        # longest upstream timeout, so a request waiting on its upstream is not cut.
        env = container_env(c)
        grace = int(env["LOOPSCOPE_SHUTDOWN_GRACE_SECS"])
        upstream_ms = int(env.get("LOOPSCOPE_UPSTREAM_TIMEOUT_MS", "0"))
        assert grace * 1000 >= upstream_ms, (component, grace, upstream_ms)
        drain = int(env["LOOPSCOPE_SHUTDOWN_DELAY_SECS"]) + grace
        assert spec["terminationGracePeriodSeconds"] >= drain + 2 + 1
        assert spec["terminationGracePeriodSeconds"] * 1000 >= upstream_ms + 5000


def test_services_select_their_pods_on_declared_ports(default: Rendered) -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in default.of_kind("Deployment")}
    for svc in default.of_kind("Service"):
        selector = svc["spec"]["selector"]
        matching = [n for n, t in pods.items() if selector.items() <= t["metadata"]["labels"].items()]
        assert matching == [svc["metadata"]["name"]], svc["metadata"]["name"]
        container_ports = {p["name"] for p in pods[matching[0]]["spec"]["containers"][0]["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (svc["metadata"]["name"], port)


def test_sentry_from_values_creates_a_secret_and_rolls_pods() -> None:
    dsn = "https://public@o0.ingest.sentry.io/0"
    r = render({"sentry": {"dsn": dsn, "environment": "prod", "tracesSampleRate": 0.25}})
    secret = r.get("Secret", "loopscope-sentry")
    assert base64.b64decode(secret["data"]["dsn"]).decode() == dsn
    for component in SERVICES.values():
        env = container_env(app_container(r, component))
        assert env["SENTRY_DSN"] == {"secretKeyRef": {"name": "loopscope-sentry", "key": "dsn"}}
        assert env["SENTRY_ENVIRONMENT"] == "prod"
        assert env["SENTRY_TRACES_SAMPLE_RATE"] == "0.25"
        assert env["SENTRY_RELEASE"] == "loopscope@0.1.0"
    other = render({"sentry": {"dsn": "https://other@o0.ingest.sentry.io/1"}})
    a = deployment(r, "gateway")["spec"]["template"]["metadata"]["annotations"]["checksum/sentry"]
    b = deployment(other, "gateway")["spec"]["template"]["metadata"]["annotations"]["checksum/sentry"]
    assert a != b


def test_sentry_from_an_existing_secret(sets: dict[str, Rendered]) -> None:
    r = sets["existing-sentry-secret"]
    assert not [s for s in r.of_kind("Secret") if "sentry" in s["metadata"]["name"]]
    for component in SERVICES.values():
        env = container_env(app_container(r, component))
        assert env["SENTRY_DSN"] == {"secretKeyRef": {"name": "loopscope-sentry-dsn", "key": "SENTRY_DSN"}}
        assert env["SENTRY_ENVIRONMENT"] == "staging"


def test_release_is_the_image_tag(sets: dict[str, Rendered]) -> None:
    r = render({"image": {"tag": "1.2.3"}, "sentry": {"dsn": "https://k@o0.ingest.sentry.io/0"}})
    c = app_container(r, "gateway")
    assert c["image"] == "ghcr.io/loopscope/loopscope:1.2.3"
    assert container_env(c)["SENTRY_RELEASE"] == "loopscope@1.2.3"
    digest = "sha256:" + "a" * 64
    r = render({"image": {"tag": "1.2.3", "digest": digest}})
    assert app_container(r, "gateway")["image"] == f"ghcr.io/loopscope/loopscope:1.2.3@{digest}"
    kind = app_container(sets["kind"], "gateway")
    assert kind["image"] == "loopscope:dev-0123456789ab" and kind["imagePullPolicy"] == "Never"


def test_config_changes_roll_pods(default: Rendered) -> None:
    def annotations(r: Rendered, name: str) -> dict:
        return r.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]

    changed = render({"prometheus": {"scrapeInterval": "30s"}, "grafana": {"ini": {"server": {"domain": "x"}}}})
    for name in ("loopscope-prometheus", "loopscope-grafana"):
        assert annotations(default, name)["checksum/config"] != annotations(changed, name)["checksum/config"]
    assert annotations(default, "loopscope-prometheus")["checksum/rules"]


def test_per_service_settings() -> None:
    r = render(
        {
            "workerThreadpool": {"workers": 4, "blockingThreads": 8, "stallThresholdMs": 25, "replicas": 3},
            "backend": {"latencyMs": 120, "latencyDist": "lognormal", "errorRate": 0.05},
            "gateway": {"extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}]},
            "common": {"extraEnv": [{"name": "TZ", "value": "UTC"}], "logFormat": "text"},
            "loadgen": {"enabled": False},
        }
    )
    d = deployment(r, "worker-threadpool")
    env = container_env(d["spec"]["template"]["spec"]["containers"][0])
    assert d["spec"]["replicas"] == 3
    assert (env["LOOPSCOPE_WORKERS"], env["LOOPSCOPE_BLOCKING_THREADS"], env["LOOPSCOPE_STALL_THRESHOLD_MS"]) == (
        "4",
        "8",
        "25",
    )
    env = container_env(app_container(r, "backend"))
    assert (env["LOOPSCOPE_LATENCY_MS"], env["LOOPSCOPE_LATENCY_DIST"], env["LOOPSCOPE_ERROR_RATE"]) == (
        "120",
        "lognormal",
        "0.05",
    )
    env = container_env(app_container(r, "gateway"))
    assert env["RUST_BACKTRACE"] == "1" and env["TZ"] == "UTC" and env["LOOPSCOPE_LOG_FORMAT"] == "text"
    assert "loopscope-loadgen" not in r.names("Deployment")
    assert "loopscope-loadgen" not in r.names("NetworkPolicy")


def test_prestop_sleep() -> None:
    r = render({"common": {"preStopSleepSeconds": 5}})
    spec = deployment(r, "gateway")["spec"]["template"]["spec"]
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    # preStop sleep + shutdown delay + drain (the gateway's 30 s upstream timeout, above
    # shutdownGraceSecs) + Sentry flush + margin
    assert spec["terminationGracePeriodSeconds"] == 5 + 5 + 30 + 2 + 5
    spec = deployment(r, "backend")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 5 + 5 + 10 + 2 + 5


def test_grace_follows_the_upstream_timeouts() -> None:
    r = render({"workerAsync": {"upstreamTimeoutMs": 45500}, "loadgen": {"requestTimeout": "2m"}})
    for component, drain in (("worker-async", 46), ("loadgen", 120), ("gateway", 30), ("backend", 10)):
        spec = deployment(r, component)["spec"]["template"]["spec"]
        assert container_env(spec["containers"][0])["LOOPSCOPE_SHUTDOWN_GRACE_SECS"] == str(drain), component
        assert spec["terminationGracePeriodSeconds"] == 5 + drain + 2 + 5, component


def test_grafana_admin_password_is_stable_across_renders(default: Rendered, sets: dict[str, Rendered]) -> None:
    """No password, no Secret: nothing random in the render (helm template, Argo CD); the
    pod generates one at start. A password in values: a Secret, the same every time."""
    assert render({}).manifests == render({}).manifests, "two renders differ"
    assert not [s for s in default.of_kind("Secret") if "grafana" in s["metadata"]["name"]]
    grafana = default.get("Deployment", "loopscope-grafana")["spec"]["template"]["spec"]
    env = container_env(grafana["containers"][0])
    # From files: no credential in the pod spec or the environment.
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/etc/grafana/admin/password"
    assert env["GF_SECURITY_ADMIN_USER__FILE"] == "/etc/grafana/admin/user"
    admin = next(v for v in grafana["volumes"] if v["name"] == "admin")
    assert admin["emptyDir"]["medium"] == "Memory"
    (init,) = grafana["initContainers"]
    script = init["command"][-1]
    assert "/dev/urandom" in script and "/etc/grafana/admin/password" in script
    assert "-s /etc/grafana/admin/password" in script, "kept across container restarts"
    assert {"name": "admin", "mountPath": "/etc/grafana/admin"} in init["volumeMounts"]

    with_password = {"grafana": {"admin": {"password": "s3cret-pass"}}}
    a, b = render(with_password), render(with_password)
    assert a.manifests == b.manifests
    secret = a.get("Secret", "loopscope-grafana-admin")
    assert base64.b64decode(secret["data"]["admin-user"]) == b"admin"
    assert base64.b64decode(secret["data"]["admin-password"]) == b"s3cret-pass"
    grafana = a.get("Deployment", "loopscope-grafana")["spec"]["template"]["spec"]
    assert "initContainers" not in grafana
    admin = next(v for v in grafana["volumes"] if v["name"] == "admin")
    assert admin["secret"]["secretName"] == "loopscope-grafana-admin"
    r = sets["sentry-podmonitor-exposition"]
    assert not [s for s in r.of_kind("Secret") if "grafana" in s["metadata"]["name"]]
    grafana = r.get("Deployment", "lab-grafana")["spec"]["template"]["spec"]
    admin = next(v for v in grafana["volumes"] if v["name"] == "admin")
    assert admin["secret"]["secretName"] == "grafana-admin"


def test_grafana_ini(default: Rendered, sets: dict[str, Rendered]) -> None:
    ini = default.get("ConfigMap", "loopscope-grafana")["data"]["grafana.ini"]
    assert "[analytics]\ncheck_for_plugin_updates = false" in ini
    assert "preinstall_disabled = true" in ini
    assert "[auth.anonymous]\nenabled = false" in ini
    ini = sets["sentry-podmonitor-exposition"].get("ConfigMap", "lab-grafana")["data"]["grafana.ini"]
    assert "[auth.anonymous]\nenabled = true" in ini
    assert "[server]\nroot_url = https://grafana.example.com" in ini


def test_notes(default: Rendered, sets: dict[str, Rendered]) -> None:
    notes = default.notes
    for command in (
        "kubectl -n loopscope port-forward svc/loopscope-gateway 8080:8080",
        "kubectl -n loopscope port-forward svc/loopscope-prometheus 9090:9090",
        "kubectl -n loopscope port-forward svc/loopscope-grafana 3000:3000",
        "exec deploy/loopscope-grafana -c grafana -- cat /etc/grafana/admin/password",
        "helm test -n loopscope loopscope",
    ):
        assert command in notes, command
    assert "Sentry: off" in notes
    assert "ServiceMonitors" in sets["kube-prometheus-stack"].notes
    assert "Ingress: https://loopscope.example.com" in sets["hpa-ingress"].notes
    assert "get secret lab-grafana-admin" not in sets["sentry-podmonitor-exposition"].notes
    assert "get secret grafana-admin" in sets["sentry-podmonitor-exposition"].notes
    assert "get secret loopscope-grafana-admin" in render({"grafana": {"admin": {"password": "x"}}}).notes
    # What to check when the image cannot be pulled, and how to use one's own.
    assert "ImagePullBackOff" in notes and "ghcr.io/loopscope/loopscope:0.1.0" in notes
    assert "make images push IMAGE_REPO=" in notes and "--set image.repository=" in notes
    assert "image.pullPolicy is Never" in sets["kind"].notes
    # A NodePort in front of Prometheus needs an ipBlock: the kind values have one.
    warning = "traffic from nodes and load balancers matches no pod selector"
    assert warning not in sets["kind"].notes
    assert warning in render({"prometheus": {"service": {"type": "NodePort"}}}).notes


def test_values_file_parses_and_matches_schema_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    assert set(values) <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_test_pods_are_test_hooks_whose_logs_survive(default: Rendered) -> None:
    for pod in default.of_kind("Pod"):
        annotations = pod["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        # `helm test --logs` (make e2e) reads the logs after the run.
        assert "hook-succeeded" not in annotations["helm.sh/hook-delete-policy"]
        assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] > 0
    urls = {
        name: default.get("Pod", f"loopscope-test-{name}")["spec"]["containers"][0]["command"][2]
        for name in ("compare", "async-call", "threadpool-call")
    }
    assert urls == {
        "compare": "http://loopscope-gateway:8080/api/compare?kind=io&ms=10",
        "async-call": "http://loopscope-gateway:8080/api/async/work/call?ms=5",
        "threadpool-call": "http://loopscope-gateway:8080/api/threadpool/work/call?ms=5",
    }


@pytest.mark.parametrize("name", SETS)
def test_every_test_pod_has_one_container_and_no_sidecar(name: str) -> None:
    """`helm test --logs` (Helm 3.17-3.21.4, 4.0-4.2.3) asks for logs without a container
    name: the API server refuses that for a pod of several containers. A mesh sidecar
    would be a second container and keep the pod from finishing."""
    r = rendered_sets()[name]
    pods = r.of_kind("Pod")
    assert pods or not r.values.get("tests", {}).get("enabled", True)
    for pod in pods:
        spec = pod["spec"]
        assert len(spec["containers"]) == 1, pod["metadata"]["name"]
        assert not spec.get("initContainers") and not spec.get("ephemeralContainers")
        annotations, labels = pod["metadata"]["annotations"], pod["metadata"]["labels"]
        assert annotations["sidecar.istio.io/inject"] == "false" and labels["sidecar.istio.io/inject"] == "false"
        assert annotations["linkerd.io/inject"] == "disabled"
        assert annotations["kuma.io/sidecar-injection"] == "disabled"



@pytest.mark.parametrize(
    "link, values, message",
    [
        ("dashboards", {}, "no dashboards/\\*.json"),
        ("dashboards", {"grafana": {"enabled": False}, "grafanaDashboards": {"enabled": True}}, "no dashboards/\\*.json"),
        ("rules", {}, "rules/loopscope.rules.yml is missing or empty"),
        ("rules", {"prometheus": {"enabled": False}, "grafana": {"enabled": False}, "prometheusRule": {"enabled": True}}, "rules/loopscope.rules.yml is missing or empty"),
        ("provisioning", {}, "provisioning/datasources/loopscope.yml is missing or empty"),
    ],
)
def test_a_checkout_without_symlinks_fails_the_render(tmp_path, link: str, values: dict, message: str) -> None:
    """With core.symlinks=false, git writes each link as a text file holding its target: the
    render fails with a reason instead of shipping empty ConfigMaps."""
    import shutil

    copy = tmp_path / "loopscope"
    shutil.copytree(CHART, copy, symlinks=False)
    target = (CHART / link).readlink()
    shutil.rmtree(copy / link)
    (copy / link).write_text(str(target))
    broken = helm.Chart.load(str(copy))
    with pytest.raises(helm.HelmError, match=message) as error:
        broken.render(values=values, name="loopscope", namespace=NAMESPACE)
    assert "core.symlinks" in str(error.value)
    # The same values render with the links in place.
    assert render(values).docs


def test_cilium_policy_is_well_formed(sets: dict[str, Rendered]) -> None:
    """No CRD schema for Cilium offline: the fields of cilium.io/v2 CiliumNetworkPolicy the
    chart uses, checked by hand. Only the cilium mode renders one."""
    (cnp,) = sets["cilium"].of_kind("CiliumNetworkPolicy")
    assert cnp["apiVersion"] == "cilium.io/v2"
    assert set(cnp["spec"]) == {"endpointSelector", "egress"}
    assert cnp["spec"]["endpointSelector"]["matchLabels"]["app.kubernetes.io/component"] == "prometheus"
    (rule,) = cnp["spec"]["egress"]
    assert rule["toEntities"] == ["kube-apiserver"]
    assert rule["toPorts"] == [{"ports": [{"port": "443", "protocol": "TCP"}, {"port": "6443", "protocol": "TCP"}]}]
    for name, r in sets.items():
        if name != "cilium":
            assert not r.of_kind("CiliumNetworkPolicy"), name
