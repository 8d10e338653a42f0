"""Pods on the host's namespaces and with their own DNS settings, with the real kubectl on
Docker: `hostNetwork` (the node's address and host name, container ports as host ports, a
second pod wanting the same port kept Pending by the scheduler, a ClusterIP Service in
front of it), `hostPID`, `dnsConfig`, `dnsPolicy: None` and `ClusterFirstWithHostNet`."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, free_port, new_namespace
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"


def _pod(namespace: str, name: str, command: str, **spec: object) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", command],
                }
            ],
            **spec,
        },
    }
    return json.dumps(body)


def _ready(kubectl: Kubectl, namespace: str, name: str) -> None:
    kubectl.run(
        "-n", namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s", timeout=70
    )


def _exec(kubectl: Kubectl, namespace: str, name: str, command: str) -> str:
    return kubectl.run("-n", namespace, "exec", name, "--", "sh", "-c", command).stdout


def test_a_host_network_pod_serves_on_the_hosts_ports(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "hostnet")
    port = free_port()
    web = json.loads(
        _pod(
            ns,
            "web",
            f"mkdir -p /www && hostname > /www/index.html && exec httpd -f -p {port} -h /www",
            hostNetwork=True,
        )
    )
    web["spec"]["containers"][0]["ports"] = [{"containerPort": port}]
    web["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": port},
        "periodSeconds": 1,
    }
    kubectl.run("apply", "-f", "-", input=json.dumps(web))
    _ready(kubectl, ns, "web")
    pod = kubectl.json("-n", ns, "get", "pod", "web")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == port
    # on the host's loopback, with the node's host name
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        assert resp.read().decode().strip() == socket.gethostname()

    # the same host port again: the scheduler keeps the second pod off the node
    twin = json.loads(json.dumps(web))
    twin["metadata"]["name"] = "twin"
    kubectl.run("apply", "-f", "-", input=json.dumps(twin))

    def unschedulable() -> str:
        status = kubectl.json("-n", ns, "get", "pod", "twin").get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("reason") == "Unschedulable":
                return str(condition.get("message"))
        return ""

    message = wait_until(unschedulable, what="twin unschedulable")
    assert message.startswith(
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    )

    # a ClusterIP Service in front of it, reached from an ordinary pod
    kubectl.run("-n", ns, "expose", "pod", "web", "--port=80", f"--target-port={port}")
    kubectl.run("apply", "-f", "-", input=_pod(ns, "client", "sleep 3600"))
    _ready(kubectl, ns, "client")

    def fetched() -> str:
        # nc, not busybox's wget: the static wget crashes on some failed connections
        request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80"
        result = kubectl.run("-n", ns, "exec", "client", "--", "sh", "-c", request, check=False)
        head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
        return body.strip() if " 200 " in head else ""

    assert wait_until(fetched, what="the Service answered") == socket.gethostname()

    # once the first pod is gone its port is free again
    kubectl.run("-n", ns, "delete", "pod", "web", "--wait=true", timeout=60)
    wait_until(
        lambda: kubectl.json("-n", ns, "get", "pod", "twin")["spec"].get("nodeName"),
        what="twin scheduled once web released the port",
    )


def test_host_pid_and_dns_settings(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "hostpid")
    pods = [
        _pod(ns, "pid", "sleep 3600", hostPID=True, hostIPC=True),
        _pod(
            ns,
            "tuned",
            "sleep 3600",
            dnsConfig={
                "searches": ["extra.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            },
        ),
        _pod(
            ns,
            "own",
            "sleep 3600",
            dnsPolicy="None",
            dnsConfig={"nameservers": ["192.0.2.53"], "searches": ["own.example"]},
        ),
        _pod(ns, "hostdns", "sleep 3600", hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"),
    ]
    items = [json.loads(p) for p in pods]
    kubectl.run(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    for name in ("pid", "tuned", "own", "hostdns"):
        _ready(kubectl, ns, name)

    # the host's processes, this test's among them, and the host's shared memory
    assert "python" in _exec(kubectl, ns, "pid", f"tr '\\0' ' ' < /proc/{os.getpid()}/cmdline")
    shared = Path("/dev/shm") / f"recon-e2e-{ns}"
    shared.write_text("from the host")
    try:
        assert _exec(kubectl, ns, "pid", f"cat /dev/shm/{shared.name}") == "from the host"
    finally:
        shared.unlink()

    tuned = _exec(kubectl, ns, "tuned", "cat /etc/resolv.conf")
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local extra.example" in tuned
    assert "ndots:2" in tuned and "edns0" in tuned and "ndots:5" not in tuned

    own = _exec(kubectl, ns, "own", "cat /etc/resolv.conf")
    assert "search own.example" in own and "cluster.local" not in own

    # on the host's network, yet the cluster DNS first: its server and search list
    hostdns = _exec(kubectl, ns, "hostdns", "cat /etc/resolv.conf").splitlines()
    assert hostdns[hostdns.index("nameserver 10.111.0.1") - 1] == (
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local"
    )
    assert "options ndots:5" in hostdns
