"""The node agent's acceptance on a real dockerd with locally built busybox images."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.clock import ManualClock
from tests.integration.node.docker_node import (
    BUSYBOX,
    DockerNode,
    condition,
    container_status,
    docker_node,
    running_and_ready,
)
from tests.integration.runtime.conftest import (  # noqa: F401 - fixture imported for use here
    local_registry,
    requires_docker,
)

pytestmark = [pytest.mark.integration, requires_docker]

JSONDict = dict[str, Any]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[DockerNode]:
    async for n in docker_node(tmp_path):
        yield n


@pytest.fixture
async def manual_node(tmp_path: Path) -> AsyncIterator[DockerNode]:
    async for n in docker_node(tmp_path, ManualClock()):
        yield n


def pod(name: str, spec: JSONDict) -> JSONDict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def busybox(name: str, script: str, **extra: Any) -> JSONDict:
    return {
        "name": name,
        "image": BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        **extra,
    }


def http_get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
        return str(response.read().decode())


async def test_multi_container_pod_shares_localhost(node: DockerNode) -> None:
    await node.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "site"},
            "data": {"index.html": "hello from httpd\n"},
        }
    )
    await node.create(
        pod(
            "web",
            {
                "containers": [
                    {
                        **busybox("httpd", "exec httpd -f -p 8080 -h /www"),
                        "ports": [{"containerPort": 8080}],
                        "volumeMounts": [{"name": "site", "mountPath": "/www"}],
                    },
                    busybox(
                        "sidecar",
                        "until wget -q -O- http://127.0.0.1:8080/index.html; do sleep 0.2; done;"
                        " exec sleep 3600",
                    ),
                ],
                "volumes": [{"name": "site", "configMap": {"name": "site"}}],
            },
        )
    )
    web = await node.wait_pod("web", running_and_ready)
    (sidecar,) = await node.records(web, "sidecar")

    async def fetched() -> bool:
        return "hello from httpd" in await node.logs(sidecar)

    await node.eventually(fetched, what="the sidecar fetched over localhost")
    ports = json.loads(web["metadata"]["annotations"]["recon.dev/published-ports"])
    # The published port reaches the pod from the host, on 127.0.0.1 only.
    assert "hello from httpd" in await asyncio.to_thread(http_get, ports["8080/TCP"], "/index.html")
    assert container_status(web, "httpd")["containerID"].startswith("docker://")
    assert web["status"]["podIP"]


async def test_configmap_and_secret_as_env_and_files_secret_on_tmpfs(node: DockerNode) -> None:
    await node.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"greeting": "hello", "app.conf": "level=1\n"},
        }
    )
    await node.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        }
    )
    cm_ref = {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}
    secret_ref = {"secretKeyRef": {"name": "creds", "key": "password"}}
    await node.create(
        pod(
            "conf",
            {
                "containers": [
                    busybox(
                        "app",
                        "exec sleep 3600",
                        env=[
                            {"name": "GREETING", "valueFrom": cm_ref},
                            {"name": "PASSWORD", "valueFrom": secret_ref},
                        ],
                        volumeMounts=[
                            {"name": "cfg", "mountPath": "/etc/app"},
                            {"name": "creds", "mountPath": "/etc/creds"},
                        ],
                    )
                ],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "creds", "secret": {"secretName": "creds"}},
                ],
            },
        )
    )
    conf = await node.wait_pod("conf", running_and_ready)
    assert await node.exec(conf, "app", "sh", "-c", "echo $GREETING:$PASSWORD") == (
        0,
        "hello:s3cret\n",
    )
    assert await node.exec(conf, "app", "cat", "/etc/app/app.conf") == (0, "level=1\n")
    assert await node.exec(conf, "app", "cat", "/etc/creds/password") == (0, "s3cret")
    _, mounts = await node.exec(conf, "app", "cat", "/proc/mounts")
    secret_mount = [line for line in mounts.splitlines() if " /etc/creds " in line]
    assert secret_mount and secret_mount[0].split()[2] == "tmpfs", mounts
    assert " ro," in secret_mount[0] or secret_mount[0].split()[3].startswith("ro")
    # A ConfigMap change reaches the mounted file.
    await node.client.patch(
        "v1", "ConfigMap", "cfg", {"data": {"app.conf": "level=2\n"}}, namespace="default"
    )

    async def updated() -> bool:
        return await node.exec(conf, "app", "cat", "/etc/app/app.conf") == (0, "level=2\n")

    await node.eventually(updated, what="the ConfigMap update in the file")


async def test_crash_loop_back_off_grows(manual_node: DockerNode) -> None:
    node = manual_node
    clock = node.clock
    assert isinstance(clock, ManualClock)
    await node.create(
        pod("crash", {"containers": [busybox("c", 'echo "run at $(date +%s%N)"; exit 1')]})
    )

    def looping(restarts: int) -> Any:
        def check(p: JSONDict) -> bool:
            status = container_status(p, "c")
            waiting = status.get("state", {}).get("waiting", {})
            return status.get("restartCount") == restarts and waiting.get("reason") == (
                "CrashLoopBackOff"
            )

        return check

    crash = await node.wait_pod("crash", looping(1))
    status = container_status(crash, "c")
    assert "back-off 10s" in status["state"]["waiting"]["message"]
    assert status["lastState"]["terminated"]["exitCode"] == 1
    clock.advance(11)
    crash = await node.wait_pod("crash", looping(2))
    assert "back-off 20s" in container_status(crash, "c")["state"]["waiting"]["message"]
    clock.advance(15)
    await asyncio.sleep(1)
    assert container_status(await node.pod("crash"), "c")["restartCount"] == 2
    clock.advance(6)
    crash = await node.wait_pod("crash", looping(3))
    assert "back-off 40s" in container_status(crash, "c")["state"]["waiting"]["message"]
    # The previous run is kept for `logs --previous`: two records, each with its output.
    records = await node.records(crash, "c")
    assert len(records) == 2
    outputs = [await node.logs(r) for r in records]
    assert all(o.startswith("run at ") for o in outputs) and outputs[0] != outputs[1]


async def test_liveness_restarts_and_readiness_flips_ready(node: DockerNode) -> None:
    probe = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
    await node.create(
        pod(
            "probed",
            {
                "containers": [
                    {
                        **busybox("web", "echo ok > /tmp/ready; exec httpd -f -p 80 -h /tmp"),
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}, **probe},
                    }
                ]
            },
        )
    )
    probed = await node.wait_pod("probed", running_and_ready)
    assert await node.exec(probed, "web", "rm", "/tmp/ready") == (0, "")
    probed = await node.wait_pod("probed", lambda p: condition(p, "Ready") == "False")
    assert container_status(probed, "web")["restartCount"] == 0
    assert await node.exec(probed, "web", "sh", "-c", "echo ok > /tmp/ready") == (0, "")
    probed = await node.wait_pod("probed", running_and_ready)
    assert container_status(probed, "web")["restartCount"] == 0

    await node.create(
        pod(
            "doomed",
            {
                "containers": [
                    {
                        **busybox("app", "exec sleep 3600"),
                        "livenessProbe": {"tcpSocket": {"port": 9999}, **probe},
                        "ports": [{"containerPort": 9999}],
                    }
                ],
                "terminationGracePeriodSeconds": 1,
            },
        )
    )
    doomed = await node.wait_pod(
        "doomed", lambda p: container_status(p, "app").get("restartCount", 0) >= 1, timeout=40
    )
    events = await node.client.list("v1", "Event", "default")
    unhealthy = [e for e in events.items if e["reason"] == "Unhealthy"]
    assert unhealthy and "Liveness probe failed" in unhealthy[0]["message"]
    assert container_status(doomed, "app")["lastState"]["terminated"]["exitCode"] != 0


@pytest.fixture
def pushed_image(local_registry: str | None) -> Iterator[str]:  # noqa: F811
    if local_registry is None:
        pytest.skip("no local registry (Debian's docker-registry) could be started")
    ref = f"{local_registry}/recon-test/node-busybox:{uuid.uuid4().hex[:10]}"
    run = ["docker"]
    subprocess.run([*run, "tag", BUSYBOX, ref], check=True, capture_output=True)
    try:
        subprocess.run([*run, "push", ref], check=True, capture_output=True)
    finally:
        subprocess.run([*run, "rmi", ref], check=True, capture_output=True)
    try:
        yield ref
    finally:
        subprocess.run([*run, "rmi", "-f", ref], check=False, capture_output=True)


async def test_pull_from_local_registry_and_missing_image(
    node: DockerNode, pushed_image: str
) -> None:
    await node.create(
        pod(
            "pulled",
            {
                "containers": [
                    {
                        "name": "c",
                        "image": pushed_image,
                        "imagePullPolicy": "Always",
                        "command": ["sleep", "3600"],
                    }
                ]
            },
        )
    )
    pulled = await node.wait_pod("pulled", running_and_ready)
    assert container_status(pulled, "c")["imageID"]
    missing = pushed_image.rpartition(":")[0] + ":does-not-exist"
    await node.create(pod("missing", {"containers": [{"name": "c", "image": missing}]}))

    def waiting(reason: str) -> Any:
        return lambda p: (
            container_status(p, "c").get("state", {}).get("waiting", {}).get("reason") == reason
        )

    await node.wait_pod("missing", waiting("ErrImagePull"))
    failed = await node.wait_pod("missing", waiting("ImagePullBackOff"))
    assert failed["status"]["phase"] == "Pending"
    events = await node.client.list("v1", "Event", "default")
    assert any(e["reason"] == "Failed" and missing in e["message"] for e in events.items)


async def test_deleting_a_pod_runs_pre_stop_and_removes_its_containers(node: DockerNode) -> None:
    await node.create(
        pod(
            "graceful",
            {
                "terminationGracePeriodSeconds": 5,
                "containers": [
                    {
                        **busybox("c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"),
                        "lifecycle": {
                            "preStop": {"exec": {"command": ["sh", "-c", "echo bye > /tmp/x"]}}
                        },
                    }
                ],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        )
    )
    graceful = await node.wait_pod("graceful", running_and_ready)
    uid = graceful["metadata"]["uid"]
    await node.client.delete("v1", "Pod", "graceful", "default")

    async def gone() -> bool:
        listed = await node.client.list("v1", "Pod", "default")
        return not any(p["metadata"]["uid"] == uid for p in listed.items)

    await node.eventually(gone, timeout=15, what="the pod gone after a graceful stop")
    assert node.runtime is not None
    assert not await node.runtime.list_containers({"recon.dev/pod-uid": uid})
    assert not await node.runtime.list_volumes({"recon.dev/pod-uid": uid})
