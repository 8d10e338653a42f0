"""The cluster DNS on `recon serve --runtime docker`, asked by `nslookup` inside a pod: a
headless Service lists exactly its ready pods (and follows readiness and scaling), with
`publishNotReadyAddresses` all of them; StatefulSet pods have their own names; an
ExternalName Service is a CNAME; a ClusterIP Service answers with its cluster IP; unknown
cluster names are NXDOMAIN; names outside the cluster resolve as they do for a pod that
uses the node's resolver (`dnsPolicy: Default`, which the cluster DNS never sees)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"


def _manifests(namespace: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {namespace}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: everyone, namespace: {namespace}}}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: front, namespace: {namespace}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: pypi, namespace: {namespace}}}
spec: {{type: ExternalName, externalName: pypi.org}}
---
apiVersion: v1
kind: Service
metadata: {{name: alias, namespace: {namespace}}}
spec:
  type: ExternalName
  externalName: front.{namespace}.svc.cluster.local
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {namespace}}}
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: {IMAGE}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
          readinessProbe:
            httpGet: {{path: /index.html, port: 8080}}
            periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - {{name: sh, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: node-resolver, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: Default
  containers:
    - {{name: sh, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
"""


@dataclass
class Lookup:
    """What busybox `nslookup` printed, past its `Server:` header: addresses of the name
    asked (every search domain tried is printed; only answers count), CNAMEs, failures."""

    addresses: set[str] = field(default_factory=set)
    cnames: set[str] = field(default_factory=set)
    nxdomain: bool = False
    text: str = ""


def _nslookup(kubectl: Kubectl, namespace: str, pod: str, name: str) -> Lookup:
    out = kubectl.run(
        "-n", namespace, "exec", pod, "--", "sh", "-c", f"nslookup {name} 2>&1; true"
    ).stdout  # fmt: skip
    found = Lookup(text=out)
    lines = out.splitlines()
    for line in lines[2:]:  # `Server:` and its `Address:` first
        if line.startswith("Address:"):
            found.addresses.add(line.split(None, 1)[1].strip())
        elif "canonical name = " in line:
            found.cnames.add(line.split("canonical name = ", 1)[1].strip())
        elif "NXDOMAIN" in line:
            found.nxdomain = True
    return found


def _libc_address(kubectl: Kubectl, namespace: str, pod: str, name: str) -> str:
    """The one address the pod's libc resolver gives `name` (search list, ndots:5: busybox
    `nslookup` tries the search domains only for names without dots), via `ping`'s header."""
    out = kubectl.run(
        "-n", namespace, "exec", pod, "--", "sh", "-c", f"ping -c1 -W1 {name} 2>&1 | head -1"
    ).stdout  # fmt: skip
    return out.split("(", 1)[1].split(")", 1)[0] if out.startswith("PING") else out.strip()


def _eventually(what: str, check: Callable[[], Lookup], ok: Callable[[Lookup], bool]) -> Lookup:
    deadline = time.monotonic() + 45
    while True:
        found = check()
        if ok(found) or time.monotonic() > deadline:
            assert ok(found), f"{what}:\n{found.text}"
            return found
        time.sleep(0.5)


def _same_answers(what: str, ours: Callable[[], Lookup], theirs: Callable[[], Lookup]) -> None:
    """Both resolvers give the same addresses, within a few tries of each other."""
    pair: list[Lookup] = []

    def both() -> Lookup:
        pair[:] = [ours(), theirs()]
        return pair[0]

    _eventually(what, both, lambda found: found.addresses == pair[1].addresses)


def _ready_ips(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    pods = kubectl.json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
    return {
        pod["metadata"]["name"]: pod["status"].get("podIP", "")
        for pod in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions") or []
        )
    }


def test_cluster_dns_answers_like_kubernetes(docker_server: ReconServer) -> None:
    kubectl = Kubectl(docker_server)
    ns = f"dns-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(ns)
    kubectl.run("create", "namespace", ns)
    kubectl.run("apply", "-f", "-", input=_manifests(ns))
    kubectl.run("-n", ns, "rollout", "status", "statefulset/web", "--timeout=90s", timeout=100)
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s")

    def ask(name: str, pod: str = "client") -> Lookup:
        return _nslookup(kubectl, ns, pod, name)

    ips = _ready_ips(kubectl, ns)
    assert set(ips) == {"web-0", "web-1"}, ips
    both = {ips["web-0"], ips["web-1"]}

    # A headless Service: exactly its ready pods, under every name a pod may use.
    for name in ("web", f"web.{ns}.svc.cluster.local"):
        found = _eventually(name, lambda n=name: ask(n), lambda f: f.addresses == both)
        assert not found.cnames
    for name in (f"web.{ns}", f"web.{ns}.svc"):
        assert _libc_address(kubectl, ns, "client", name) in both, name
    # StatefulSet pods by name.
    for pod in ("web-0", "web-1"):
        for name in (f"{pod}.web", f"{pod}.web.{ns}.svc.cluster.local"):
            assert ask(name).addresses == {ips[pod]}, name

    # A ClusterIP Service: its cluster IP, nothing else.
    cluster_ip = kubectl.json("-n", ns, "get", "service", "front")["spec"]["clusterIP"]
    for name in ("front", f"front.{ns}.svc.cluster.local"):
        assert ask(name).addresses == {cluster_ip}, ask(name).text
    for name in (f"front.{ns}", f"front.{ns}.svc"):
        assert _libc_address(kubectl, ns, "client", name) == cluster_ip, name

    # ExternalName: a CNAME (to a cluster name: and its address too).
    alias = ask("alias")
    assert alias.cnames == {f"front.{ns}.svc.cluster.local"} and alias.addresses == {cluster_ip}
    external = ask(f"pypi.{ns}.svc.cluster.local")
    assert external.cnames == {"pypi.org"}, external.text
    # Names outside the cluster: as for a pod on the node's resolver, the way it was. (A
    # CDN's name may answer a different set from one query to the next: asked again.)
    for name in ("pypi.org", "nothing-here.invalid"):
        _same_answers(name, lambda n=name: ask(n), lambda n=name: ask(n, "node-resolver"))
    _same_answers(
        "pypi (ExternalName)",
        lambda: ask(f"pypi.{ns}.svc.cluster.local"),
        lambda: ask("pypi.org", "node-resolver"),
    )
    # Unknown cluster names.
    for name in (f"nothere.{ns}.svc.cluster.local", f"web-7.web.{ns}.svc.cluster.local"):
        found = ask(name)
        assert found.nxdomain and not found.addresses, found.text
    # The node's resolver knows nothing of the cluster (as on Kubernetes).
    assert ask(f"web.{ns}.svc.cluster.local", "node-resolver").addresses == set()

    # web-1 stops being ready: the headless Service lists web-0 only; a Service publishing
    # not-ready addresses keeps both. (web-1's own name stays in its namespace: the
    # engine answers it from the sandbox's alias; CoreDNS would drop it.)
    kubectl.run("-n", ns, "exec", "web-1", "--", "rm", "/tmp/index.html")
    kubectl.run("-n", ns, "wait", "--for=condition=Ready=false", "pod/web-1", "--timeout=30s")
    _eventually("web-1 not ready", lambda: ask("web"), lambda f: f.addresses == {ips["web-0"]})
    assert ask(f"web-1.web.{ns}.svc.cluster.local").addresses == {ips["web-1"]}
    assert ask("everyone").addresses == both

    # Scaled to three (web-1 ready again): all three.
    kubectl.run("-n", ns, "exec", "web-1", "--", "sh", "-c", "hostname > /tmp/index.html")
    kubectl.run("-n", ns, "scale", "statefulset/web", "--replicas=3")
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod/web-1", "--timeout=60s")
    kubectl.run("-n", ns, "rollout", "status", "statefulset/web", "--timeout=90s", timeout=100)
    three = _ready_ips(kubectl, ns)
    assert set(three) == {"web-0", "web-1", "web-2"}, three
    _eventually("scaled to 3", lambda: ask("web"), lambda f: f.addresses == set(three.values()))

    # Scaled to one: web-0 only.
    kubectl.run("-n", ns, "scale", "statefulset/web", "--replicas=1")
    _eventually("scaled to 1", lambda: ask("web"), lambda f: f.addresses == {three["web-0"]})
