"""The node agent end to end on the in-memory runtime: pods bound, run, restarted, deleted."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

from reconciler.runtime.base import ContainerStatus
from reconciler.runtime.fake_process import FakeProcess
from tests.unit.node.conftest import NODE, NodeHarness, condition, status_of

JSONDict = dict[str, Any]


def phase(pod: JSONDict) -> str:
    return str((pod.get("status") or {}).get("phase"))


def running(pod: JSONDict) -> bool:
    return phase(pod) == "Running" and condition(pod, "Ready") == "True"


async def test_node_is_registered_with_labels_capacity_and_lease(node: NodeHarness) -> None:
    registered = await node.client.get("v1", "Node", NODE)
    labels = registered["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == NODE
    assert labels["kubernetes.io/os"] == "linux"
    status = registered["status"]
    assert int(status["capacity"]["cpu"]) >= 1
    assert status["capacity"]["pods"] == "110"
    ready = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    lease = await node.client.get("coordination.k8s.io/v1", "Lease", NODE, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == NODE
    first = lease["spec"]["renewTime"]
    await node.advance(11)
    await node.eventually(
        lambda: _lease_renewed(node, first), what="lease renewed after the heartbeat period"
    )


async def _lease_renewed(node: NodeHarness, first: str) -> bool:
    lease = await node.client.get("coordination.k8s.io/v1", "Lease", NODE, "kube-node-lease")
    return bool(lease["spec"]["renewTime"] != first)


async def test_pod_is_bound_runs_and_reports_status(node: NodeHarness) -> None:
    await node.create_pod(
        "web",
        {
            "containers": [
                {"name": "web", "image": "example/web:1", "ports": [{"containerPort": 80}]}
            ]
        },
    )
    pod = await node.wait_pod("web", running, what="web running and ready")
    assert pod["spec"]["nodeName"] == NODE
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert condition(pod, kind) == "True", kind
    web = status_of(pod, "web")
    assert web["ready"] is True and web["restartCount"] == 0
    assert "running" in web["state"] and web["containerID"].startswith("memory://")
    assert pod["status"]["podIP"] and pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["status"]["startTime"] and pod["status"]["qosClass"] == "BestEffort"
    ports = json.loads(pod["metadata"]["annotations"]["recon.dev/published-ports"])
    assert set(ports) == {"80/TCP"} and ports["80/TCP"] > 0
    # One sandbox and one container: nothing duplicated by repeated syncs.
    records = await node.containers(pod)
    assert sorted(r.labels["recon.dev/role"] for r in records) == ["container", "sandbox"]

    async def reasons() -> set[str]:
        events = await node.client.list("v1", "Event", "default")
        return {e["reason"] for e in events.items if e["involvedObject"]["name"] == "web"}

    wanted = {"Scheduled", "Pulling", "Pulled", "Created", "Started"}
    await node.eventually(lambda: _includes(reasons(), wanted), what=f"events {wanted}")


async def _includes(found: Awaitable[set[str]], wanted: set[str]) -> bool:
    return wanted <= await found


async def test_pod_that_fits_no_node_stays_pending_with_the_reason(node: NodeHarness) -> None:
    await node.create_pod(
        "picky", {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "x"}]}
    )
    pod = await node.wait_pod("picky", lambda p: condition(p, "PodScheduled") == "False")
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert scheduled["message"] == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert not pod["spec"].get("nodeName") and phase(pod) == "Pending"
    # Labelling the node makes it fit: the scheduler retries on node changes.
    await node.client.patch("v1", "Node", NODE, {"metadata": {"labels": {"disk": "ssd"}}})
    await node.wait_pod("picky", running, what="picky running once the node is labelled")


async def test_taints_need_tolerations(node: NodeHarness) -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    await node.client.patch("v1", "Node", NODE, {"spec": {"taints": [taint]}})
    await node.create_pod("plain", {"containers": [{"name": "c", "image": "x"}]})
    await node.create_pod(
        "tolerant",
        {
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}],
            "containers": [{"name": "c", "image": "x"}],
        },
    )
    await node.wait_pod("tolerant", running)
    plain = await node.wait_pod("plain", lambda p: condition(p, "PodScheduled") == "False")
    message = next(c for c in plain["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "untolerated taint {dedicated: gpu}" in message["message"]


async def test_containers_of_a_pod_share_localhost(node: NodeHarness) -> None:
    await node.create_pod(
        "pair",
        {
            "containers": [
                {"name": "server", "image": "fake/script", "args": ["listen:8080=hello", "wait"]},
                {
                    "name": "client",
                    "image": "fake/script",
                    "args": ["sleep:0.1", "get:http://127.0.0.1:8080/", "wait"],
                },
            ]
        },
    )
    pod = await node.wait_pod("pair", running)
    (client,) = await node.containers(pod, "client")

    async def fetched() -> bool:
        await node.advance(0.5, step=0.1)
        chunks = [c async for c in node.runtime.logs(client.id)]
        return b"hello" in b"".join(chunks)

    await node.eventually(fetched, what="the sidecar fetched from the server over localhost")


async def test_host_network_pods_share_the_hosts_network(node: NodeHarness) -> None:
    server = {
        "name": "server",
        "image": "fake/script",
        "args": ["listen:9100=metrics", "wait"],
        "ports": [{"containerPort": 9100}],
    }
    await node.create_pod(
        "exporter", {"hostNetwork": True, "hostPID": True, "containers": [server]}
    )
    pod = await node.wait_pod("exporter", running)
    # the node's address, the container port as its own host port, nothing published
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 9100
    ports = json.loads(pod["metadata"]["annotations"]["recon.dev/published-ports"])
    assert ports == {"9100/TCP": 9100}
    (sandbox,) = [r for r in await node.containers(pod) if r.labels["recon.dev/role"] == "sandbox"]
    assert sandbox.ports == ()
    client = {
        "name": "client",
        "image": "fake/script",
        "args": ["sleep:0.1", "get:http://127.0.0.1:9100/", "wait"],
    }
    # another pod on the host's network reaches it on the host's loopback
    await node.create_pod("scraper", {"hostNetwork": True, "containers": [client]})
    scraper = await node.wait_pod("scraper", running)
    (record,) = await node.containers(scraper, "client")

    async def fetched() -> bool:
        await node.advance(0.5, step=0.1)
        chunks = [c async for c in node.runtime.logs(record.id)]
        return b"metrics" in b"".join(chunks)

    await node.eventually(fetched, what="one host-network pod reached another on 127.0.0.1")


async def test_readiness_gates_hold_ready_until_their_conditions_are_true(
    node: NodeHarness,
) -> None:
    gate = "example.com/load-balancer"
    await node.create_pod(
        "gated",
        {
            "readinessGates": [{"conditionType": gate}],
            "containers": [{"name": "web", "image": "example/web:1"}],
        },
    )

    def held(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), {})
        return condition(pod, "ContainersReady") == "True" and ready.get("reason") == (
            "ReadinessGatesNotReady"
        )

    pod = await node.wait_pod("gated", held, what="containers ready, the gate not yet")
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == (
        f'corresponding condition of pod readiness gate "{gate}" does not exist.'
    )
    # the load balancer says yes: the node keeps its condition and the pod becomes Ready
    stamp = "2026-01-01T00:00:00Z"
    await node.client.patch(
        "v1",
        "Pod",
        "gated",
        {"status": {"conditions": [{"type": gate, "status": "True", "lastTransitionTime": stamp}]}},
        namespace="default",
        subresource="status",
        patch_type="strategic",
    )
    pod = await node.wait_pod("gated", lambda p: condition(p, "Ready") == "True", what="Ready")
    assert condition(pod, gate) == "True"


async def test_a_resize_changes_the_running_container_or_restarts_it(
    node: NodeHarness,
) -> None:
    await node.create_pod(
        "sized",
        {
            "containers": [
                {
                    "name": "app",
                    "image": "example/web:1",
                    "resources": {
                        # the in-memory engine reports no memory: none is requested
                        "requests": {"cpu": "100m", "memory": "0"},
                        "limits": {"cpu": "200m", "memory": "64Mi"},
                    },
                    "resizePolicy": [
                        {"resourceName": "memory", "restartPolicy": "RestartContainer"}
                    ],
                }
            ]
        },
    )
    pod = await node.wait_pod("sized", running)
    (before,) = await node.containers(pod, "app")

    async def resize(resources: dict[str, Any]) -> None:
        await node.client.patch(
            "v1",
            "Pod",
            "sized",
            {"spec": {"containers": [{"name": "app", "resources": resources}]}},
            namespace="default",
            patch_type="strategic",
            subresource="resize",
        )

    await resize({"limits": {"cpu": "400m"}})

    async def cpu_raised() -> bool:
        (now,) = [r for r in await node.containers(pod, "app") if r.status.value == "running"]
        return now.id == before.id and now.nano_cpus == 400_000_000

    await node.eventually(cpu_raised, what="the same container with 400m of CPU")

    def reported(p: dict[str, Any]) -> bool:
        resources = status_of(p, "app").get("resources") or {}
        return (resources.get("limits") or {}).get("cpu") == "400m"

    pod = await node.wait_pod("sized", reported, what="the status says 400m")
    assert status_of(pod, "app")["allocatedResources"] == {"cpu": "100m", "memory": "0"}
    # memory restarts it, as its resizePolicy says
    await resize({"limits": {"memory": "96Mi"}})

    def restarted(p: dict[str, Any]) -> bool:
        return status_of(p, "app").get("restartCount") == 1 and condition(p, "Ready") == "True"

    pod = await node.wait_pod("sized", restarted, what="restarted with the new memory")
    (now,) = [r for r in await node.containers(pod, "app") if r.status.value == "running"]
    assert now.memory_bytes == 96 * 2**20 and now.nano_cpus == 400_000_000


async def test_termination_messages_from_the_file_or_the_log(node: NodeHarness) -> None:
    await node.create_pod(
        "reports",
        {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "file",
                    "image": "fake/script",
                    "args": ["write:/dev/termination-log=42 rows exported", "exit:0"],
                    "terminationMessagePath": "/dev/termination-log",
                },
                {
                    "name": "custom",
                    "image": "fake/script",
                    "args": ["write:/tmp/result=custom path", "exit:0"],
                    "terminationMessagePath": "/tmp/result",
                },
                {
                    "name": "crash",
                    "image": "fake/script",
                    "args": ["out:starting", "err:no such table: rows", "exit:3"],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                },
                {
                    "name": "quiet",
                    "image": "fake/script",
                    "args": ["out:not a message", "exit:1"],
                },
            ],
        },
    )

    def finished(p: dict[str, Any]) -> bool:
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        return len(statuses) == 4 and all("terminated" in s["state"] for s in statuses)

    pod = await node.wait_pod("reports", finished, what="every container finished")
    messages = {
        s["name"]: s["state"]["terminated"].get("message")
        for s in pod["status"]["containerStatuses"]
    }
    assert messages == {
        "file": "42 rows exported",
        "custom": "custom path",
        "crash": "starting\nno such table: rows\n",
        "quiet": None,  # the file is empty and the log is not asked for
    }


async def test_a_pod_past_its_active_deadline_is_stopped_and_failed(node: NodeHarness) -> None:
    await node.create_pod(
        "bounded",
        {
            "activeDeadlineSeconds": 30,
            "containers": [{"name": "c", "image": "fake/script", "args": ["wait"]}],
        },
    )
    pod = await node.wait_pod("bounded", running)
    assert pod["status"]["phase"] == "Running"

    def failed(p: dict[str, Any]) -> bool:
        return (p.get("status") or {}).get("phase") == "Failed"

    async def past_deadline() -> bool:
        await node.advance(5, step=1)
        got = await node.client.get("v1", "Pod", "bounded", "default")
        return failed(got)

    await node.eventually(past_deadline, what="the deadline passed")
    pod = await node.client.get("v1", "Pod", "bounded", "default")
    status = pod["status"]
    assert (status["reason"], status["message"]) == (
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
    )
    assert "terminated" in status_of(pod, "c")["state"]

    async def all_stopped() -> bool:
        # The app containers stop before the Failed status is written, the sandbox after.
        await node.advance(1)
        return not [r for r in await node.containers(pod) if r.status.value == "running"]

    await node.eventually(all_stopped, what="every container stopped, the sandbox last")


async def test_init_containers_run_in_order_before_the_app(node: NodeHarness) -> None:
    mount = {"volumeMounts": [{"name": "work", "mountPath": "/work"}]}
    await node.create_pod(
        "init",
        {
            "initContainers": [
                {"name": "one", "image": "fake/script", "args": ["write:/work/log=one"], **mount},
                {"name": "two", "image": "fake/script", "args": ["cat:/work/log"], **mount},
            ],
            "containers": [{"name": "app", "image": "fake/pause"}],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    )
    pod = await node.wait_pod("init", running)
    inits = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    assert inits["one"]["state"]["terminated"]["reason"] == "Completed"
    assert inits["two"]["state"]["terminated"]["exitCode"] == 0
    (one,) = await node.containers(pod, "one")
    (two,) = await node.containers(pod, "two")
    (app,) = await node.containers(pod, "app")
    assert one.finished_at and two.started_at and one.finished_at <= two.started_at
    assert two.finished_at and app.started_at and two.finished_at <= app.started_at
    logs = b"".join([c async for c in node.runtime.logs(two.id)])
    assert b"one" in logs  # the emptyDir is shared by the pod's containers


async def test_failed_init_container_with_restart_never_fails_the_pod(node: NodeHarness) -> None:
    await node.create_pod(
        "bad-init",
        {
            "restartPolicy": "Never",
            "initContainers": [{"name": "check", "image": "fake/exit:2"}],
            "containers": [{"name": "app", "image": "fake/pause"}],
        },
    )
    pod = await node.wait_pod("bad-init", lambda p: phase(p) == "Failed")
    inits = pod["status"]["initContainerStatuses"]
    assert inits[0]["state"]["terminated"]["exitCode"] == 2
    assert not await node.containers(pod, "app")


async def test_crash_loop_back_off_grows_and_keeps_the_previous_run(node: NodeHarness) -> None:
    await node.create_pod(
        "crash",
        {"containers": [{"name": "c", "image": "fake/script", "args": ["out:boom", "exit:1"]}]},
    )

    def crash_looping(restarts: int) -> Any:
        def check(p: JSONDict) -> bool:
            c = status_of(p, "c")
            waiting = c.get("state", {}).get("waiting", {})
            return c.get("restartCount") == restarts and waiting.get("reason") == "CrashLoopBackOff"

        return check

    # The first restart is immediate; then the back-off is 10 s, 20 s, 40 s ...
    pod = await node.wait_pod("crash", crash_looping(1), what="first back-off")
    c = status_of(pod, "c")
    assert "back-off 10s" in c["state"]["waiting"]["message"]
    assert c["lastState"]["terminated"]["exitCode"] == 1
    assert phase(pod) == "Running" and condition(pod, "Ready") == "False"
    await node.advance(9)
    await node.settle()
    assert status_of(await node.pod("crash"), "c")["restartCount"] == 1
    await node.advance(2)
    pod = await node.wait_pod("crash", crash_looping(2), what="second back-off")
    assert "back-off 20s" in status_of(pod, "c")["state"]["waiting"]["message"]
    await node.advance(15)
    await node.settle()
    assert status_of(await node.pod("crash"), "c")["restartCount"] == 2
    await node.advance(6)
    await node.wait_pod("crash", crash_looping(3), what="third back-off")
    # Only the current and the previous run are kept (for `kubectl logs --previous`).
    records = await node.containers(await node.pod("crash"), "c")
    assert len(records) == 2
    events = await node.client.list("v1", "Event", "default")
    assert any(e["reason"] == "BackOff" for e in events.items)


async def test_restart_policies(node: NodeHarness) -> None:
    await node.create_pod(
        "once", {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "fake/exit"}]}
    )
    await node.create_pod(
        "never", {"restartPolicy": "Never", "containers": [{"name": "c", "image": "fake/exit:3"}]}
    )
    done = await node.wait_pod("once", lambda p: phase(p) == "Succeeded")
    assert status_of(done, "c")["state"]["terminated"]["reason"] == "Completed"
    failed = await node.wait_pod("never", lambda p: phase(p) == "Failed")
    terminated = status_of(failed, "c")["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert status_of(failed, "c")["restartCount"] == 0
    # A finished pod's sandbox is stopped too (by the pass after the one that wrote Failed).

    async def sandbox_stopped() -> bool:
        return not await node.running(failed)

    await node.eventually(sandbox_stopped, what="the finished pod's sandbox stopped")


async def test_configmap_and_secret_as_env_and_files(node: NodeHarness, tmp_path: Path) -> None:
    seen_env: dict[str, Mapping[str, str]] = {}

    async def show_env(proc: FakeProcess) -> int:
        seen_env["env"] = dict(proc.env)
        await proc.sleep()
        return 0

    node.runtime.register_program("example/env", show_env)
    await node.client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"greeting": "hello", "app.conf": "port=80\n"},
        }
    )
    await node.client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        }
    )
    await node.create_pod(
        "configured",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "example/env",
                    "env": [
                        {
                            "name": "GREETING",
                            "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                        },
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                        },
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "MSG", "value": "$(GREETING) from $(POD)"},
                    ],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}],
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/app"},
                        {"name": "secret", "mountPath": "/etc/secret"},
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "cfg"}},
                {"name": "secret", "secret": {"secretName": "creds"}},
            ],
        },
    )
    pod = await node.wait_pod("configured", running)
    (c,) = await node.containers(pod, "c")

    async def started() -> bool:
        return "env" in seen_env

    await node.eventually(started, what="the program started")
    spec_env = seen_env["env"]
    assert spec_env["GREETING"] == "hello" and spec_env["PASSWORD"] == "s3cret"
    assert spec_env["MSG"] == "hello from configured" and spec_env["CFG_greeting"] == "hello"
    mounts = {m.target: m for m in c.mounts}
    config_dir = Path(mounts["/etc/app"].source)
    secret_dir = Path(mounts["/etc/secret"].source)
    assert (config_dir / "app.conf").read_text() == "port=80\n"
    assert (secret_dir / "password").read_bytes() == b"s3cret"
    assert mounts["/etc/secret"].read_only
    assert str(secret_dir).startswith(str(tmp_path / "shm"))  # the memory-dir root
    # A ConfigMap change reaches the mounted files without a restart.
    await node.client.patch(
        "v1", "ConfigMap", "cfg", {"data": {"app.conf": "port=81\n"}}, namespace="default"
    )

    async def updated() -> bool:
        return (config_dir / "app.conf").read_text() == "port=81\n"

    await node.eventually(updated, what="the file updated")
    assert status_of(await node.pod("configured"), "c")["restartCount"] == 0


async def test_missing_configmap_is_a_config_error_until_it_exists(node: NodeHarness) -> None:
    await node.create_pod(
        "waits",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "fake/pause",
                    "env": [
                        {
                            "name": "X",
                            "valueFrom": {"configMapKeyRef": {"name": "late", "key": "x"}},
                        }
                    ],
                }
            ]
        },
    )
    pod = await node.wait_pod(
        "waits",
        lambda p: (
            status_of(p, "c").get("state", {}).get("waiting", {}).get("reason")
            == "CreateContainerConfigError"
        ),
    )
    assert 'configmap "late" not found' in status_of(pod, "c")["state"]["waiting"]["message"]
    await node.client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "late", "namespace": "default"},
            "data": {"x": "1"},
        }
    )
    await node.wait_pod("waits", running, what="started once the ConfigMap exists")


async def test_image_pull_failure_then_back_off(node: NodeHarness) -> None:
    node.runtime.fail_pulls["example/missing:latest"] = "manifest unknown"
    await node.create_pod("nopull", {"containers": [{"name": "c", "image": "example/missing"}]})

    def waiting(reason: str) -> Any:
        return lambda p: (
            status_of(p, "c").get("state", {}).get("waiting", {}).get("reason") == reason
        )

    await node.wait_pod("nopull", waiting("ErrImagePull"))
    await node.advance(3, step=0.5)
    await node.wait_pod("nopull", waiting("ImagePullBackOff"))
    del node.runtime.fail_pulls["example/missing:latest"]
    await node.advance(30, step=2)
    await node.wait_pod("nopull", running, what="running once the image can be pulled")


async def test_never_pull_policy_without_the_image(node: NodeHarness) -> None:
    await node.create_pod(
        "local-only",
        {"containers": [{"name": "c", "image": "example/absent:1", "imagePullPolicy": "Never"}]},
    )
    pod = await node.wait_pod(
        "local-only",
        lambda p: (
            status_of(p, "c").get("state", {}).get("waiting", {}).get("reason")
            == "ErrImageNeverPull"
        ),
    )
    assert node.runtime.pull_counts["example/absent:1"] == 0
    assert phase(pod) == "Pending"


async def test_probes_drive_ready_and_restarts(node: NodeHarness) -> None:
    probe = {"periodSeconds": 1, "failureThreshold": 2}
    await node.create_pod(
        "probed",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "fake/script",
                    "args": ["listen:8080=ok", "wait"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, **probe},
                    "livenessProbe": {"tcpSocket": {"port": 8080}, **probe},
                }
            ]
        },
    )
    await node.advance(2)
    pod = await node.wait_pod("probed", running, what="ready after a successful readiness probe")
    assert status_of(pod, "c")["restartCount"] == 0

    # A readiness probe on a port nothing serves: never Ready, never restarted.
    await node.create_pod(
        "unready",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "fake/pause",
                    "readinessProbe": {"httpGet": {"path": "/", "port": 9090}, **probe},
                }
            ]
        },
    )
    await node.advance(6)
    unready = await node.wait_pod("unready", lambda p: phase(p) == "Running")
    assert condition(unready, "Ready") == "False"
    assert status_of(unready, "c")["restartCount"] == 0

    # A liveness probe failing restarts the container.
    await node.create_pod(
        "dead",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "fake/pause",
                    "livenessProbe": {"tcpSocket": {"port": 9999}, **probe},
                }
            ]
        },
    )
    await node.wait_pod("dead", lambda p: phase(p) == "Running")

    async def restarted() -> bool:
        await node.advance(1)
        return bool(status_of(await node.pod("dead"), "c").get("restartCount", 0) >= 1)

    await node.eventually(restarted, what="liveness failure restarts the container")
    events = await node.client.list("v1", "Event", "default")
    assert any(e["reason"] == "Unhealthy" for e in events.items)


async def test_deletion_stops_and_removes_everything(node: NodeHarness) -> None:
    await node.create_pod(
        "bye",
        {
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "c", "image": "fake/ignore-sigterm"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    )
    pod = await node.wait_pod("bye", running)
    uid = pod["metadata"]["uid"]
    assert await node.runtime.list_volumes({"recon.dev/pod-uid": uid})
    await node.client.delete("v1", "Pod", "bye", "default")
    deleting = await node.pod("bye")
    assert deleting["metadata"]["deletionTimestamp"]
    await node.advance(6)

    async def gone() -> bool:
        listed = await node.client.list("v1", "Pod", "default")
        return all(p["metadata"]["name"] != "bye" for p in listed.items)

    await node.eventually(gone, what="pod removed from the API after its grace period")
    assert not await node.runtime.list_containers({"recon.dev/pod-uid": uid})
    assert not await node.runtime.list_volumes({"recon.dev/pod-uid": uid})


async def test_agent_restart_readopts_and_removes_orphans(node: NodeHarness) -> None:
    for name in ("a", "b", "c"):
        await node.create_pod(name, {"containers": [{"name": "c", "image": "fake/pause"}]})
    pods = {n: await node.wait_pod(n, running) for n in ("a", "b", "c")}
    before = {r.id for r in await node.runtime.list_containers()}
    await node.stop_agent()
    # While the agent is down: one pod deleted outright.
    await node.client.delete("v1", "Pod", "c", "default", grace_period=0)
    await node.start_agent()
    await node.wait_pod("a", running)
    await node.settle()
    after = {r.id for r in await node.runtime.list_containers()}
    c_ids = {r.id for r in await node.containers(pods["c"])}
    assert not c_ids, "the deleted pod's containers are removed"
    kept = {r.id for n in ("a", "b") for r in await node.containers(pods[n])}
    assert kept == after and kept <= before, "the same containers, re-adopted, none new"
    for n in ("a", "b"):
        assert status_of(await node.pod(n), "c")["restartCount"] == 0


async def test_engine_restart_brings_pods_back(node: NodeHarness) -> None:
    await node.create_pod("phoenix", {"containers": [{"name": "c", "image": "fake/pause"}]})
    pod = await node.wait_pod("phoenix", running)
    await node.runtime.simulate_engine_restart()
    await node.advance(2)

    async def back() -> bool:
        await node.advance(0.5)
        records = await node.running(pod)
        return len(records) == 2

    await node.eventually(back, what="sandbox and container running again")
    sandboxes = [
        r for r in await node.containers(pod) if r.labels.get("recon.dev/role") == "sandbox"
    ]
    assert any(r.status == ContainerStatus.RUNNING for r in sandboxes)
    await node.wait_pod("phoenix", running)


async def test_a_deleted_namespace_takes_its_network_along(node: NodeHarness) -> None:
    await node.client.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "gone"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "fake/script", "args": ["wait"]}],
        },
    }
    await node.client.create(pod)

    async def network_exists() -> bool:
        return "recon-gone" in await node.runtime.list_networks()

    await node.eventually(network_exists, what="the namespace's network")
    await node.client.delete("v1", "Namespace", "gone")

    async def network_gone() -> bool:
        await node.advance(1)
        return "recon-gone" not in await node.runtime.list_networks()

    await node.eventually(network_gone, timeout=10, what="the network to be removed")


async def test_pods_of_a_namespace_share_their_service_variables(node: NodeHarness) -> None:
    envs: dict[str, Mapping[str, str]] = {}

    async def keep_env(proc: FakeProcess) -> int:
        envs[proc.spec.labels["recon.dev/pod-name"]] = proc.env
        await proc.sleep()
        return 0

    node.runtime.register_program("example/env", keep_env)

    async def service(name: str) -> JSONDict:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
        }
        return await node.client.create(body)

    async def pod_env(name: str) -> Mapping[str, str]:
        container = {"name": "c", "image": "example/env", "env": [{"name": "OWN", "value": name}]}
        await node.create_pod(name, {"containers": [container]})
        await node.wait_pod(name, running)
        await node.eventually(lambda: _has(envs, name), what=f"{name} started")
        return envs[name]

    cart = await service("cart")
    one, two = await pod_env("one"), await pod_env("two")
    ip = cart["spec"]["clusterIP"]
    assert one["CART_SERVICE_HOST"] == ip and one["CART_PORT_80_TCP"] == f"tcp://{ip}:80"
    assert one["OWN"] == "one" and two["OWN"] == "two"
    assert getattr(one, "shared", None) is getattr(two, "shared", 1)  # one copy, not two
    await service("pay")  # a new Service: pods started from now on see it, as on Kubernetes
    three = await pod_env("three")
    assert "PAY_SERVICE_HOST" in three and "PAY_SERVICE_HOST" not in one
    assert three["CART_SERVICE_HOST"] == ip


async def _has(envs: Mapping[str, object], name: str) -> bool:
    return name in envs


async def test_a_resize_the_node_cannot_take_is_pending(node: NodeHarness) -> None:
    cores = int((await node.client.get("v1", "Node", "node-a"))["status"]["allocatable"]["cpu"])

    def sized(cpu: str) -> dict[str, Any]:
        return {
            "containers": [
                {
                    "name": "app",
                    "image": "example/web:1",
                    "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}},
                }
            ]
        }

    half = f"{cores * 500}m"
    await node.create_pod("grow", sized("100m"))
    await node.create_pod("neighbour", sized(half))
    await node.wait_pod("grow", running)
    await node.wait_pod("neighbour", running)

    async def resize(cpu: str) -> None:
        resources = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
        await node.client.patch(
            "v1",
            "Pod",
            "grow",
            {"spec": {"containers": [{"name": "app", "resources": resources}]}},
            namespace="default",
            patch_type="strategic",
            subresource="resize",
        )

    def pending(p: dict[str, Any]) -> dict[str, Any]:
        found = [c for c in p["status"]["conditions"] if c["type"] == "PodResizePending"]
        return found[0] if found else {}

    # More CPU than the node has: never.
    await resize(f"{cores + 1}")
    pod = await node.wait_pod("grow", lambda p: bool(pending(p)), what="PodResizePending")
    assert (pending(pod)["reason"], pending(pod)["message"]) == (
        "Infeasible",
        f"Node didn't have enough capacity: cpu, requested: {(cores + 1) * 1000}, "
        f"capacity: {cores * 1000}",
    )
    (app,) = await node.containers(pod, "app")
    assert app.nano_cpus == 100_000_000  # it keeps running with what it had
    # More than is left beside the neighbour: later, once the neighbour is gone.
    await resize(f"{cores * 600}m")
    pod = await node.wait_pod("grow", lambda p: pending(p).get("reason") == "Deferred")
    assert pending(pod)["message"] == (
        f"Node didn't have enough resource: cpu, requested: {cores * 600}, "
        f"used: {cores * 500}, capacity: {cores * 1000}"
    )
    await node.client.delete("v1", "Pod", "neighbour", "default", grace_period=0)
    await node.advance(11)
    pod = await node.wait_pod("grow", lambda p: not pending(p), what="the resize applied")
    (app,) = await node.containers(pod, "app")
    assert app.nano_cpus == cores * 600_000_000
