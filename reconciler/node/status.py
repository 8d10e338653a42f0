"""The pod status a kubelet reports, computed from what the agent observed. Pure.

`kubectl get pods` reads READY, STATUS and RESTARTS from this: the phase follows the
kubelet's `getPhase`, a waiting container's reason (ContainerCreating, CrashLoopBackOff,
ErrImagePull, ...) becomes the STATUS column, a terminated one gives Completed / Error /
OOMKilled. Condition times only move when a condition changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler import pod_qos
from reconciler.runtime.base import ContainerState, ContainerStatus

__all__ = ["ContainerView", "PodView", "pod_phase", "pod_status", "qos_class", "rfc3339"]

JSONDict = dict[str, Any]


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ContainerView:
    """One container of the pod as the agent sees it now."""

    name: str
    image: str
    current: ContainerState | None = None
    previous: ContainerState | None = None
    restart_count: int = 0
    waiting_reason: str | None = None
    waiting_message: str = ""
    ready: bool = False
    started: bool = False
    resources: Mapping[str, Any] | None = None
    """The requests and limits the running container has (after an in-place resize, once
    the engine took it), as `status.containerStatuses[].resources` reports them."""
    resize_error: str = ""
    """Why the engine refused the container's resize (`PodResizeInProgress`, reason Error)."""
    messages: Mapping[str, str] = field(default_factory=dict)
    """Container id -> termination message, for the instances that exited."""


@dataclass(frozen=True)
class PodView:
    init: Sequence[ContainerView]
    app: Sequence[ContainerView]
    pod_ip: str | None
    host_ip: str
    start_time: datetime | None
    initialized: bool
    failed_init: bool = False
    sandbox_ready: bool = False
    runtime: str = "docker"
    """The containerID scheme (`docker://<id>`), as kubectl shows it."""
    ephemeral: Sequence[ContainerView] = ()
    """`kubectl debug`'s containers: reported, never part of the phase or readiness."""
    resize_pending: tuple[str, str] | None = None
    """(reason, message) of a resize the node cannot take now (`PodResizePending`)."""


def _terminated(state: ContainerState, runtime: str, message: str = "") -> JSONDict:
    code = state.exit_code if state.exit_code is not None else 0
    reason = "OOMKilled" if state.oom_killed else ("Completed" if code == 0 else "Error")
    out: JSONDict = {
        "exitCode": code,
        "reason": reason,
        "startedAt": rfc3339(state.started_at),
        "finishedAt": rfc3339(state.finished_at),
        "containerID": f"{runtime}://{state.id}",
    }
    if message or state.error:
        out["message"] = message or state.error
    return out


def _state(view: ContainerView, runtime: str) -> JSONDict:
    current = view.current
    if view.waiting_reason or current is None:
        waiting: JSONDict = {"reason": view.waiting_reason or "ContainerCreating"}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        return {"waiting": waiting}
    if current.status == ContainerStatus.RUNNING:
        return {"running": {"startedAt": rfc3339(current.started_at)}}
    if current.status == ContainerStatus.EXITED:
        return {"terminated": _terminated(current, runtime, view.messages.get(current.id, ""))}
    return {"waiting": {"reason": "ContainerCreating"}}


def _container_status(view: ContainerView, runtime: str) -> JSONDict:
    out: JSONDict = {
        "name": view.name,
        "image": view.image,
        "imageID": "",
        "ready": view.ready,
        "restartCount": view.restart_count,
        "started": view.started,
        "state": _state(view, runtime),
        "lastState": {},
    }
    if view.current is not None:
        out["containerID"] = f"{runtime}://{view.current.id}"
        out["imageID"] = view.current.image_id
    if view.resources:
        out["resources"] = dict(view.resources)
        requests = view.resources.get("requests") or {}
        if requests:
            out["allocatedResources"] = dict(requests)
    last = view.previous
    if last is not None and last.status == ContainerStatus.EXITED:
        out["lastState"] = {
            "terminated": _terminated(last, runtime, view.messages.get(last.id, ""))
        }
    return out


def pod_phase(view: PodView, restart_policy: str) -> str:
    """The kubelet's getPhase."""
    if view.failed_init:
        return "Failed"
    if not view.initialized:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for container in view.app:
        state = _state(container, view.runtime)
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif container.previous is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def qos_class(pod: JSONDict) -> str:
    return pod_qos.qos_class(pod.get("spec") or {})


OWN_CONDITIONS = frozenset(
    {
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
        "PodResizeInProgress",
        "PodResizePending",
    }
)
"""The conditions the node writes; any other (DisruptionTarget, a readiness gate's) belongs
to whoever set it and is kept as it is, as the kubelet keeps them."""


def _gate_problem(gates: Sequence[Mapping[str, Any]], by_type: Mapping[Any, Any]) -> str | None:
    """Why the pod's readiness gates hold Ready back (the kubelet's words), or None."""
    for gate in gates:
        kind = gate.get("conditionType")
        condition = by_type.get(kind)
        if condition is None:
            return f'corresponding condition of pod readiness gate "{kind}" does not exist.'
        if condition.get("status") != "True":
            return (
                f'the status of pod readiness gate "{kind}" is not "True", but '
                f"{condition.get('status')}"
            )
    return None


def _conditions(
    view: PodView,
    phase: str,
    old: Sequence[Mapping[str, Any]],
    now: datetime,
    gates: Sequence[Mapping[str, Any]] = (),
) -> list[JSONDict]:
    previous = {c.get("type"): c for c in old}
    containers_ready = bool(view.app) and all(c.ready for c in view.app)
    if phase == "Succeeded":
        containers_ready = False
    gate_problem = _gate_problem(gates, previous)
    ready_reason = "ContainersNotReady" if not containers_ready else None
    if ready_reason is None and gate_problem is not None:
        ready_reason = "ReadinessGatesNotReady"
    wanted: list[tuple[str, bool, str | None]] = [
        ("PodReadyToStartContainers", view.sandbox_ready, None),
        ("Initialized", view.initialized, None if view.initialized else "ContainersNotInitialized"),
        ("Ready", ready_reason is None, ready_reason),
        ("ContainersReady", containers_ready, None if containers_ready else "ContainersNotReady"),
        ("PodScheduled", True, None),
    ]
    if phase == "Succeeded":
        wanted[2] = ("Ready", False, "PodCompleted")
        wanted[3] = ("ContainersReady", False, "PodCompleted")
    out: list[JSONDict] = [dict(c) for c in old if c.get("type") not in OWN_CONDITIONS]
    refused = [c for c in view.app if c.resize_error]
    if refused:
        # the node's own while a resize it could not apply is outstanding (the kubelet's)
        since = (previous.get("PodResizeInProgress") or {}).get("lastTransitionTime")
        out.append(
            {
                "type": "PodResizeInProgress",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": since or rfc3339(now),
                "reason": "Error",
                "message": refused[0].resize_error,
            }
        )
    if view.resize_pending is not None:
        pending_since = (previous.get("PodResizePending") or {}).get("lastTransitionTime")
        out.append(
            {
                "type": "PodResizePending",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": pending_since or rfc3339(now),
                "reason": view.resize_pending[0],
                "message": view.resize_pending[1],
            }
        )
    for kind, value, reason in wanted:
        status = "True" if value else "False"
        before = previous.get(kind)
        condition: JSONDict = {"type": kind, "status": status, "lastProbeTime": None}
        if before is not None and before.get("status") == status:
            condition["lastTransitionTime"] = before.get("lastTransitionTime")
        else:
            condition["lastTransitionTime"] = rfc3339(now)
        if reason and status == "False":
            condition["reason"] = reason
            if reason == "ContainersNotReady":
                names = [c.name for c in view.app if not c.ready]
                condition["message"] = f"containers with unready status: [{' '.join(names)}]"
            elif reason == "ReadinessGatesNotReady":
                condition["message"] = gate_problem
            elif reason == "ContainersNotInitialized":
                names = [c.name for c in view.init if not _init_done(c)]
                condition["message"] = f"containers with incomplete status: [{' '.join(names)}]"
        out.append(condition)
    return out


def _init_done(view: ContainerView) -> bool:
    current = view.current
    return (
        current is not None
        and current.status == ContainerStatus.EXITED
        and current.exit_code == 0
        and not view.waiting_reason
    )


def pod_status(pod: JSONDict, view: PodView, now: datetime) -> JSONDict:
    """The full `status` to write back for `pod`."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    phase = pod_phase(view, str(spec.get("restartPolicy") or "Always"))
    status: JSONDict = {
        "phase": phase,
        "conditions": _conditions(
            view, phase, old.get("conditions") or [], now, spec.get("readinessGates") or []
        ),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": rfc3339(view.start_time),
        "containerStatuses": [_container_status(c, view.runtime) for c in view.app],
        "qosClass": qos_class(pod),
    }
    if view.init:
        statuses = []
        for container in view.init:
            entry = _container_status(container, view.runtime)
            entry["ready"] = _init_done(container)
            statuses.append(entry)
        status["initContainerStatuses"] = statuses
    if view.ephemeral:
        statuses = []
        for container in view.ephemeral:
            entry = _container_status(container, view.runtime)
            entry["ready"] = False  # never probed, never part of the pod's readiness
            del entry["started"]  # the kubelet leaves it out for ephemeral containers
            statuses.append(entry)
        status["ephemeralContainerStatuses"] = statuses
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    return status
