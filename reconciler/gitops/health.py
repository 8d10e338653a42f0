"""Health of live objects, per kind, as Argo CD users know it.

A sync is finished when what it applied is *healthy*, not merely stored: a Deployment has
rolled out, a Job completed, a PVC is bound, a Service has endpoints. `assess` is a pure
function of the live object (and, for a Service, its Endpoints), so the sync loop, `recon
status` and the tests share one definition.

Statuses, worst first (the Application's health is its worst resource's):
    Missing      the object does not exist
    Degraded     it failed and will not recover by itself (progress deadline, Job failed,
                 CrashLoopBackOff, image pull failures)
    Progressing  not there yet (rolling out, pods starting, PVC pending)
    Suspended    paused on purpose (paused Deployment, suspended Job/CronJob)
    Healthy
    Unknown      cannot tell (should not happen for kinds we know)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]

HEALTHY = "Healthy"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
SUSPENDED = "Suspended"
MISSING = "Missing"
UNKNOWN = "Unknown"

# Worst first: the aggregate of several statuses is the first of these present.
_ORDER = (MISSING, DEGRADED, PROGRESSING, SUSPENDED, UNKNOWN, HEALTHY)

_BAD_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class Health:
    status: str
    message: str = ""


def worst(statuses: Iterable[str]) -> str:
    """The aggregate health: the worst of `statuses`, Healthy when there are none."""
    present = set(statuses)
    for status in _ORDER:
        if status in present:
            return status
    return HEALTHY


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        str(c.get("type")): c
        for c in (obj.get("status") or {}).get("conditions") or []
        if isinstance(c, Mapping)
    }


def _observed(obj: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def _deployment(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Health(SUSPENDED, "Deployment is paused")
    if not _observed(obj):
        return Health(PROGRESSING, "Waiting for rollout to finish: observed generation is old")
    progressing = _conditions(obj).get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(DEGRADED, f"Deployment {_name(obj)!r} exceeded its progress deadline")
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < replicas:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have "
            "been updated...",
        )
    if total > updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {total - updated} old replicas are pending "
            "termination...",
        )
    if available < updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
            "available...",
        )
    return Health(HEALTHY, f"{available}/{replicas} replicas available")


def _replica_set(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _observed(obj):
        return Health(PROGRESSING, "Waiting for the ReplicaSet to be observed")
    replicas = int(spec.get("replicas", 1))
    available = int(status.get("availableReplicas", 0))
    if available < replicas:
        return Health(PROGRESSING, f"{available}/{replicas} replicas available")
    return Health(HEALTHY, f"{available}/{replicas} replicas available")


def _stateful_set(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not _observed(obj):
        return Health(PROGRESSING, "Waiting for the StatefulSet to be observed")
    replicas = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    if ready < replicas:
        return Health(PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate":
        partition = int(
            ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0)
        )
        updated = int(status.get("updatedReplicas", 0))
        if updated < replicas - partition:
            return Health(
                PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{replicas - partition} new pods have been updated...",
            )
        if partition == 0 and status.get("updateRevision") != status.get("currentRevision"):
            return Health(PROGRESSING, "Waiting for the rolling update to complete")
    return Health(HEALTHY, f"{ready}/{replicas} pods ready")


def _daemon_set(obj: Mapping[str, Any]) -> Health:
    status = obj.get("status") or {}
    if not _observed(obj):
        return Health(PROGRESSING, "Waiting for the DaemonSet to be observed")
    desired = int(status.get("desiredNumberScheduled", 0))
    updated = int(status.get("updatedNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    if updated < desired:
        return Health(PROGRESSING, f"{updated} out of {desired} new pods have been updated...")
    if available < desired:
        return Health(PROGRESSING, f"{available} of {desired} updated pods are available...")
    return Health(HEALTHY, f"{available}/{desired} pods available")


def _job(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    for kind in ("Failed", "FailureTarget"):
        cond = conditions.get(kind)
        if cond is not None and cond.get("status") == "True":
            return Health(DEGRADED, str(cond.get("message") or cond.get("reason") or "Job failed"))
    for kind in ("Complete", "SuccessCriteriaMet"):
        cond = conditions.get(kind)
        if cond is not None and cond.get("status") == "True":
            return Health(HEALTHY, "Job completed")
    if (obj.get("spec") or {}).get("suspend"):
        return Health(SUSPENDED, "Job is suspended")
    return Health(PROGRESSING, "Job is running")


def _cron_job(obj: Mapping[str, Any]) -> Health:
    if (obj.get("spec") or {}).get("suspend"):
        return Health(SUSPENDED, "CronJob is suspended")
    return Health(HEALTHY, "")


def _pod(obj: Mapping[str, Any]) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = status.get("phase", "Pending")
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _BAD_WAITING:
            message = waiting.get("message") or ""
            return Health(DEGRADED, f"{cs.get('name')}: {waiting['reason']} {message}".strip())
    if phase == "Succeeded":
        return Health(HEALTHY, "Pod completed")
    if phase == "Failed":
        return Health(DEGRADED, str(status.get("message") or status.get("reason") or "Pod failed"))
    if phase == "Running":
        if spec.get("restartPolicy", "Always") != "Always":
            return Health(PROGRESSING, "Pod is running")
        ready = _conditions(obj).get("Ready")
        if ready is not None and ready.get("status") == "True":
            return Health(HEALTHY, "Pod is ready")
        return Health(PROGRESSING, "Waiting for the pod to be ready")
    return Health(PROGRESSING, f"Pod is {phase}")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase", "Pending")
    if phase == "Bound":
        return Health(HEALTHY, "Bound")
    if phase == "Lost":
        return Health(DEGRADED, "The claim lost its volume")
    return Health(PROGRESSING, "Waiting for the claim to be bound")


def _namespace(obj: Mapping[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase", "Active")
    return Health(HEALTHY if phase == "Active" else PROGRESSING, str(phase))


def _service(obj: Mapping[str, Any], endpoints: Mapping[str, Any] | None) -> Health:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName" or not spec.get("selector"):
        return Health(HEALTHY, "")
    ready = sum(
        len(subset.get("addresses") or []) for subset in (endpoints or {}).get("subsets") or []
    )
    if ready == 0:
        return Health(PROGRESSING, "Waiting for the Service to have ready endpoints")
    return Health(HEALTHY, f"{ready} ready endpoint(s)")


def _application(obj: Mapping[str, Any]) -> Health:
    health = (obj.get("status") or {}).get("health") or {}
    return Health(str(health.get("status") or PROGRESSING), str(health.get("message") or ""))


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


_ASSESSORS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Namespace"): _namespace,
    ("recon.dev", "Application"): _application,
}


def assess(obj: Mapping[str, Any] | None, endpoints: Mapping[str, Any] | None = None) -> Health:
    """The health of a live object (None: it does not exist). `endpoints` is the Endpoints
    object of the same name, consulted for Services only."""
    if obj is None:
        return Health(MISSING, "the object does not exist")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Health(PROGRESSING, "the object is being deleted")
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    if (group, kind) == ("", "Service"):
        return _service(obj, endpoints)
    assessor = _ASSESSORS.get((group, kind))
    if assessor is None:
        return Health(HEALTHY, "")
    return assessor(obj)
