"""Services through the real kubectl: cluster IPs, node ports, expose, apply round trips."""

from __future__ import annotations

import ipaddress
import random
import socket
import textwrap

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

CIDR = ipaddress.ip_network("10.96.0.0/12")


def row(kubectl: Kubectl, name: str, *args: str) -> list[str]:
    out = kubectl.run("get", "svc", name, *args).stdout.splitlines()
    assert out[0].split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"], out
    return out[1].split()


def free_node_port() -> int:
    for _ in range(200):
        port = random.randint(30000, 32767)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 30000-32767")


def service_yaml(name: str, kind: str = "NodePort", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          type: {kind}
          selector:
            app: {name}
          ports:
          - name: http
            port: 80
            targetPort: 8080
        """
    ) + textwrap.indent(textwrap.dedent(extra), "  ")


def test_create_service_nodeport_shows_ip_and_node_port(kubectl: Kubectl) -> None:
    kubectl.run("create", "service", "nodeport", "np1", "--tcp=80:8080")
    name, kind, cluster_ip, external, ports = row(kubectl, "np1")[:5]
    assert (name, kind, external) == ("np1", "NodePort", "<none>")
    assert ipaddress.ip_address(cluster_ip) in CIDR
    port, _, rest = ports.partition(":")
    node_port, _, protocol = rest.partition("/")
    assert port == "80" and protocol == "TCP" and 30000 <= int(node_port) <= 32767

    fixed = free_node_port()
    kubectl.run("create", "service", "nodeport", "np2", "--tcp=80:8080", f"--node-port={fixed}")
    assert row(kubectl, "np2")[4] == f"80:{fixed}/TCP"
    taken = kubectl.run(
        "create", "service", "nodeport", "np3", "--tcp=80:8080", f"--node-port={fixed}", check=False
    )
    assert taken.returncode != 0
    assert (
        f'Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: {fixed}: '
        "provided port is already allocated"
    ) in taken.stderr


def test_create_service_clusterip_and_headless(kubectl: Kubectl) -> None:
    kubectl.run("create", "service", "clusterip", "cip", "--tcp=5432:5432")
    assert ipaddress.ip_address(row(kubectl, "cip")[2]) in CIDR
    assert row(kubectl, "cip")[4] == "5432/TCP"
    kubectl.run("create", "service", "clusterip", "headless", "--clusterip=None", "--tcp=80:80")
    assert row(kubectl, "headless")[2] == "None"
    taken_ip = row(kubectl, "cip")[2]
    clash = kubectl.run(
        "create",
        "service",
        "clusterip",
        "clash",
        f"--clusterip={taken_ip}",
        "--tcp=80:80",
        check=False,
    )
    assert clash.returncode != 0
    assert f"failed to allocate IP {taken_ip}: provided IP is already allocated" in clash.stderr


def test_expose_deployment_as_node_port(kubectl: Kubectl) -> None:
    kubectl.run("create", "deployment", "exp", "--image=recon.local/web:1", "--port=8080")
    kubectl.run("expose", "deployment", "exp", "--port=80", "--target-port=8080", "--type=NodePort")
    svc = kubectl.json("get", "svc", "exp")
    assert svc["spec"]["selector"] == {"app": "exp"}
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
    assert svc["spec"]["ipFamilies"] == ["IPv4"]
    assert svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert svc["spec"]["internalTrafficPolicy"] == "Cluster"
    wide = kubectl.run("get", "svc", "exp", "-o", "wide").stdout
    assert "app=exp" in wide
    kubectl.run("delete", "deployment", "exp")


def test_apply_round_trips_keep_and_release_allocations(kubectl: Kubectl) -> None:
    manifest = service_yaml("applied")
    kubectl.run("apply", "-f", "-", input=manifest)
    first = kubectl.json("get", "svc", "applied")
    ip = first["spec"]["clusterIP"]
    node_port = first["spec"]["ports"][0]["nodePort"]

    # Re-applying (and diffing) the same manifest changes nothing.
    out = kubectl.run("apply", "-f", "-", input=manifest).stdout
    assert "service/applied unchanged" in out
    diff = kubectl.run("diff", "-f", "-", input=manifest, check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    # A changed manifest keeps the IP and the node port.
    changed = manifest.replace("targetPort: 8080", "targetPort: 9090")
    kubectl.run("apply", "-f", "-", input=changed)
    second = kubectl.json("get", "svc", "applied")
    assert second["spec"]["clusterIP"] == ip
    assert second["spec"]["ports"][0]["nodePort"] == node_port
    assert second["spec"]["ports"][0]["targetPort"] == 9090

    # Asking for another cluster IP is refused, as on Kubernetes.
    other_ip = "10.96.0.222" if ip != "10.96.0.222" else "10.96.0.223"
    refused = kubectl.run(
        "apply", "-f", "-", input=changed + f"  clusterIP: {other_ip}\n", check=False
    )
    assert refused.returncode != 0
    assert "spec.clusterIPs[0]: Invalid value" in refused.stderr
    assert "may not change once set" in refused.stderr

    # NodePort -> ClusterIP releases the node port: another Service may take it.
    kubectl.run("apply", "-f", "-", input=changed.replace("type: NodePort", "type: ClusterIP"))
    third = kubectl.json("get", "svc", "applied")
    assert "nodePort" not in third["spec"]["ports"][0]
    assert third["spec"]["clusterIP"] == ip
    assert row(kubectl, "applied")[4] == "80/TCP"
    kubectl.run("create", "service", "nodeport", "taker", "--tcp=80:80", f"--node-port={node_port}")
    assert row(kubectl, "taker")[4] == f"80:{node_port}/TCP"


def test_load_balancer_without_a_proxy_is_pending(kubectl: Kubectl) -> None:
    # `recon serve` answers LoadBalancer ingress only once the service proxy runs in it.
    kubectl.run("create", "service", "loadbalancer", "lb1", "--tcp=80:8080")
    _, kind, cluster_ip, external, ports = row(kubectl, "lb1")[:5]
    assert kind == "LoadBalancer" and ipaddress.ip_address(cluster_ip) in CIDR
    assert external in ("<pending>", "127.0.0.1")
    assert ports.startswith("80:") and ports.endswith("/TCP")
