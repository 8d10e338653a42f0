"""StatefulSets and DaemonSets on `recon serve --runtime docker`, driven by the real kubectl.

The order of pod events comes from a `kubectl get pods -w` running beside the test (see
`kubectl_watch`): web-1 must not exist before web-0 is Ready, scale-down and rolling updates
go from the highest ordinal down. A pod's data lives in the Docker volume of its claim, which
outlives the pod, a scale-down, and goes with the claim.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.kubectl_watch import KubectlWatch, WatchEvent

pytestmark = pytest.mark.e2e

JSONDict = dict[str, Any]


def _statefulset(namespace: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {namespace}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {namespace}}}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: OrderedReady
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command:
            - sh
            - -c
            - hostname >> /data/log; trap 'exit 0' TERM; while true; do sleep 1; done
          volumeMounts: [{{name: data, mountPath: /data}}]
          readinessProbe:
            exec: {{command: [cat, /data/log]}}
            initialDelaySeconds: 1
            periodSeconds: 1
  volumeClaimTemplates:
    - metadata: {{name: data}}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {{requests: {{storage: 10Mi}}}}
"""


def _docker(*args: str) -> list[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    return result.stdout.split()


def _claim_volumes(namespace: str, claim: str) -> list[str]:
    return _docker("volume", "ls", "-q", "--filter", f"label=recon.dev/pvc={namespace}.{claim}")


def _pod_containers(uid: str, running_only: bool = False) -> list[str]:
    flags = [] if running_only else ["-a"]
    return _docker("ps", "-q", *flags, "--filter", f"label=recon.dev/pod-uid={uid}")


def _wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Until `check()` is true; an AssertionError it raises means "not yet"."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except AssertionError as exc:
            last = f": {exc}"
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{last}")


def _revision(events: list[WatchEvent], name: str, test: Callable[[WatchEvent], bool]) -> int:
    """The revision of the first event about `name` that passes `test` (AssertionError when
    there is none)."""
    for event in events:
        if event.name == name and test(event):
            return event.revision
    raise AssertionError(f"no such event for {name}: {[e.type for e in events if e.name == name]}")


def _await_watch(kubectl: Kubectl, namespace: str, watch: KubectlWatch) -> None:
    """Return once `watch` is listening: a pod that fits no node (so never runs) shows up
    in it, and is deleted again."""
    kubectl.run(
        "-n", namespace, "run", "marker", "--image=recon.local/busybox:latest",
        '--overrides={"spec": {"nodeSelector": {"recon.test/no-such-node": "true"}}}',
    )  # fmt: skip
    watch.wait_for(lambda events: any(e.name == "marker" for e in events), timeout=30)
    kubectl.run("-n", namespace, "delete", "pod", "marker", "--timeout=30s")


def _ready_pod(kubectl: Kubectl, namespace: str, name: str, not_uid: str = "") -> JSONDict:
    """Pod `name` once it is Ready (a pod other than `not_uid`)."""
    found: list[JSONDict] = []

    def ready() -> bool:
        result = kubectl.run("-n", namespace, "get", "pod", name, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        pod = json.loads(result.stdout)
        if pod["metadata"]["uid"] == not_uid or pod["metadata"].get("deletionTimestamp"):
            return False
        found[:] = [pod]
        return WatchEvent("MODIFIED", pod).ready

    _wait(f"pod {name} to be Ready", ready)
    return found[0]


def _claims(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    listed = kubectl.json("-n", namespace, "get", "pvc")["items"]
    assert all(c["status"]["phase"] == "Bound" for c in listed), listed
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in listed}


def _uids(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    listed = kubectl.json("-n", namespace, "get", "pods")["items"]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in listed}


def _log(kubectl: Kubectl, namespace: str, pod: str) -> list[str]:
    return kubectl.run("-n", namespace, "exec", pod, "--", "cat", "/data/log").stdout.split()


def test_statefulset_pods_come_up_in_order_and_keep_their_volume_data(
    docker_server: ReconServer,
) -> None:
    namespace = f"sts-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    rollout = ("-n", namespace, "rollout", "status", "statefulset/web", "--timeout=120s")
    watch = KubectlWatch(docker_server, namespace, "pods")
    try:
        _await_watch(kubectl, namespace, watch)
        kubectl.run("apply", "-f", "-", input=_statefulset(namespace))
        kubectl.run(*rollout, timeout=150)

        # OrderedReady: each pod is created only once the one below it is Ready.
        events = watch.wait_for(lambda es: any(e.name == "web-2" and e.ready for e in es))
        for ordinal in (1, 2):
            below_ready = _revision(events, f"web-{ordinal - 1}", lambda e: e.ready)
            created = _revision(events, f"web-{ordinal}", lambda e: True)
            assert below_ready < created, watch.summary()
        pods = kubectl.json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
        assert sorted(p["metadata"]["name"] for p in pods) == ["web-0", "web-1", "web-2"]
        for ordinal in range(3):
            assert _log(kubectl, namespace, f"web-{ordinal}") == [f"web-{ordinal}"]
        claims = _claims(kubectl, namespace)
        assert set(claims) == {"data-web-0", "data-web-1", "data-web-2"}
        for claim in claims:
            # provisioned in the default class: the PersistentVolume names the engine volume
            bound = kubectl.json("-n", namespace, "get", "pvc", claim)["spec"]["volumeName"]
            volume = kubectl.json("get", "pv", bound)["spec"]["csi"]["volumeHandle"]
            assert _claim_volumes(namespace, claim) == [volume], claim

        # A deleted pod comes back under its name, on its claim, with its data.
        old = kubectl.json("-n", namespace, "get", "pod", "web-0")
        kubectl.run("-n", namespace, "delete", "pod", "web-0", "--timeout=60s")
        _wait(
            "the old web-0's containers to go", lambda: not _pod_containers(old["metadata"]["uid"])
        )
        new = _ready_pod(kubectl, namespace, "web-0", not_uid=old["metadata"]["uid"])
        volumes = {v["name"]: v for v in new["spec"]["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "data-web-0"
        assert _claims(kubectl, namespace) == claims
        assert _log(kubectl, namespace, "web-0") == ["web-0", "web-0"]

        # Scale down: the highest ordinal goes first, the claims stay.
        mark = len(watch.snapshot())
        kubectl.run("-n", namespace, "scale", "statefulset/web", "--replicas=1")
        events = watch.wait_for(
            lambda es: {e.name for e in es[mark:] if e.type == "DELETED"} >= {"web-1", "web-2"}
        )[mark:]
        web2_gone = _revision(events, "web-2", lambda e: e.type == "DELETED")
        web1_stopping = _revision(events, "web-1", lambda e: e.deleting or e.type == "DELETED")
        assert web2_gone < web1_stopping, watch.summary()
        assert _claims(kubectl, namespace) == claims
        for claim in claims:
            assert len(_claim_volumes(namespace, claim)) == 1, claim

        # Scale up again: web-2 finds its old data.
        kubectl.run("-n", namespace, "scale", "statefulset/web", "--replicas=3")
        kubectl.run(*rollout, timeout=150)
        assert _log(kubectl, namespace, "web-2") == ["web-2", "web-2"]

        # Deleted with --cascade=orphan and applied again: the new set adopts the running
        # pods (and the revision they run), it replaces none of them.
        running = _uids(kubectl, namespace)
        kubectl.run("-n", namespace, "delete", "statefulset", "web", "--cascade=orphan")
        kubectl.run("apply", "-f", "-", input=_statefulset(namespace))
        kubectl.run(*rollout, timeout=150)
        new_set = kubectl.json("-n", namespace, "get", "statefulset", "web")["metadata"]["uid"]
        _wait(
            "the pods to be adopted",
            lambda: all(
                [r["uid"] for r in p["metadata"].get("ownerReferences") or []] == [new_set]
                for p in kubectl.json("-n", namespace, "get", "pods")["items"]
            ),
        )
        assert _uids(kubectl, namespace) == running

        # A rolling update replaces web-2, then web-1, then web-0, each once the one above
        # it is Ready again.
        mark = len(watch.snapshot())
        kubectl.run("-n", namespace, "rollout", "restart", "statefulset/web")
        kubectl.run(*rollout, timeout=150)
        events = watch.snapshot()[mark:]
        stopping = {
            n: _revision(events, n, lambda e: e.deleting or e.type == "DELETED")
            for n in ("web-0", "web-1", "web-2")
        }
        assert stopping["web-2"] < stopping["web-1"] < stopping["web-0"], watch.summary()
        for upper, lower in (("web-2", "web-1"), ("web-1", "web-0")):
            after = stopping[upper]
            back = _revision(events, upper, lambda e, t=after: e.ready and e.revision > t)
            assert back < stopping[lower], watch.summary()
        assert _claims(kubectl, namespace) == claims
        assert _log(kubectl, namespace, "web-1") == ["web-1", "web-1", "web-1"]
    finally:
        watch.stop()

    # Deleting the namespace deletes the claims, and their volumes with them.
    kubectl.run("delete", "namespace", namespace, "--timeout=120s", timeout=150)
    _wait(
        "the claims' volumes to be removed",
        lambda: not any(_claim_volumes(namespace, c) for c in claims),
    )


def test_statefulset_claims_follow_the_retention_policy(docker_server: ReconServer) -> None:
    """`whenScaled: Delete` / `whenDeleted: Delete`: the claims, and their Docker volumes, go
    with a scale-down and with the set."""
    namespace = f"sts-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    manifest = _statefulset(namespace).replace(
        "  podManagementPolicy: OrderedReady\n",
        "  podManagementPolicy: Parallel\n"
        "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Delete}\n",
    )
    assert "Parallel" in manifest
    kubectl.run("apply", "-f", "-", input=manifest)
    kubectl.run(
        "-n", namespace, "rollout", "status", "statefulset/web", "--timeout=120s", timeout=150
    )  # fmt: skip
    claims = _claims(kubectl, namespace)
    assert set(claims) == {"data-web-0", "data-web-1", "data-web-2"}
    assert all(_claim_volumes(namespace, c) for c in claims)

    kubectl.run("-n", namespace, "scale", "statefulset/web", "--replicas=1")
    _wait(
        "the scaled-away pods' claims and volumes to go",
        lambda: (
            set(_claims(kubectl, namespace)) == {"data-web-0"}
            and not _claim_volumes(namespace, "data-web-1")
            and not _claim_volumes(namespace, "data-web-2")
        ),
    )
    assert _claim_volumes(namespace, "data-web-0")

    kubectl.run("-n", namespace, "delete", "statefulset", "web", "--timeout=60s")
    _wait(
        "the last claim and its volume to go with the set",
        lambda: not _claims(kubectl, namespace) and not _claim_volumes(namespace, "data-web-0"),
    )
    assert not kubectl.json("-n", namespace, "get", "pods")["items"]


def test_a_claim_in_use_outlives_its_deletion_until_the_pod_goes(
    docker_server: ReconServer,
) -> None:
    """PVC protection: `kubectl delete pvc` of a claim a running pod writes to leaves it
    Terminating, its data in place; once the pod is deleted, the claim and its volume go."""
    namespace = f"pvc-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    manifest = f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {namespace}}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: writer, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: writer
      image: recon.local/busybox:latest
      imagePullPolicy: Never
      command: ["sh", "-c", "while true; do date >> /data/log; sleep 1; done"]
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]
"""
    kubectl.run("apply", "-f", "-", input=manifest)
    kubectl.run(
        "-n", namespace, "wait", "pod/writer", "--for=condition=Ready", "--timeout=60s", timeout=90
    )  # fmt: skip
    kubectl.run("-n", namespace, "delete", "pvc", "data", "--wait=false")
    shown = kubectl.run("-n", namespace, "get", "pvc", "data", "--no-headers").stdout
    assert shown.split()[1] == "Terminating"
    time.sleep(2)  # the protection holds, not just a slow deletion
    claim = kubectl.json("-n", namespace, "get", "pvc", "data")
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert _claim_volumes(namespace, "data")
    written = kubectl.run("-n", namespace, "exec", "writer", "--", "wc", "-l", "/data/log")
    assert int(written.stdout.split()[0]) >= 2

    kubectl.run("-n", namespace, "delete", "pod", "writer", "--timeout=60s", timeout=90)
    _wait(
        "the claim and its volume to go once no pod uses it",
        lambda: (
            not kubectl.json("-n", namespace, "get", "pvc")["items"]
            and not _claim_volumes(namespace, "data")
        ),
    )


def _daemonset(namespace: str) -> str:
    return f"""apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: agent
          image: recon.local/busybox:latest
          imagePullPolicy: IfNotPresent
          command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def _ready_count(kubectl: Kubectl, namespace: str) -> int:
    pods = kubectl.json("-n", namespace, "get", "pods", "-l", "app=agent")["items"]
    return sum(1 for p in pods if WatchEvent("MODIFIED", p).ready)


def test_daemonset_runs_exactly_one_pod_on_the_node(docker_server: ReconServer) -> None:
    namespace = f"ds-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl = Kubectl(docker_server)
    kubectl.run("create", "namespace", namespace)
    kubectl.run("apply", "-f", "-", input=_daemonset(namespace))
    rollout = ("-n", namespace, "rollout", "status", "daemonset/agent", "--timeout=90s")
    kubectl.run(*rollout, timeout=120)
    nodes = [n["metadata"]["name"] for n in kubectl.json("get", "nodes")["items"]]
    assert len(nodes) == 1

    def one_running_pod() -> JSONDict:
        pods = kubectl.json("-n", namespace, "get", "pods", "-l", "app=agent")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(live) == 1, [p["metadata"]["name"] for p in pods]
        pod = live[0]
        assert pod["spec"]["nodeName"] == nodes[0]
        assert pod["status"]["phase"] == "Running"
        # One sandbox and one app container, both running, on the engine.
        assert len(_pod_containers(pod["metadata"]["uid"], running_only=True)) == 2
        return pod

    pod = one_running_pod()
    status = kubectl.json("-n", namespace, "get", "daemonset", "agent")["status"]
    assert status["desiredNumberScheduled"] == 1
    assert status["currentNumberScheduled"] == 1
    assert status["numberReady"] == 1
    assert status["numberAvailable"] == 1

    # A deleted pod is replaced, and there is still exactly one.
    kubectl.run("-n", namespace, "delete", "pod", pod["metadata"]["name"], "--timeout=60s")
    _wait("the deleted pod's containers to go", lambda: not _pod_containers(pod["metadata"]["uid"]))
    kubectl.run(*rollout, timeout=120)
    _wait("a replacement pod to be ready", lambda: _ready_count(kubectl, namespace) == 1)
    replacement = one_running_pod()
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]

    # Deleted with --cascade=orphan and applied again: the pod is adopted, not replaced.
    kubectl.run("-n", namespace, "delete", "daemonset", "agent", "--cascade=orphan")
    kubectl.run("apply", "-f", "-", input=_daemonset(namespace))
    kubectl.run(*rollout, timeout=120)
    new_set = kubectl.json("-n", namespace, "get", "daemonset", "agent")["metadata"]["uid"]
    _wait(
        "the pod to be adopted",
        lambda: [r["uid"] for r in one_running_pod()["metadata"]["ownerReferences"]] == [new_set],
    )
    assert one_running_pod()["metadata"]["uid"] == replacement["metadata"]["uid"]

    # A rolling update (maxUnavailable 1) replaces it; still exactly one.
    kubectl.run("-n", namespace, "rollout", "restart", "daemonset/agent")
    kubectl.run(*rollout, timeout=120)
    _wait(
        "the old pod's containers to go",
        lambda: not _pod_containers(replacement["metadata"]["uid"]),
    )
    _wait("the new pod to be ready", lambda: _ready_count(kubectl, namespace) == 1)
    rolled = one_running_pod()
    assert rolled["metadata"]["uid"] != replacement["metadata"]["uid"]
    replacement = rolled

    kubectl.run("-n", namespace, "delete", "daemonset", "agent", "--timeout=60s")
    _wait(
        "the DaemonSet's pod and containers to go",
        lambda: (
            not _pod_containers(replacement["metadata"]["uid"])
            and not kubectl.json("-n", namespace, "get", "pods")["items"]
        ),
    )
