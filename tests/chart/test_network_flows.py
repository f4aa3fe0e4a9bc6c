"""The NetworkPolicies against the traffic a real cluster sends, not only pod to pod: the host
through a NodePort, Prometheus to the API server under each flavour of the egress rule (and
each CNI's way of matching it), DNS (cluster DNS, NodeLocal DNSCache, OpenShift DNS), extra
rules, IPv6, and two releases in one namespace.

A small evaluator of the rendered objects. What it models, from the policies' specification
and the engines' documented behaviour:
- Policies see the destination port after the Service's DNAT (the API server's 6443,
  OpenShift DNS's 5353).
- Traffic from a node (a NodePort, after kube-proxy's masquerade) or a host-network server
  has no pod: it matches ipBlocks only, never a pod or namespace selector (kind's
  kube-network-policies, and every engine).
- Cilium: an ipBlock (a CIDR rule) matches the `world` only, never a cluster entity (a node,
  the host-network API server); `toEntities: [kube-apiserver]` does. NetworkPolicies and
  CiliumNetworkPolicies that select a pod add up.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from conftest import NAMESPACE, Rendered, load_values, render, rendered_sets, value_set_files


@dataclass
class Endpoint:
    name: str
    ip: str
    namespace: str | None = None  # None: not a pod (a node, the host, the outside)
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    entities: frozenset[str] = frozenset({"world"})


NAMESPACES = {
    NAMESPACE: {"kubernetes.io/metadata.name": NAMESPACE},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
    "openshift-dns": {"kubernetes.io/metadata.name": "openshift-dns"},
    "monitoring": {"kubernetes.io/metadata.name": "monitoring"},
    "gateway-system": {"kubernetes.io/metadata.name": "gateway-system"},
    "ingress-nginx": {"kubernetes.io/metadata.name": "ingress-nginx"},
    "openshift-ingress": {"kubernetes.io/metadata.name": "openshift-ingress", "network.openshift.io/policy-group": "ingress"},
}

# The world around the release.
NODE = Endpoint("node", "172.18.0.2", entities=frozenset({"host", "kube-apiserver"}))
NODE6 = Endpoint("node6", "fc00:f853:ccd:e793::2", entities=frozenset({"host", "kube-apiserver"}))
REMOTE_API = Endpoint("api-elsewhere", "10.0.0.5", entities=frozenset({"kube-apiserver"}))
COREDNS = Endpoint(
    "coredns", "10.244.0.2", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}, frozenset({"cluster"})
)
NODELOCAL_DNS = Endpoint("nodelocaldns", "169.254.20.10", entities=frozenset({"host"}))
OPENSHIFT_DNS = Endpoint(
    "openshift-dns",
    "10.128.0.9",
    "openshift-dns",
    {"dns.operator.openshift.io/daemonset-dns": "default"},
    {"dns": 5353},
    frozenset({"cluster"}),
)
OUTSIDE = Endpoint("outside", "1.1.1.1")
OUTSIDE6 = Endpoint("outside6", "2606:4700::1111")
CORPORATE = Endpoint("corporate", "10.1.2.3")
INGRESS_NGINX = Endpoint(
    "ingress-nginx", "10.244.0.3", "ingress-nginx", {"app": "ingress-nginx"}, {}, frozenset({"cluster"})
)
GATEWAY_PROXY = Endpoint("envoy", "10.244.0.4", "gateway-system", {"app": "envoy"}, {}, frozenset({"cluster"}))
ROUTER = Endpoint("router", "10.244.0.5", "openshift-ingress", {"app": "router"}, {}, frozenset({"cluster"}))


def selects(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
        if expr["operator"] == "DoesNotExist" and value is not None:
            return False
    return True


def in_block(ip: str, block: dict) -> bool:
    address = ipaddress.ip_address(ip)
    cidr = ipaddress.ip_network(block["cidr"])
    if address.version != cidr.version or address not in cidr:
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []) if ipaddress.ip_network(e).version == address.version)


class Network:
    """The rendered objects of one or more releases, in one namespace, on one CNI."""

    def __init__(self, *releases: Rendered, cni: str = "kube-network-policies") -> None:
        self.cni = cni
        self.pods: dict[str, Endpoint] = {}
        self.policies: list[dict[str, Any]] = []
        self.cilium: list[dict[str, Any]] = []
        for n, r in enumerate(releases):
            for i, (label, meta, spec) in enumerate(r.pod_specs()):
                name = label.split("/", 1)[1]
                ports = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
                self.pods[name] = Endpoint(
                    name, f"10.244.{n + 1}.{i + 10}", NAMESPACE, meta["labels"], ports, frozenset({"cluster"})
                )
            self.policies += r.of_kind("NetworkPolicy")
            self.cilium += r.of_kind("CiliumNetworkPolicy")

    def pod(self, name: str) -> Endpoint:
        return self.pods[name]

    def _peer(self, peer: dict, policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if self.cni == "cilium" and other.entities & {"host", "kube-apiserver", "remote-node", "cluster"}:
                return False  # Cilium: CIDR rules select the world only
            return in_block(other.ip, peer["ipBlock"])
        if other.namespace is None:
            return False  # no pod: no selector matches it
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], NAMESPACES[other.namespace]):
                return False
        elif other.namespace != policy_ns:
            return False
        return selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port(ports: list | None, port: int, protocol: str, named: dict[str, int]) -> bool:
        if not ports:
            return True
        for p in ports:
            want = p.get("port")
            if p.get("protocol", "TCP") != protocol:
                continue
            if want is None or want == port or (isinstance(want, str) and named.get(want) == port):
                return True
        return False

    def _rules(self, ep: Endpoint, direction: str) -> list[tuple[str, dict]] | None:
        """(namespace, rule) of every policy selecting ep in that direction; None: none does."""
        if ep.namespace is None:
            return None
        selecting = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == ep.namespace
            and direction.capitalize() in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"]["podSelector"], ep.labels)
        ]
        cilium = [
            p
            for p in self.cilium
            if p["metadata"]["namespace"] == ep.namespace
            and direction in p["spec"]
            and selects(p["spec"]["endpointSelector"], ep.labels)
        ]
        if not selecting and not cilium:
            return None
        rules = [(p["metadata"]["namespace"], rule) for p in selecting for rule in p["spec"].get(direction) or []]
        rules += [(p["metadata"]["namespace"], {"cilium": rule}) for p in cilium for rule in p["spec"][direction]]
        return rules

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        egress = self._rules(src, "egress")
        if egress is not None and not any(self._egress(ns, rule, dst, port, protocol) for ns, rule in egress):
            return False
        ingress = self._rules(dst, "ingress")
        return ingress is None or any(
            self._port(rule.get("ports"), port, protocol, dst.ports)
            and (not rule.get("from") or any(self._peer(f, ns, src) for f in rule["from"]))
            for ns, rule in ingress
            if "cilium" not in rule
        )

    def _egress(self, ns: str, rule: dict, dst: Endpoint, port: int, protocol: str) -> bool:
        if "cilium" in rule:
            rule = rule["cilium"]
            if not set(rule.get("toEntities", [])) & dst.entities - {"world", "cluster"}:
                return False
            ports = [p for tp in rule.get("toPorts", []) for p in tp["ports"]]
            return not ports or any(int(p["port"]) == port and p.get("protocol", "TCP") == protocol for p in ports)
        return self._port(rule.get("ports"), port, protocol, {}) and (
            not rule.get("to") or any(self._peer(t, ns, dst) for t in rule["to"])
        )


def values_of(name: str) -> dict:
    return load_values(value_set_files()[name])


def release_pods(net: Network, prefix: str) -> dict[str, Endpoint]:
    """component -> pod of the release whose names start with prefix."""
    return {
        ep.labels["app.kubernetes.io/component"]: ep
        for name, ep in net.pods.items()
        if name.startswith(prefix + "-") and not name.startswith(prefix + "-test-")
    }


# --- the host through the NodePorts ------------------------------------------------------


@pytest.mark.parametrize("host", [NODE, NODE6], ids=["ipv4", "ipv6"])
def test_kind_admits_the_host_on_every_exposed_node_port(host: Endpoint) -> None:
    """make e2e asks Prometheus at 127.0.0.1:30090 from the host: the node's address after
    kube-proxy's masquerade, which only an ipBlock admits."""
    r = rendered_sets()["kind"]
    net = Network(r)
    exposed = {
        s["metadata"]["name"]: s for s in r.of_kind("Service") if s["spec"]["type"] == "NodePort"
    }
    assert set(exposed) == {"loopscope-gateway", "loopscope-prometheus", "loopscope-grafana"}
    for name, svc in exposed.items():
        pod = net.pod(name)
        for port in svc["spec"]["ports"]:
            if "nodePort" not in port:
                continue
            target = pod.ports[port["targetPort"]] if isinstance(port["targetPort"], str) else port["targetPort"]
            assert net.allowed(host, pod, target), f"host -> {name}:{target} (NodePort {port['nodePort']})"


def test_a_node_port_without_an_ip_block_is_blocked() -> None:
    """Negative control: the issue's kind values (prometheusFrom empty) block the host."""
    values = values_of("kind")
    values["networkPolicy"]["prometheusFrom"] = []
    net = Network(render(values))
    assert not net.allowed(NODE, net.pod("loopscope-prometheus"), 9090)
    # ... while a pod selector for "everyone in the namespace" still does not admit the node.
    values["networkPolicy"]["prometheusFrom"] = [{"podSelector": {}}, {"namespaceSelector": {}}]
    net = Network(render(values))
    assert not net.allowed(NODE, net.pod("loopscope-prometheus"), 9090)


# --- Prometheus -> the API server, per flavour ---------------------------------------------


@pytest.mark.parametrize(
    "value_set, cni, api, ok",
    [
        ("default", "kube-network-policies", NODE, True),  # kind: the API server on the node
        ("default", "kube-network-policies", NODE6, True),  # IPv6: ::/0
        ("default", "calico", REMOTE_API, True),
        ("default", "cilium", NODE, False),  # the issue: 0.0.0.0/0 does not select the host
        ("cilium", "cilium", NODE, True),  # toEntities: kube-apiserver
        ("cilium", "cilium", REMOTE_API, True),
        ("openshift", "ovn-kubernetes", NODE, True),  # port-only
        ("openshift", "ovn-kubernetes", REMOTE_API, True),
        ("nodelocal-dns-dualstack", "kube-network-policies", NODE, True),  # 172.18.0.0/16
        ("nodelocal-dns-dualstack", "kube-network-policies", NODE6, True),
        ("nodelocal-dns-dualstack", "kube-network-policies", REMOTE_API, False),  # not listed
    ],
)
def test_prometheus_reaches_the_api_server(value_set: str, cni: str, api: Endpoint, ok: bool) -> None:
    r = rendered_sets()[value_set]
    net = Network(r, cni=cni)
    (prometheus,) = [ep for ep in net.pods.values() if ep.labels["app.kubernetes.io/component"] == "prometheus"]
    assert net.allowed(prometheus, api, 6443) == ok
    # Nothing else may: the API is Prometheus's alone.
    for ep in net.pods.values():
        if ep is not prometheus:
            assert not net.allowed(ep, api, 6443), ep.name


def test_port_only_mode_has_no_destination() -> None:
    policy = rendered_sets()["openshift"].get("NetworkPolicy", "loopscope-prometheus")
    (api_rule,) = [e for e in policy["spec"]["egress"] if {p["port"] for p in e["ports"]} == {443, 6443}]
    assert "to" not in api_rule


# --- DNS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value_set, server, port, ok",
    [
        ("default", COREDNS, 53, True),
        ("default", NODELOCAL_DNS, 53, False),  # the issue: NodeLocal DNSCache is not a pod
        ("default", OPENSHIFT_DNS, 5353, False),
        ("nodelocal-dns-dualstack", NODELOCAL_DNS, 53, True),
        ("nodelocal-dns-dualstack", COREDNS, 53, True),
        ("openshift", OPENSHIFT_DNS, 5353, True),
        ("openshift", COREDNS, 53, False),
    ],
)
def test_dns(value_set: str, server: Endpoint, port: int, ok: bool) -> None:
    net = Network(rendered_sets()[value_set])
    clients = [ep for ep in net.pods.values() if ep.labels["app.kubernetes.io/component"] != "prometheus"]
    assert clients
    for client in clients:
        for protocol in ("UDP", "TCP"):
            assert net.allowed(client, server, port, protocol) == ok, (client.name, server.name, port, protocol)


def test_an_empty_dns_peer_list_allows_any_resolver() -> None:
    net = Network(render({"networkPolicy": {"dns": {"to": [], "ports": [53]}}}))
    gateway = net.pod("loopscope-gateway")
    assert net.allowed(gateway, NODELOCAL_DNS, 53, "UDP") and net.allowed(gateway, COREDNS, 53, "UDP")
    assert not net.allowed(gateway, OUTSIDE, 443)


# --- extra rules, IPv6, the Gateway's namespace ---------------------------------------------------


def test_extra_egress_per_component() -> None:
    net = Network(rendered_sets()["nodelocal-dns-dualstack"])
    grafana = net.pod("dual-grafana")
    assert net.allowed(grafana, OUTSIDE, 443) and net.allowed(grafana, OUTSIDE6, 443)
    assert not net.allowed(grafana, CORPORATE, 443), "except: 10.0.0.0/8"
    assert not net.allowed(grafana, OUTSIDE, 80)
    # Grafana's rule only.
    assert not net.allowed(net.pod("dual-gateway"), OUTSIDE, 443)


def test_extra_ingress_per_component() -> None:
    net = Network(rendered_sets()["openshift"])
    assert net.allowed(ROUTER, net.pod("loopscope-grafana"), 3000)
    assert not net.allowed(ROUTER, net.pod("loopscope-prometheus"), 9090)
    values = {"networkPolicy": {"extraIngress": {"backend": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16"}}]}]}}}
    net = Network(render(values))
    assert net.allowed(INGRESS_NGINX, net.pod("loopscope-backend"), 8080)
    assert not Network(render({})).allowed(INGRESS_NGINX, net.pod("loopscope-backend"), 8080)


def test_sentry_over_ipv6() -> None:
    net = Network(rendered_sets()["sentry-podmonitor-exposition"])
    for component in ("gateway", "worker-async", "backend"):
        assert net.allowed(net.pod(f"lab-{component}"), OUTSIDE6, 443)
        assert net.allowed(net.pod(f"lab-{component}"), OUTSIDE, 443)


def test_the_http_route_gateway_namespace_reaches_the_gateway() -> None:
    """gatewayFrom narrows the entry to ingress-nginx; the HTTPRoute's Gateway lives in
    gateway-system, whose proxies must reach the gateway too."""
    net = Network(rendered_sets()["hpa-ingress"])
    gateway = net.pod("loopscope-gateway")
    assert net.allowed(INGRESS_NGINX, gateway, 8080)
    assert net.allowed(GATEWAY_PROXY, gateway, 8080)
    assert not net.allowed(ROUTER, gateway, 8080)
    values = values_of("hpa-ingress")
    values["httpRoute"] = {"enabled": False}
    assert not Network(render(values)).allowed(GATEWAY_PROXY, Network(render(values)).pod("loopscope-gateway"), 8080)


# --- two releases in one namespace ---------------------------------------------------------


@pytest.fixture(scope="module")
def two_releases() -> tuple[Rendered, Rendered, Network]:
    a, b = render({}, release="blue"), render({}, release="green")
    return a, b, Network(a, b)


def test_two_releases_render_apart(two_releases: tuple[Rendered, Rendered, Network]) -> None:
    a, b, _ = two_releases
    names_a = {(d["kind"], d["metadata"]["name"]) for d in a.docs}
    names_b = {(d["kind"], d["metadata"]["name"]) for d in b.docs}
    assert not names_a & names_b, names_a & names_b


def test_two_releases_do_not_reach_each_other(two_releases: tuple[Rendered, Rendered, Network]) -> None:
    _, _, net = two_releases
    blue, green = release_pods(net, "blue-loopscope"), release_pods(net, "green-loopscope")
    assert set(blue) == set(green) and "prometheus" in blue
    # Each release's own flows work ...
    assert net.allowed(blue["prometheus"], blue["worker-async"], 9100)
    assert net.allowed(blue["loadgen"], blue["gateway"], 8080)
    assert net.allowed(blue["grafana"], blue["prometheus"], 9090)
    # ... and none crosses.
    for src, dst, port in (
        ("prometheus", "worker-async", 9100),
        ("prometheus", "gateway", 9100),
        ("loadgen", "gateway", 8080),
        ("gateway", "worker-async", 8080),
        ("worker-threadpool", "backend", 8080),
        ("grafana", "prometheus", 9090),
    ):
        assert not net.allowed(blue[src], green[dst], port), f"blue {src} -> green {dst}"
        assert not net.allowed(green[src], blue[dst], port), f"green {src} -> blue {dst}"
    for test in ("blue-loopscope-test-compare", "blue-loopscope-test-prometheus"):
        assert not net.allowed(net.pod(test), green["gateway"], 8080)
        assert not net.allowed(net.pod(test), green["prometheus"], 9090)


def relabel_keeps(config: dict, labels: dict[str, str]) -> bool:
    """Prometheus's keep/drop actions of the kubernetes-pods job on a target's labels."""
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods"]
    for rule in job["relabel_configs"]:
        if rule.get("action") not in ("keep", "drop"):
            continue
        value = ";".join(labels.get(l, "") for l in rule["source_labels"])
        matched = re.fullmatch(rule.get("regex", "(.*)"), value) is not None
        if (rule["action"] == "keep") != matched:
            return False
    return True


def test_each_prometheus_scrapes_its_own_release(two_releases: tuple[Rendered, Rendered, Network]) -> None:
    a, b, _ = two_releases
    config = yaml.safe_load(a.get("ConfigMap", "blue-loopscope-prometheus")["data"]["prometheus.yml"])

    def target(pod: dict) -> dict[str, str]:
        meta = pod["spec"]["template"]["metadata"]
        labels = {
            "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in meta["labels"].items()
        }
        labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] = meta["annotations"].get(
            "prometheus.io/scrape", ""
        )
        labels["__meta_kubernetes_pod_phase"] = "Running"
        return labels

    own = [target(d) for d in a.of_kind("Deployment") if "prometheus.io/scrape" in d["spec"]["template"]["metadata"]["annotations"]]
    other = [target(d) for d in b.of_kind("Deployment") if "prometheus.io/scrape" in d["spec"]["template"]["metadata"]["annotations"]]
    assert len(own) == 5 and len(other) == 5
    assert all(relabel_keeps(config, t) for t in own)
    assert not any(relabel_keeps(config, t) for t in other), "blue's Prometheus scrapes green's pods"
