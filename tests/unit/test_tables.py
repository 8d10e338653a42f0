"""Server-side Tables print the columns and cells the real Kubernetes printers print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.apiserver.tables import build_table, human_duration, table_columns

NOW = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", age: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(age), **extra}


def cells(kind: str, obj: dict[str, Any], **kw: Any) -> list[Any]:
    obj = {"kind": kind, **obj}
    row = build_table(kind, [obj], NOW, **kw)["rows"][0]
    return list(row["cells"])


def headers(kind: str, wide: bool = False, **kw: Any) -> list[str]:
    cols = table_columns(kind, **kw)
    return [c["name"].upper() for c in cols if wide or c["priority"] == 0]


# --- duration.HumanDuration ------------------------------------------------------------------

DAY = 86400
DURATIONS = [
    (0, "0s"),
    (0.4, "0s"),
    (-0.5, "0s"),
    (-1, "0s"),
    (-1.9, "0s"),  # up to 2 s of clock skew reads as "now"
    (-2, "<invalid>"),
    (-3600, "<invalid>"),
    (1, "1s"),
    (5, "5s"),
    (59, "59s"),
    (60, "60s"),
    (119, "119s"),
    (119.9, "119s"),
    (120, "2m"),
    (121, "2m1s"),
    (192, "3m12s"),
    (599, "9m59s"),
    (600, "10m"),
    (659, "10m"),  # from 10 min on, seconds are dropped
    (45 * 60, "45m"),
    (179 * 60 + 59, "179m"),
    (180 * 60, "3h"),
    (3 * 3600 + 59, "3h"),
    (5 * 3600 + 3 * 60, "5h3m"),
    (7 * 3600 + 59 * 60 + 59, "7h59m"),
    (8 * 3600, "8h"),
    (8 * 3600 + 30 * 60, "8h"),
    (47 * 3600 + 59 * 60, "47h"),
    (48 * 3600, "2d"),
    (51 * 3600, "2d3h"),
    (7 * DAY + 23 * 3600, "7d23h"),
    (8 * DAY, "8d"),
    (8 * DAY + 5 * 3600, "8d"),
    (364 * DAY, "364d"),
    (729 * DAY, "729d"),
    (730 * DAY, "2y"),
    (770 * DAY, "2y40d"),
    (3 * 365 * DAY + 1 * DAY, "3y1d"),
    (8 * 365 * DAY - DAY, "7y364d"),
    (8 * 365 * DAY, "8y"),
    (9 * 365 * DAY + 100 * DAY, "9y"),
]


@pytest.mark.parametrize(("seconds", "expected"), DURATIONS)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


# --- table shape and includeObject -----------------------------------------------------------


def test_table_envelope_and_column_definitions() -> None:
    table = build_table("ConfigMap", [], NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {}
    assert table["rows"] == []
    name = table["columnDefinitions"][0]
    assert set(name) == {"name", "type", "format", "description", "priority"}
    assert (name["name"], name["type"], name["format"], name["priority"]) == (
        "Name",
        "string",
        "name",
        0,
    )
    assert name["description"].startswith("Name must be unique within a namespace.")


OBJ = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta("cfg"), "data": {"a": "1"}}


def test_include_object_metadata_is_the_default() -> None:
    row = build_table("ConfigMap", [OBJ], NOW)["rows"][0]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": OBJ["metadata"],
    }


def test_include_object_object_and_none() -> None:
    assert build_table("ConfigMap", [OBJ], NOW, "Object")["rows"][0]["object"] == OBJ
    assert "object" not in build_table("ConfigMap", [OBJ], NOW, "None")["rows"][0]


def test_include_object_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="includeObject"):
        build_table("ConfigMap", [OBJ], NOW, "Everything")


def test_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert build_table("ConfigMap", [OBJ], naive)["rows"][0]["cells"] == ["cfg", 1, "5m"]


# --- headers per kind (normal and -o wide) ---------------------------------------------------

HEADERS = [
    ("Pod", "NAME READY STATUS RESTARTS AGE", "IP NODE NOMINATED NODE READINESS GATES"),
    ("Deployment", "NAME READY UP-TO-DATE AVAILABLE AGE", "CONTAINERS IMAGES SELECTOR"),
    ("ReplicaSet", "NAME DESIRED CURRENT READY AGE", "CONTAINERS IMAGES SELECTOR"),
    ("ReplicationController", "NAME DESIRED CURRENT READY AGE", "CONTAINERS IMAGES SELECTOR"),
    ("StatefulSet", "NAME READY AGE", "CONTAINERS IMAGES"),
    (
        "DaemonSet",
        "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
        "CONTAINERS IMAGES SELECTOR",
    ),
    ("Service", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "SELECTOR"),
    ("Job", "NAME STATUS COMPLETIONS DURATION AGE", "CONTAINERS IMAGES SELECTOR"),
    (
        "CronJob",
        "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
        "CONTAINERS IMAGES SELECTOR",
    ),
    ("ConfigMap", "NAME DATA AGE", ""),
    ("Secret", "NAME TYPE DATA AGE", ""),
    ("Namespace", "NAME STATUS AGE", ""),
    (
        "Node",
        "NAME STATUS ROLES AGE VERSION",
        "INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME",
    ),
    (
        "PersistentVolumeClaim",
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE",
        "VOLUMEMODE",
    ),
    ("Event", "LAST SEEN TYPE REASON OBJECT MESSAGE", "SUBOBJECT SOURCE FIRST SEEN COUNT NAME"),
    ("CustomResourceDefinition", "NAME CREATED AT", ""),
    ("Role", "NAME CREATED AT", ""),
    ("Widget", "NAME AGE", ""),
]


def _words(names: list[str]) -> str:
    return " ".join(names)


@pytest.mark.parametrize(("kind", "normal", "wide_extra"), HEADERS)
def test_headers(kind: str, normal: str, wide_extra: str) -> None:
    assert _words(headers(kind)) == normal
    extra = [c["name"].upper() for c in table_columns(kind) if c["priority"] == 1]
    assert _words(extra) == wide_extra


def test_event_wide_columns_sit_between_the_normal_ones() -> None:
    assert _words(headers("Event", wide=True)) == (
        "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"
    )


def test_table_columns_returns_copies() -> None:
    table_columns("Pod")[0]["name"] = "changed"
    assert table_columns("Pod")[0]["name"] == "Name"


# --- Pod -------------------------------------------------------------------------------------


def running(ready: bool = True, restarts: int = 0, **state: Any) -> dict[str, Any]:
    return {
        "name": "c",
        "ready": ready,
        "restartCount": restarts,
        "state": state or {"running": {"startedAt": ago(60)}},
    }


def pod(
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    containers: int = 1,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    st: dict[str, Any] = {"phase": phase, **status}
    if statuses is not None:
        st["containerStatuses"] = statuses
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    if conditions is not None:
        st["conditions"] = conditions
    return {"metadata": meta("web"), "spec": spec, "status": st}


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> dict[str, Any]:
    t: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"terminated": t}


def waiting(reason: str) -> dict[str, Any]:
    return {"waiting": {"reason": reason}}


READY_COND = [{"type": "Ready", "status": "True"}]
INIT2 = [{"name": "i0"}, {"name": "i1"}]

POD_STATUS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no status at all", {"metadata": meta("web"), "spec": {"containers": [{}]}}, "0/1", "Pending"),
    ("pending", pod("Pending"), "0/1", "Pending"),
    ("running and ready", pod(statuses=[running()]), "1/1", "Running"),
    ("running, not ready", pod(statuses=[running(ready=False)]), "0/1", "Running"),
    ("two containers", pod(statuses=[running(), running(False)], containers=2), "1/2", "Running"),
    (
        "container creating",
        pod("Pending", [running(False, **waiting("ContainerCreating"))]),
        "0/1",
        "ContainerCreating",
    ),
    (
        "image pull back-off",
        pod("Pending", [running(False, **waiting("ImagePullBackOff"))]),
        "0/1",
        "ImagePullBackOff",
    ),
    (
        "crash loop",
        pod(statuses=[running(False, 3, **waiting("CrashLoopBackOff"))]),
        "0/1",
        "CrashLoopBackOff",
    ),
    (
        "completed",
        pod("Succeeded", [running(False, **terminated("Completed"))]),
        "0/1",
        "Completed",
    ),
    ("error", pod("Failed", [running(False, **terminated("Error", 1))]), "0/1", "Error"),
    ("exit code", pod("Failed", [running(False, **terminated(exit_code=2))]), "0/1", "ExitCode:2"),
    (
        "signal",
        pod("Failed", [running(False, **terminated(exit_code=137, signal=9))]),
        "0/1",
        "Signal:9",
    ),
    ("evicted", pod("Failed", reason="Evicted"), "0/1", "Evicted"),
    (
        "the last container's reason wins (the first listed)",
        pod(
            statuses=[
                running(False, **waiting("CrashLoopBackOff")),
                running(False, **waiting("Other")),
            ],
            containers=2,
        ),
        "0/2",
        "CrashLoopBackOff",
    ),
    (
        "completed but another still runs, pod ready",
        pod(
            statuses=[running(False, **terminated("Completed")), running()],
            containers=2,
            conditions=READY_COND,
        ),
        "1/2",
        "Running",
    ),
    (
        "completed but another still runs, pod not ready",
        pod(statuses=[running(False, **terminated("Completed")), running()], containers=2),
        "1/2",
        "NotReady",
    ),
    (
        "scheduling gated",
        pod(
            "Pending",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
        ),
        "0/1",
        "SchedulingGated",
    ),
    (
        "first init container running",
        pod(
            "Pending",
            init=INIT2,
            init_statuses=[running(False), running(False, **waiting("PodInitializing"))],
        ),
        "0/1",
        "Init:0/2",
    ),
    (
        "second init container running",
        pod(
            "Pending",
            init=INIT2,
            init_statuses=[running(False, **terminated("Completed")), running(False)],
        ),
        "0/1",
        "Init:1/2",
    ),
    (
        "init container waiting to initialize",
        pod(
            "Pending", init=INIT2[:1], init_statuses=[running(False, **waiting("PodInitializing"))]
        ),
        "0/1",
        "Init:0/1",
    ),
    (
        "init container crash loop",
        pod(
            "Pending",
            init=INIT2[:1],
            init_statuses=[running(False, 2, **waiting("CrashLoopBackOff"))],
        ),
        "0/1",
        "Init:CrashLoopBackOff",
    ),
    (
        "init container failed",
        pod("Pending", init=INIT2[:1], init_statuses=[running(False, **terminated("Error", 1))]),
        "0/1",
        "Init:Error",
    ),
    (
        "init container failed without reason",
        pod("Pending", init=INIT2[:1], init_statuses=[running(False, **terminated(exit_code=3))]),
        "0/1",
        "Init:ExitCode:3",
    ),
    (
        "init container killed by a signal",
        pod(
            "Pending",
            init=INIT2[:1],
            init_statuses=[running(False, **terminated(exit_code=1, signal=15))],
        ),
        "0/1",
        "Init:Signal:15",
    ),
    (
        "init done, app container creating",
        pod(
            "Pending",
            [running(False, **waiting("ContainerCreating"))],
            init=INIT2[:1],
            init_statuses=[running(False, **terminated("Completed"))],
        ),
        "0/1",
        "ContainerCreating",
    ),
    (
        "a started sidecar counts as a container",
        pod(
            statuses=[running()],
            init=[{"name": "proxy", "restartPolicy": "Always"}],
            init_statuses=[{**running(), "name": "proxy", "started": True}],
            conditions=[{"type": "Initialized", "status": "True"}],
        ),
        "2/2",
        "Running",
    ),
]


@pytest.mark.parametrize(
    ("obj", "ready", "status"),
    [case[1:] for case in POD_STATUS],
    ids=[case[0] for case in POD_STATUS],
)
def test_pod_ready_and_status(obj: dict[str, Any], ready: str, status: str) -> None:
    row = cells("Pod", obj)
    assert row[1:3] == [ready, status]


def test_pod_terminating_and_unknown() -> None:
    deleting = pod(statuses=[running()])
    deleting["metadata"]["deletionTimestamp"] = ago(5)
    assert cells("Pod", deleting)[2] == "Terminating"
    lost = pod(statuses=[running()], reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = ago(5)
    assert cells("Pod", lost)[2] == "Unknown"
    done = pod("Succeeded", [running(False, **terminated("Completed"))])
    done["metadata"]["deletionTimestamp"] = ago(5)
    assert cells("Pod", done)[2] == "Completed"  # a finished pod is not "Terminating"


def last_state(finished_ago: float) -> dict[str, Any]:
    return {"terminated": {"exitCode": 1, "finishedAt": ago(finished_ago)}}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([running()], "0"),
        ([running(restarts=3)], "3"),  # no last termination time known
        ([{**running(restarts=3), "lastState": last_state(120)}], "3 (2m ago)"),
        (
            [
                {**running(restarts=1), "lastState": last_state(3600)},
                {**running(restarts=4), "lastState": last_state(45)},
            ],
            "5 (45s ago)",
        ),
    ],
)
def test_pod_restarts(statuses: list[dict[str, Any]], expected: str) -> None:
    assert cells("Pod", pod(statuses=statuses, containers=len(statuses)))[3] == expected


def test_pod_full_row_with_wide_cells() -> None:
    obj = pod(statuses=[running()], podIP="10.1.0.7", nominatedNodeName="n2")
    obj["spec"]["nodeName"] = "n1"
    obj["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    obj["status"]["conditions"] = [
        {"type": "a", "status": "True"},
        {"type": "b", "status": "False"},
    ]
    assert cells("Pod", obj) == ["web", "1/1", "Running", "0", "5m", "10.1.0.7", "n1", "n2", "1/2"]


def test_pod_wide_cells_default_to_none() -> None:
    assert cells("Pod", pod())[5:] == ["<none>", "<none>", "<none>", "<none>"]
    from_ips = pod(podIPs=[{"ip": "fd00::1"}, {"ip": "10.0.0.1"}])
    assert cells("Pod", from_ips)[5] == "fd00::1"


def test_finished_pods_carry_a_completed_row_condition() -> None:
    rows = build_table("Pod", [pod("Succeeded"), pod("Failed"), pod()], NOW)["rows"]
    assert rows[0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert rows[1]["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in rows[2]


# --- workloads -------------------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]
    },
}


def test_deployment() -> None:
    obj = {
        "metadata": meta("web", 3 * DAY + 3600),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("Deployment", obj) == [
        "web",
        "2/3",
        3,
        2,
        "3d1h",
        "web,log",
        "nginx:1.25,busybox",
        "app=web",
    ]


def test_deployment_defaults_and_selector_expressions() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}],
    }
    obj = {"metadata": meta("web"), "spec": {"selector": selector, "template": TEMPLATE}}
    row = cells("Deployment", obj)
    assert row[1:4] == ["0/1", 0, 0]  # replicas defaults to 1
    assert row[7] == "app=web,tier in (be,fe)"
    bad = {"metadata": meta("web"), "spec": {"selector": {"matchExpressions": [{"key": "a"}]}}}
    assert cells("Deployment", bad)[5:] == ["", "", "<invalid>"]


def test_replica_set_and_replication_controller() -> None:
    rs = {
        "metadata": meta("web-5d4f", 90),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
            "template": TEMPLATE,
        },
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells("ReplicaSet", rs) == [
        "web-5d4f",
        2,
        2,
        1,
        "90s",
        "web,log",
        "nginx:1.25,busybox",
        "app=web,pod-template-hash=5d4f",
    ]
    assert cells("ReplicaSet", {"metadata": meta("empty"), "spec": {}})[1:] == [
        1,
        0,
        0,
        "5m",
        "",
        "",
        "<none>",
    ]
    rc = {"metadata": meta("rc"), "spec": {"replicas": 1, "selector": {"b": "2", "a": "1"}}}
    assert cells("ReplicationController", rc)[-1] == "a=1,b=2"


def test_stateful_set() -> None:
    obj = {
        "metadata": meta("db", 5 * 3600),
        "spec": {"replicas": 3, "template": TEMPLATE},
        "status": {"readyReplicas": 3},
    }
    assert cells("StatefulSet", obj) == ["db", "3/3", "5h", "web,log", "nginx:1.25,busybox"]


def test_daemon_set() -> None:
    template = {
        **TEMPLATE,
        "spec": {**TEMPLATE["spec"], "nodeSelector": {"os": "linux", "arch": "amd64"}},
    }
    obj = {
        "metadata": meta("agent", 40),
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template},
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    assert cells("DaemonSet", obj) == [
        "agent",
        3,
        3,
        2,
        3,
        2,
        "arch=amd64,os=linux",
        "40s",
        "web,log",
        "nginx:1.25,busybox",
        "app=agent",
    ]
    assert cells("DaemonSet", {"metadata": meta("bare")})[6] == "<none>"


# --- Service ---------------------------------------------------------------------------------

SERVICES: list[tuple[str, dict[str, Any], dict[str, Any], list[Any]]] = [
    (
        "cluster ip",
        {
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80}],
            "selector": {"app": "web"},
        },
        {},
        ["ClusterIP", "10.96.0.10", "<none>", "80/TCP", "app=web"],
    ),
    (
        "node port",
        {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.11"],
            "ports": [
                {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 443, "protocol": "TCP"},
                {"port": 53, "nodePort": 30053, "protocol": "UDP"},
            ],
        },
        {},
        ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP,443/TCP,53:30053/UDP", "<none>"],
    ),
    (
        "external IPs",
        {
            "clusterIP": "10.96.0.12",
            "externalIPs": ["1.2.3.4", "5.6.7.8"],
            "ports": [{"port": 8080}],
        },
        {},
        ["ClusterIP", "10.96.0.12", "1.2.3.4,5.6.7.8", "8080/TCP", "<none>"],
    ),
    (
        "load balancer pending",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.13",
            "ports": [{"port": 80, "nodePort": 31000}],
        },
        {},
        ["LoadBalancer", "10.96.0.13", "<pending>", "80:31000/TCP", "<none>"],
    ),
    (
        "load balancer with ingress",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.14",
            "externalIPs": ["9.9.9.9"],
            "ports": [],
        },
        {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}},
        ["LoadBalancer", "10.96.0.14", "203.0.113.9,lb.example.com,9.9.9.9", "<none>", "<none>"],
    ),
    (
        "external name",
        {"type": "ExternalName", "externalName": "db.example.com"},
        {},
        ["ExternalName", "<none>", "db.example.com", "<none>", "<none>"],
    ),
    (
        "headless",
        {"clusterIP": "None", "ports": [{"port": 5432}], "selector": {"app": "db"}},
        {},
        ["ClusterIP", "None", "<none>", "5432/TCP", "app=db"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [case[1:] for case in SERVICES],
    ids=[case[0] for case in SERVICES],
)
def test_service(spec: dict[str, Any], status: dict[str, Any], expected: list[Any]) -> None:
    row = cells("Service", {"metadata": meta("svc", 65), "spec": spec, "status": status})
    assert row == ["svc", *expected[:4], "65s", expected[4]]


# --- Job and CronJob -------------------------------------------------------------------------


def job(spec: dict[str, Any], status: dict[str, Any], age: float = 600) -> dict[str, Any]:
    return {
        "metadata": meta("backup", age),
        "spec": {"template": TEMPLATE, **spec},
        "status": status,
    }


JOBS: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("new", job({"completions": 1}, {}), ["Running", "0/1", ""]),
    (
        "running",
        job(
            {"completions": 3, "parallelism": 3},
            {"active": 2, "succeeded": 1, "startTime": ago(192)},
        ),
        ["Running", "1/3", "3m12s"],
    ),
    (
        "complete",
        job(
            {"completions": 1},
            {
                "succeeded": 1,
                "startTime": ago(100),
                "completionTime": ago(55),
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        ),
        ["Complete", "1/1", "45s"],
    ),
    (
        "failed",
        job(
            {},
            {
                "failed": 4,
                "startTime": ago(300),
                "conditions": [{"type": "Failed", "status": "True"}],
            },
        ),
        ["Failed", "0/1", "5m"],
    ),
    (
        "suspended",
        job(
            {"completions": 2, "suspend": True},
            {"conditions": [{"type": "Suspended", "status": "True"}]},
        ),
        ["Suspended", "0/2", ""],
    ),
    (
        "failure target",
        job({"completions": 1}, {"conditions": [{"type": "FailureTarget", "status": "True"}]}),
        ["FailureTarget", "0/1", ""],
    ),
    (
        "a condition that is not True does not count",
        job({"completions": 1}, {"conditions": [{"type": "Complete", "status": "False"}]}),
        ["Running", "0/1", ""],
    ),
    ("work queue", job({"parallelism": 3}, {"succeeded": 1}), ["Running", "1/1 of 3", ""]),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in JOBS], ids=[c[0] for c in JOBS])
def test_job(obj: dict[str, Any], expected: list[Any]) -> None:
    row = cells("Job", obj)
    assert row[0] == "backup"
    assert row[1:4] == expected
    assert row[4:] == ["10m", "web,log", "nginx:1.25,busybox", "<none>"]


def test_job_terminating_and_selector() -> None:
    obj = job({"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}}, {})
    obj["metadata"]["deletionTimestamp"] = ago(1)
    row = cells("Job", obj)
    assert row[1] == "Terminating"
    assert row[-1] == "batch.kubernetes.io/controller-uid=u1"


def test_cron_job() -> None:
    obj = {
        "metadata": meta("nightly", 2 * DAY),
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": TEMPLATE}},
        },
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600)},
    }
    assert cells("CronJob", obj) == [
        "nightly",
        "0 3 * * *",
        "<none>",
        "False",
        1,
        "60m",
        "2d",
        "web,log",
        "nginx:1.25,busybox",
        "<none>",
    ]
    obj["spec"].update(timeZone="Europe/Paris", suspend=True)
    obj["status"] = {}
    assert cells("CronJob", obj)[2:6] == ["Europe/Paris", "True", 0, "<none>"]


# --- config and cluster objects --------------------------------------------------------------


def test_config_map_counts_data_and_binary_data() -> None:
    obj = {"metadata": meta("cfg", 10), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("ConfigMap", obj) == ["cfg", 3, "10s"]
    assert cells("ConfigMap", {"metadata": meta("empty")}) == ["empty", 0, "5m"]


def test_secret() -> None:
    obj = {
        "metadata": meta("tls", 20 * DAY),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    assert cells("Secret", obj) == ["tls", "kubernetes.io/tls", 2, "20d"]
    fresh = {"metadata": meta("s"), "stringData": {"a": "x"}, "data": {"a": "eA==", "b": "eQ=="}}
    assert cells("Secret", fresh) == ["s", "Opaque", 2, "5m"]


def test_namespace() -> None:
    assert cells(
        "Namespace", {"metadata": meta("prod", 400 * DAY), "status": {"phase": "Active"}}
    ) == [
        "prod",
        "Active",
        "400d",
    ]
    going = {
        "metadata": {**meta("old"), "deletionTimestamp": ago(1)},
        "status": {"phase": "Terminating"},
    }
    assert cells("Namespace", going)[1] == "Terminating"
    assert cells("Namespace", {"metadata": meta("new")})[1] == "Active"


def node(
    conditions: list[dict[str, Any]], labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {**meta("n1", 30 * DAY), "labels": labels or {}},
        "spec": spec,
        "status": {
            "conditions": conditions,
            "nodeInfo": {
                "kubeletVersion": "v1.30.0",
                "osImage": "Debian GNU/Linux 12",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "docker://26.1.0",
            },
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "172.18.0.2"},
            ],
        },
    }


def test_node() -> None:
    ready = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]
    labels = {
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/": "x",
        "kubernetes.io/role": "edge",
    }
    assert cells("Node", node(ready, labels)) == [
        "n1",
        "Ready",
        "control-plane,edge",
        "30d",
        "v1.30.0",
        "172.18.0.2",
        "<none>",
        "Debian GNU/Linux 12",
        "6.1.0",
        "docker://26.1.0",
    ]
    not_ready = node([{"type": "Ready", "status": "Unknown"}], unschedulable=True)
    assert cells("Node", not_ready)[1:3] == ["NotReady,SchedulingDisabled", "<none>"]
    assert cells("Node", node([]))[1] == "Unknown"
    bare = cells("Node", {"metadata": meta("n2")})
    assert bare[4:] == ["", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]


def test_persistent_volume_claim() -> None:
    bound = {
        "metadata": meta("data", 7200),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "standard",
            "volumeName": "pvc-123",
            "volumeMode": "Filesystem",
        },
        "status": {
            "phase": "Bound",
            "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"],
            "capacity": {"storage": "2Gi"},
        },
    }
    assert cells("PersistentVolumeClaim", bound) == [
        "data",
        "Bound",
        "pvc-123",
        "2Gi",
        "RWO,ROX,RWX,RWOP",
        "standard",
        "<unset>",
        "120m",  # under 3 hours, minutes
        "Filesystem",
    ]
    pending = {
        "metadata": {
            **meta("claim"),
            "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"},
        },
        "spec": {
            "storageClassName": "standard",
            "volumeAttributesClassName": "gold",
            "volumeMode": "Block",
        },
        "status": {"phase": "Pending"},
    }
    assert cells("PersistentVolumeClaim", pending) == [
        "claim",
        "Pending",
        "",
        "",
        "",
        "beta",
        "gold",
        "5m",
        "Block",
    ]
    pending["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("PersistentVolumeClaim", pending)[1] == "Terminating"


# --- Events ----------------------------------------------------------------------------------


def test_core_event() -> None:
    obj = {
        "metadata": meta("web.17c", 600),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff",
        "type": "Warning",
        "message": "  Back-off restarting failed container\n",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(30),
        "count": 7,
    }
    assert cells("Event", obj) == [
        "30s",
        "Warning",
        "BackOff",
        "pod/web",
        "spec.containers{web}",
        "kubelet, n1",
        "Back-off restarting failed container",
        "10m",
        7,
        "web.17c",
    ]


def test_event_time_series_and_reporting_fallbacks() -> None:
    obj = {
        "metadata": meta("e"),
        "involvedObject": {"kind": "Node"},
        "reason": "Scheduled",
        "type": "Normal",
        "eventTime": "2024-03-10T11:57:59.500000Z",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "sched-1",
    }
    assert cells("Event", obj)[:9] == [
        "2m",
        "Normal",
        "Scheduled",
        "node",
        "",
        "default-scheduler, sched-1",
        "",
        "2m",
        1,
    ]
    obj["series"] = {"count": 4, "lastObservedTime": "2024-03-10T11:59:50.000000Z"}
    assert cells("Event", obj)[0] == "10s"
    assert cells("Event", obj)[8] == 4
    assert cells("Event", {"metadata": meta("none")})[0] == "<unknown>"


def test_events_k8s_io_event_prints_like_core() -> None:
    obj = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": meta("e2"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up replica set web-5d4f to 3",
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "reportingController": "deployment-controller",
        "deprecatedFirstTimestamp": ago(90),
        "deprecatedLastTimestamp": ago(90),
        "deprecatedCount": 1,
    }
    assert cells("Event", obj)[:7] == [
        "90s",
        "Normal",
        "ScalingReplicaSet",
        "deployment/web",
        "",
        "deployment-controller",
        "Scaled up replica set web-5d4f to 3",
    ]


# --- kinds without a printer of their own ----------------------------------------------------


def test_custom_resource_definition_prints_created_at() -> None:
    obj = {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-01-02T03:04:05Z"}}
    assert cells("CustomResourceDefinition", obj) == ["widgets.example.com", "2024-01-02T03:04:05Z"]
    assert table_columns("CustomResourceDefinition")[1]["type"] == "date"
    offset = {"metadata": {"name": "r", "creationTimestamp": "2024-01-02T05:04:05+02:00"}}
    assert cells("Role", offset) == ["r", "2024-01-02T03:04:05Z"]


def test_other_kinds_print_name_and_age() -> None:
    assert cells("Widget", {"metadata": meta("w", 45)}) == ["w", "45s"]
    assert cells("Widget", {"metadata": {"name": "w"}}) == ["w", "<unknown>"]


def test_service_account_and_endpoints() -> None:
    assert cells("ServiceAccount", {"metadata": meta("default"), "secrets": [{"name": "t"}]}) == [
        "default",
        1,
        "5m",
    ]
    subsets = [
        {
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}],
        },
        {"addresses": [{"ip": "fd00::3"}], "ports": [{"port": 80}]},
    ]
    row = cells("Endpoints", {"metadata": meta("web"), "subsets": subsets})
    assert row[1] == "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
    assert cells("Endpoints", {"metadata": meta("none")})[1] == "<none>"
    headless = [{"addresses": [{"ip": "10.0.0.9"}]}]
    assert cells("Endpoints", {"metadata": meta("h"), "subsets": headless})[1] == "10.0.0.9"


def test_ingress_and_ingress_class() -> None:
    rules = [{"host": f"h{i}.test"} for i in range(5)]
    status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    spec = {"ingressClassName": "nginx", "rules": rules, "tls": [{"hosts": ["h0.test"]}]}
    row = cells("Ingress", {"metadata": meta("shop"), "spec": spec, "status": status})
    assert row == [
        "shop",
        "nginx",
        "h0.test,h1.test,h2.test + 2 more...",
        "127.0.0.1",
        "80, 443",
        "5m",
    ]
    bare = cells("Ingress", {"metadata": meta("any"), "spec": {"rules": [{"http": {}}]}})
    assert bare == ["any", "<none>", "*", "", "80", "5m"]
    many = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}]}}
    assert cells("Ingress", {"metadata": meta("m"), "spec": {}, "status": many})[3] == (
        "10.0.0.1,lb.e..."
    )
    klass = {"controller": "recon.dev/ingress"}
    assert cells("IngressClass", {"metadata": meta("recon"), "spec": klass}) == [
        "recon",
        "recon.dev/ingress",
        "<none>",
        "5m",
    ]
    params = {**klass, "parameters": {"apiGroup": "k8s.example.com", "kind": "P", "name": "x"}}
    row = cells("IngressClass", {"metadata": meta("p"), "spec": params})
    assert row[2] == "P.k8s.example.com/x"


# --- CRD additionalPrinterColumns ------------------------------------------------------------

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
    {"name": "Color", "type": "string", "jsonPath": ".spec.color", "description": "The color"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
    {"name": "On", "type": "boolean", "jsonPath": ".spec.enabled"},
    {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
    {"name": "Tags", "type": "string", "jsonPath": ".spec.tags[0]"},
]

WIDGET: dict[str, Any] = {
    "metadata": meta("w1", 3 * 3600 + 5),
    "spec": {"size": 3, "color": "blue", "ratio": 2, "enabled": True, "tags": ["a", "b"]},
    "status": {
        "startedAt": ago(42),
        "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
    },
}


def test_printer_columns_replace_the_builtin_ones_and_add_no_age() -> None:
    table = build_table(
        "Widget", [{"kind": "Widget", **WIDGET}], NOW, printer_columns=PRINTER_COLUMNS
    )
    defs = table["columnDefinitions"]
    assert [c["name"] for c in defs] == [
        "Name",
        "Size",
        "Color",
        "Ready",
        "Ratio",
        "On",
        "Started",
        "Tags",
    ]
    assert defs[2]["description"] == "The color"
    assert defs[1]["description"] == (
        "Custom resource definition column (in JSONPath format): .spec.size"
    )
    assert defs[4]["priority"] == 1
    assert defs[6]["type"] == "date"
    assert table["rows"][0]["cells"] == ["w1", 3, "blue", "True", 2.0, True, "42s", "a"]


def test_printer_columns_that_name_creation_timestamp_print_an_age() -> None:
    columns = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    assert cells("Widget", WIDGET, printer_columns=columns) == ["w1", "3h"]
    assert headers("Widget", printer_columns=columns) == ["NAME", "AGE"]


def test_printer_columns_cell_conversions() -> None:
    obj = {
        "metadata": meta("w2"),
        "spec": {"size": "big", "color": 7, "ratio": "x", "enabled": "yes", "tags": []},
        "status": {"startedAt": "not a time", "conditions": []},
    }
    # Wrong JSON types give empty (null) cells; a string column prints any value.
    assert cells("Widget", obj, printer_columns=PRINTER_COLUMNS) == [
        "w2",
        None,
        "7",
        None,
        None,
        None,
        "<invalid>",
        None,
    ]
    assert cells("Widget", {"metadata": meta("w3")}, printer_columns=PRINTER_COLUMNS) == [
        "w3",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", "3"),
        ("{.spec.replicas}", "3"),
        (".spec.ratio", "1.5"),
        (".spec.flag", "false"),
        (".spec.labels", '{"a":"b"}'),
        (".spec.items[*].name", "first"),
        (".spec.items[1].name", "second"),
        (".spec.items[-1].name", "second"),
        (".spec.items[5].name", None),
        (".spec['dotted.key']", "yes"),
        (".spec.dotted\\.key", "yes"),
        (".status.conditions[?(@.type=='Ready')].reason", "AllGood"),
        ('.status.conditions[?(@.type!="Ready")].reason', "Waiting"),
        ('.status.conditions[?(@.type=="Nope")].reason', None),
        (".spec.missing.deeper", None),
        (".spec[", None),
    ],
)
def test_printer_column_json_paths(path: str, expected: str | None) -> None:
    obj = {
        "metadata": meta("o"),
        "spec": {
            "replicas": 3,
            "ratio": 1.5,
            "flag": False,
            "labels": {"a": "b"},
            "items": [{"name": "first"}, {"name": "second"}],
            "dotted.key": "yes",
        },
        "status": {
            "conditions": [
                {"type": "Progressing", "reason": "Waiting"},
                {"type": "Ready", "reason": "AllGood"},
            ]
        },
    }
    columns = [{"name": "V", "type": "string", "jsonPath": path}]
    assert cells("Thing", obj, printer_columns=columns)[1] == expected
