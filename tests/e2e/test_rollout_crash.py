"""`kill -9` of `recon serve --runtime docker` in the middle of a rolling update: after the
restart the rollout finishes with the right number of pods and no orphans, neither in the
API nor on the engine (issue 5's acceptance test)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.embedded import agent_id_for
from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

JSONDict = dict[str, Any]

REPLICAS = 3
HASH_LABEL = "pod-template-hash"


def _manifest(namespace: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: web}}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: httpd
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          env: [{{name: VERSION, value: "1"}}]
          command: ["sh", "-c", "echo $VERSION > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
          ports: [{{containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /index.html, port: 8080}}
            initialDelaySeconds: 2
            periodSeconds: 1
"""


def _wait(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def _list(server: ReconServer, path: str) -> list[JSONDict]:
    status, body = server.request("GET", path)
    assert status == 200, body
    return list(body["items"])


def _engine_containers(agent: str) -> list[JSONDict]:
    """Every pod container (running or not) this server's node agent made on the engine
    (its Service gateways, e.g. the `kubernetes` Service's, are not pods')."""
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=recon.dev/agent={agent}",
            "--filter",
            "label=recon.dev/pod-uid",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    found = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, check=False
    ).stdout
    return list(json.loads(found or "[]"))


def _by_pod(containers: list[JSONDict]) -> dict[str, list[tuple[str, bool]]]:
    """pod uid -> [(role, running)] of the containers labelled with it."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for container in containers:
        labels = container["Config"]["Labels"] or {}
        uid = labels.get("recon.dev/pod-uid", "")
        role = labels.get("recon.dev/role", "")
        out.setdefault(uid, []).append((role, bool(container["State"]["Running"])))
    return out


def test_kill_9_mid_rollout_then_the_rollout_finishes_without_orphans(
    docker_server: ReconServer,
) -> None:
    namespace = f"crash-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    ns = ("-n", namespace)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_manifest(namespace))
    kubectl.run(*ns, "rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
    (old,) = _list(docker_server, rs_path)
    old_hash = old["metadata"]["labels"][HASH_LABEL]

    kubectl.run(*ns, "set", "env", "deployment/web", "VERSION=2")

    # Wait for the middle of the rollout: the new ReplicaSet has pods, the old one still too.
    def mid_rollout() -> bool:
        sets = _list(docker_server, rs_path)
        new = [rs for rs in sets if rs["metadata"]["labels"][HASH_LABEL] != old_hash]
        current = [rs for rs in sets if rs["metadata"]["labels"][HASH_LABEL] == old_hash]
        return bool(
            new
            and new[0]["spec"].get("replicas", 0) >= 2
            and current[0]["spec"].get("replicas", 0) >= 1
        )

    deadline = time.monotonic() + 120
    while not mid_rollout():
        assert time.monotonic() < deadline, "the rollout never reached its middle"
        time.sleep(0.05)
    docker_server.kill9()
    docker_server.start()

    kubectl.run(*ns, "rollout", "status", "deployment/web", "--timeout=180s", timeout=190)
    sets = _list(docker_server, rs_path)
    assert len(sets) == 2, [rs["metadata"]["name"] for rs in sets]
    (new,) = [rs for rs in sets if rs["metadata"]["labels"][HASH_LABEL] != old_hash]
    new_hash = new["metadata"]["labels"][HASH_LABEL]
    pods_path = f"/api/v1/namespaces/{namespace}/pods"

    def settled() -> bool:
        """Exactly `REPLICAS` pods, none terminating, all of the new template, all ready."""
        pods = _list(docker_server, pods_path)
        return len(pods) == REPLICAS and all(
            not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["labels"].get(HASH_LABEL) == new_hash
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in pods
        )

    _wait(settled, 60, f"{REPLICAS} ready pods of the new template, no others")
    pods = _list(docker_server, pods_path)
    for pod in pods:
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("ReplicaSet", new["metadata"]["name"])
        assert pod["spec"]["containers"][0]["env"] == [{"name": "VERSION", "value": "2"}]

    def old_scaled_down() -> bool:
        status, rs = docker_server.request("GET", f"{rs_path}/{old['metadata']['name']}")
        assert status == 200, rs
        return bool(rs["spec"]["replicas"] == 0 and rs["status"].get("replicas", 0) == 0)

    _wait(old_scaled_down, 30, "the old ReplicaSet at 0")
    deployment = kubectl.json(*ns, "get", "deployment", "web")
    status = deployment["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (3, 3, 3)
    assert status.get("availableReplicas") == 3 and not status.get("unavailableReplicas")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    # On the engine: one running sandbox and one running app container per live pod, and
    # nothing of any other pod (the ones deleted around the crash are cleaned up).
    agent = agent_id_for(docker_server.data_dir.resolve())
    want = {p["metadata"]["uid"]: [("container", True), ("sandbox", True)] for p in pods}

    def engine_matches() -> bool:
        found = _by_pod(_engine_containers(agent))
        return {uid: sorted(roles) for uid, roles in found.items()} == want

    try:
        _wait(engine_matches, 30, "one sandbox and one container per pod on the engine")
    except AssertionError:
        found = _by_pod(_engine_containers(agent))
        raise AssertionError(f"engine: {found}, pods: {sorted(want)}") from None
