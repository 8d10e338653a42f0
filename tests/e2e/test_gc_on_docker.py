"""Garbage collection on `recon serve --runtime docker`, driven by the real kubectl: what a
cascade removes goes all the way down to the Docker containers, what it orphans keeps
running, and a foreground deletion removes the children before the owner.

`test_kubectl.py` covers the API side of deletes with the controllers alone; these tests are
about what really runs.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.kubectl_watch import KubectlWatch

pytestmark = pytest.mark.e2e

JSONDict = dict[str, Any]


def _deployment(namespace: str, name: str, grace: int = 1) -> str:
    """Two pods whose container exits on SIGTERM after `grace` - 1 s (so a deletion takes a
    moment, but never runs into the kill)."""
    stop = f"sleep {grace - 1}; exit 0" if grace > 1 else "exit 0"
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: {grace + 2}
      containers:
        - name: app
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: [sh, -c, "trap '{stop}' TERM; while true; do sleep 1; done"]
"""


def _containers(uids: list[str], running_only: bool = False) -> list[str]:
    found: list[str] = []
    for uid in uids:
        flags = [] if running_only else ["-a"]
        result = subprocess.run(
            ["docker", "ps", "-q", *flags, "--filter", f"label=recon.dev/pod-uid={uid}"],
            capture_output=True,
            text=True,
            check=False,
        )
        found += result.stdout.split()
    return found


def _wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _start(docker_server: ReconServer, *names: str) -> tuple[Kubectl, str]:
    """A fresh namespace with the Deployments `names`, rolled out."""
    namespace = f"gc-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    for name in names:
        kubectl.run("apply", "-f", "-", input=_deployment(namespace, name))
    for name in names:
        kubectl.run(
            "-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=90s",
            timeout=120,
        )  # fmt: skip
    return kubectl, namespace


def _items(kubectl: Kubectl, namespace: str, kind: str, app: str) -> list[JSONDict]:
    items: list[JSONDict] = kubectl.json("-n", namespace, "get", kind, "-l", f"app={app}")["items"]
    return [i for i in items if not i["metadata"].get("deletionTimestamp")]


def _uids(items: list[JSONDict]) -> list[str]:
    return [str(i["metadata"]["uid"]) for i in items]


def test_background_deletion_removes_replicasets_pods_and_containers(
    docker_server: ReconServer,
) -> None:
    kubectl, namespace = _start(docker_server, "bg")
    pods = _uids(_items(kubectl, namespace, "pods", "bg"))
    assert len(pods) == 2
    assert len(_containers(pods, running_only=True)) == 4  # a sandbox and the app, each
    assert _items(kubectl, namespace, "replicasets", "bg")

    kubectl.run("-n", namespace, "delete", "deployment", "bg", "--timeout=60s")
    _wait(
        "the ReplicaSet, the pods and their containers to go",
        lambda: (
            not kubectl.json("-n", namespace, "get", "replicasets,pods")["items"]
            and not _containers(pods)
        ),
    )


def test_orphan_deletion_leaves_the_replicaset_and_its_pods_running(
    docker_server: ReconServer,
) -> None:
    kubectl, namespace = _start(docker_server, "orphan")
    pods = _uids(_items(kubectl, namespace, "pods", "orphan"))
    (rs,) = _items(kubectl, namespace, "replicasets", "orphan")
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    kubectl.run("-n", namespace, "delete", "deployment", "orphan", "--cascade=orphan")
    assert kubectl.run("-n", namespace, "get", "deployment", "orphan", check=False).returncode
    _wait(
        "the ReplicaSet to lose its ownerReference",
        lambda: (
            not _items(kubectl, namespace, "replicasets", "orphan")[0]["metadata"].get(
                "ownerReferences"
            )
        ),
    )
    time.sleep(3)  # a garbage collector that was going to delete them would have by now
    (kept,) = _items(kubectl, namespace, "replicasets", "orphan")
    assert kept["metadata"]["uid"] == rs["metadata"]["uid"]
    assert not kept["metadata"].get("ownerReferences")
    still = _items(kubectl, namespace, "pods", "orphan")
    assert sorted(_uids(still)) == sorted(pods)
    for pod in still:
        assert [r["uid"] for r in pod["metadata"]["ownerReferences"]] == [rs["metadata"]["uid"]]
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert len(_containers(pods, running_only=True)) == 4

    # The orphaned ReplicaSet is an ordinary one: deleting it takes its pods with it.
    kubectl.run("-n", namespace, "delete", "replicaset", rs["metadata"]["name"])
    _wait("the pods' containers to go", lambda: not _containers(pods))


def test_foreground_deletion_removes_the_children_before_the_owner(
    docker_server: ReconServer,
) -> None:
    namespace = f"gc-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    # The pods take ~3 s to stop, so the Deployment visibly waits for them.
    kubectl.run("apply", "-f", "-", input=_deployment(namespace, "fg", grace=3))
    kubectl.run(
        "-n", namespace, "rollout", "status", "deployment/fg", "--timeout=90s", timeout=120
    )  # fmt: skip
    pods = _uids(_items(kubectl, namespace, "pods", "fg"))
    (rs,) = _items(kubectl, namespace, "replicasets", "fg")
    watches = {
        kind: KubectlWatch(docker_server, namespace, kind)
        for kind in ("deployments", "replicasets", "pods")
    }
    try:
        for watch in watches.values():
            watch.wait_for(lambda es: bool(es), timeout=30)  # listed: the watch is on
        kubectl.run(
            "-n", namespace, "delete", "deployment", "fg", "--cascade=foreground", "--wait=false"
        )  # fmt: skip
        waiting = kubectl.json("-n", namespace, "get", "deployment", "fg")
        assert waiting["metadata"]["deletionTimestamp"]
        assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
        deployment_gone = watches["deployments"].wait_for(
            lambda es: any(e.type == "DELETED" for e in es), timeout=90
        )
        # The children are gone, containers too, as soon as the owner is.
        assert not _containers(pods)
        assert not kubectl.json("-n", namespace, "get", "replicasets,pods")["items"]
    finally:
        for watch in watches.values():
            watch.stop()
    owner_deleted = next(e.revision for e in deployment_gone if e.type == "DELETED")
    # While the owner waited, it carried the foregroundDeletion finalizer.
    assert any(
        e.deleting and "foregroundDeletion" in (e.object["metadata"].get("finalizers") or [])
        for e in deployment_gone
    )
    children = [
        e
        for kind in ("replicasets", "pods")
        for e in watches[kind].snapshot()
        if e.type == "DELETED"
    ]
    assert {e.object["metadata"]["uid"] for e in children} == {rs["metadata"]["uid"], *pods}
    assert all(e.revision < owner_deleted for e in children), [
        *watches["deployments"].summary(),
        *watches["replicasets"].summary(),
        *watches["pods"].summary(),
    ]


def test_deleting_a_namespace_removes_everything_in_it(docker_server: ReconServer) -> None:
    kubectl, namespace = _start(docker_server, "one", "two")
    kubectl.run(
        "-n", namespace, "run", "solo", "--image=recon.local/busybox:latest",
        "--image-pull-policy=IfNotPresent", "--", "sh", "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    )  # fmt: skip
    kubectl.run("-n", namespace, "create", "configmap", "settings", "--from-literal=a=b")
    # A finalizer someone else owns holds its object, and so the namespace, until removed.
    kubectl.run("-n", namespace, "create", "configmap", "held", "--from-literal=a=b")
    kubectl.run(
        "-n", namespace, "patch", "configmap", "held", "--type=merge",
        "-p", '{"metadata": {"finalizers": ["example.com/hold"]}}',
    )  # fmt: skip
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/solo", "--timeout=60s")
    pods = _uids([p for p in kubectl.json("-n", namespace, "get", "pods")["items"]])
    assert len(pods) == 5
    assert len(_containers(pods, running_only=True)) == 10

    kubectl.run("delete", "namespace", namespace, "--wait=false")
    _wait(
        "everything but the held ConfigMap, and the containers, to go",
        lambda: (
            not _containers(pods)
            and [
                (i["kind"], i["metadata"]["name"])
                for i in kubectl.json("-n", namespace, "get", "all,configmaps")["items"]
            ]
            == [("ConfigMap", "held")]
        ),
        timeout=120,
    )
    terminating = kubectl.json("get", "namespace", namespace)
    assert terminating["status"]["phase"] == "Terminating"
    conditions = {c["type"]: c for c in terminating["status"]["conditions"]}
    assert conditions["NamespaceFinalizersRemaining"]["status"] == "True"
    assert (
        "example.com/hold in 1 resource instances"
        in (conditions["NamespaceFinalizersRemaining"]["message"])
    )
    kubectl.run(
        "-n", namespace, "patch", "configmap", "held", "--type=merge",
        "-p", '{"metadata": {"finalizers": null}}',
    )  # fmt: skip
    _wait(
        "the namespace to go",
        lambda: kubectl.run("get", "namespace", namespace, check=False).returncode != 0,
    )
    for kind in ("deployments", "replicasets", "pods", "configmaps"):
        listed = kubectl.json("-n", namespace, "get", kind)["items"]
        assert not listed, (kind, [i["metadata"]["name"] for i in listed])
