"""UDP Services on `recon serve --runtime docker`, through the real kubectl: a pod asks a
UDP Service by cluster IP and by name and the answer comes back; the host asks a NodePort
Service on 127.0.0.1:<nodePort>/udp; a second ready pod joins the rotation; a Service
without a ready endpoint gives no answer (the client times out) and breaks nothing; a
restarted `recon serve` relays again.

The UDP server. The test image is busybox, and busybox has no UDP server (its `nc` speaks
TCP only, and this build has no `dnsd`, `ntpd` or `tftpd`; `udhcpd` answers by broadcast,
never to the sender's address, and `syslogd` only sends). Its `nslookup` is a good UDP
client though, so the pods behind the Service answer DNS: a dozen lines of Python, run by
the host's interpreter from a read-only hostPath mount of /usr (busybox is static, so the
container only needs the interpreter's loader links). Each pod answers every A query with
an address of its own (10.123.0.<n>), so an answer tells which pod gave it.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace
from tests.e2e.support import busybox_pod, wait_until

pytestmark = pytest.mark.e2e

# A DNS server on UDP 5353: every A query is answered with $ANSWER, anything else with
# no records (NOERROR), the question echoed back, as a server would.
SERVER = r"""
import os, socket, struct
answer = socket.inet_aton(os.environ["ANSWER"])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(512)
    end = 12
    while data[end]:
        end += data[end] + 1
    end += 5
    qtype = struct.unpack("!H", data[end - 4 : end - 2])[0]
    records = b""
    if qtype == 1:
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + answer
    header = data[:2] + b"\x81\x80" + data[4:6] + struct.pack("!HHH", 1 if records else 0, 0, 0)
    s.sendto(header + data[12:end] + records, peer)
"""

A, B = "10.123.0.1", "10.123.0.2"


def _server_pod(namespace: str, name: str, answer: str) -> dict[str, Any]:
    start = 'ln -s /usr/lib /lib; ln -s /usr/lib64 /lib64; exec /usr/bin/python3 -c "$SERVER"'
    pod = busybox_pod(
        namespace,
        name,
        ["sh", "-c", start],
        container={
            "env": [{"name": "SERVER", "value": SERVER}, {"name": "ANSWER", "value": answer}],
            "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}],
            "volumeMounts": [{"name": "usr", "mountPath": "/usr", "readOnly": True}],
            "readinessProbe": {
                "exec": {"command": ["nslookup", "-type=a", "ready.probe", "127.0.0.1:5353"]},
                "periodSeconds": 1,
            },
        },
        volumes=[{"name": "usr", "hostPath": {"path": "/usr", "type": "Directory"}}],
    )
    pod["metadata"]["labels"] = {"app": "dns"}
    return pod


def _service(namespace: str, name: str, app: str, **spec: Any) -> dict[str, Any]:
    port = {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [port], **spec},
    }


def _apply(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl.run("apply", "-f", "-", input=json.dumps(items))


def _ask_in_pod(kubectl: Kubectl, namespace: str, server: str) -> set[str]:
    """The addresses the UDP DNS server at `server` (from inside the client pod) gives for
    an A query; empty when nothing answered within a few seconds."""
    out = kubectl.run(
        "-n",
        namespace,
        "exec",
        "client",
        "--",
        "timeout",
        "6",
        "nslookup",
        "-type=a",
        "probe.example",
        server,
        check=False,
    ).stdout
    answers = out.split("Name:", 1)[1] if "Name:" in out else ""
    return {line.split()[1] for line in answers.splitlines() if line.startswith("Address:")}


def _query(qid: int) -> bytes:
    name = b"".join(bytes([len(label)]) + label for label in (b"probe", b"example")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)


def _ask_node_port(port: int, qid: int = 7) -> str | None:
    """An A query to 127.0.0.1:`port` over UDP from a fresh socket (a new session); the
    address answered, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(_query(qid), ("127.0.0.1", port))
        try:
            data, peer = sock.recvfrom(512)
        except TimeoutError:
            return None
    assert peer == ("127.0.0.1", port)  # the answer comes from the node port
    assert data[:2] == struct.pack("!H", qid) and struct.unpack("!H", data[6:8])[0] == 1
    return socket.inet_ntoa(data[-4:])


def _wait_ready(kubectl: Kubectl, namespace: str, *pods: str) -> None:
    kubectl.run(
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        *(f"pod/{p}" for p in pods),
        "--timeout=90s",
        timeout=120,
    )


def _gateways(namespace: str, service: str) -> list[str]:
    """The ids of the gateway containers of a Service."""
    found = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=recon.dev/service={namespace}.{service}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def test_udp_services_by_cluster_ip_name_and_node_port(docker_server: ReconServer) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("the UDP server pods run the host's /usr/bin/python3")
    kubectl, namespace = new_namespace(docker_server, "udp")
    _apply(
        kubectl,
        _service(namespace, "dns", "dns"),
        _service(namespace, "dns-np", "dns", type="NodePort"),
        _service(namespace, "nobody", "nobody"),
        _server_pod(namespace, "dns-a", A),
        busybox_pod(namespace, "client", ["sleep", "3600"]),
    )
    _wait_ready(kubectl, namespace, "dns-a", "client")
    pod = kubectl.json("-n", namespace, "get", "pod", "dns-a")
    published = json.loads(pod["metadata"]["annotations"]["recon.dev/published-ports"])
    assert set(published) == {"5353/UDP"}, published
    cluster_ip = kubectl.json("-n", namespace, "get", "service", "dns")["spec"]["clusterIP"]
    node_port = kubectl.json("-n", namespace, "get", "service", "dns-np")["spec"]["ports"][0][
        "nodePort"
    ]

    # (1) From another pod, by cluster IP and by name (short, qualified): the query reaches
    # the pod's UDP port 5353 through the Service's port 53, and the answer comes back.
    for server in (cluster_ip, "dns", f"dns.{namespace}", f"dns.{namespace}.svc.cluster.local"):
        answers = wait_until(
            lambda server=server: _ask_in_pod(kubectl, namespace, server),
            timeout=60,
            what=f"an answer through {server}",
            interval=1,
        )
        assert answers == {A}, (server, answers)

    # (2) From the host, the NodePort Service on 127.0.0.1:<nodePort>/udp.
    assert wait_until(lambda: _ask_node_port(node_port), timeout=30, what="node port") == A

    # (3) A second ready pod: new sessions are spread over both, by name and node port.
    _apply(kubectl, _server_pod(namespace, "dns-b", B))
    _wait_ready(kubectl, namespace, "dns-b")
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while seen != {A, B} and time.monotonic() < deadline:
        seen |= _ask_in_pod(kubectl, namespace, "dns")
    assert seen == {A, B}
    seen = set()
    deadline = time.monotonic() + 30
    while seen != {A, B} and time.monotonic() < deadline:
        seen.add(_ask_node_port(node_port) or "none")
    assert seen == {A, B}

    # dns-a goes: its sessions end with it, every new one is dns-b's.
    kubectl.run("-n", namespace, "delete", "pod", "dns-a", "--wait=true", timeout=90)

    def only_b() -> bool:
        return all(_ask_node_port(node_port, qid) == B for qid in range(4)) and (
            _ask_in_pod(kubectl, namespace, cluster_ip) == {B}
        )

    wait_until(only_b, timeout=60, what="only dns-b answering", interval=1)

    # (4) No ready endpoint: no answer (the client times out), and nothing else breaks.
    assert _ask_in_pod(kubectl, namespace, "nobody") == set()
    nobody_ip = kubectl.json("-n", namespace, "get", "service", "nobody")["spec"]["clusterIP"]
    assert _ask_in_pod(kubectl, namespace, nobody_ip) == set()
    assert _ask_in_pod(kubectl, namespace, "dns") == {B}
    assert _ask_node_port(node_port) == B
    # The UDP-only Services hold their cluster IP on a gateway that does nothing but wait.
    gateways = _gateways(namespace, "nobody")
    assert len(gateways) == 1

    # UDP is relayed by `recon serve` itself: restarted, it relays again from the gateways
    # it adopts (the same containers, not new ones).
    docker_server.stop()
    docker_server.start()
    assert wait_until(
        lambda: _ask_in_pod(kubectl, namespace, cluster_ip), timeout=60, what="UDP again"
    ) == {B}
    assert wait_until(lambda: _ask_node_port(node_port), timeout=30, what="node port") == B
    again = _gateways(namespace, "nobody")
    assert again == gateways
