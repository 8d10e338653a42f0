"""What a StatefulSet needs done now: the pure half of the StatefulSet controller.

Purely computational: `plan(set, pods, claims, revisions, now)` returns the writes
(`Plan`); `statefulset.StatefulSetController` performs them. The rules are upstream's
`stateful_set_control.go`:

- Pods are named `<set>-<ordinal>` for ordinals `start .. start+replicas-1`
  (`spec.ordinals.start`, default 0); each gets `hostname` = its name, `subdomain` =
  `spec.serviceName`, the labels `statefulset.kubernetes.io/pod-name`,
  `apps.kubernetes.io/pod-index` and `controller-revision-hash` (the revision's name), and one
  `persistentVolumeClaim` volume per `volumeClaimTemplates` entry, claim
  `<template>-<set>-<ordinal>`, created before the pod and never deleted by scaling or pod
  deletion unless `persistentVolumeClaimRetentionPolicy` says Delete.
- OrderedReady (monotonic): walking ordinals upwards, the first pod that is missing is created
  and nothing else happens until it is Running and Ready (and available for
  `minReadySeconds`); a pod that is not healthy, or is terminating, stops the walk. Scale
  down removes the highest ordinal first, one at a time, each only once every lower pod is
  healthy and the previous one is gone. Parallel creates and deletes all at once.
- A pod that Failed or Succeeded is deleted and, once gone, recreated under the same name.
- RollingUpdate: from the highest ordinal down to `partition`, the first pod not at the
  update revision is deleted (and recreated at it by the walk above), one at a time, each
  only after the ones above it are healthy at the update revision. Ordinals below the
  partition are (re)created at the *current* revision. OnDelete never deletes for an update;
  pods a user deletes come back at the update revision.
- Status: counts, `currentRevision`/`updateRevision`; when every pod is at the update
  revision and ready, the update revision becomes the current one (upstream does this for
  RollingUpdate only; we also do it for OnDelete, where `currentRevision` would otherwise
  never move).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.controllers.podutil import (
    controller_ref,
    is_active,
    is_available,
    is_ready,
    is_terminal,
)
from reconciler.controllers.statefulset_pods import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    claim_name,
    claim_owner_references,
    claim_templates,
    new_claim,
    ordinal_of,
    stateful_pod,
)
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["Plan", "Revisions", "plan"]

JSONDict = dict[str, Any]

Check = Callable[[JSONDict], bool]
Stop = Callable[[str], bool]  # note why the walk stops; True when it must (OrderedReady)


@dataclass(frozen=True)
class Revisions:
    """The two revisions a set rolls between, by name, with the templates they store."""

    current_name: str
    current_template: JSONDict
    update_name: str
    update_template: JSONDict


@dataclass
class Plan:
    adopt: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    relabel: dict[str, dict[str, str]] = field(default_factory=dict)  # pod -> labels to add
    claim_owners: dict[str, list[JSONDict]] = field(default_factory=dict)  # PVC -> ownerRefs
    create_claims: list[JSONDict] = field(default_factory=list)
    create_pods: list[JSONDict] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)  # empty: leave the status alone
    requeue_after: float | None = None
    waiting: str = ""  # why the walk stopped, for logs and tests


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _revision_of(pod: Mapping[str, Any]) -> str:
    return str((_meta(pod).get("labels") or {}).get(REVISION_LABEL, ""))


def _healthy(pod: Mapping[str, Any], min_ready: int, now: datetime) -> bool:
    """Running, ready (for `minReadySeconds`) and not on its way out."""
    return (
        not _deleting(pod)
        and (pod.get("status") or {}).get("phase") == "Running"
        and is_available(pod, min_ready, now)
    )


def _status(
    sts: Mapping[str, Any],
    owned: list[JSONDict],
    revisions: Revisions,
    min_ready: int,
    now: datetime,
    synced: bool,
) -> JSONDict:
    previous = sts.get("status") or {}
    live = [p for p in owned if not _deleting(p)]
    running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]
    ready = sum(1 for p in running if is_ready(p))
    status: JSONDict = {
        "observedGeneration": _meta(sts).get("generation", 1)
        if synced
        else previous.get("observedGeneration", 0),
        "replicas": len(owned),
        "readyReplicas": ready,
        "availableReplicas": sum(1 for p in running if is_available(p, min_ready, now)),
        "currentReplicas": sum(1 for p in live if _revision_of(p) == revisions.current_name),
        "updatedReplicas": sum(1 for p in live if _revision_of(p) == revisions.update_name),
        "currentRevision": revisions.current_name,
        "updateRevision": revisions.update_name,
        "collisionCount": int(previous.get("collisionCount") or 0),
    }
    if status["updatedReplicas"] == status["replicas"] and ready == status["replicas"]:
        status["currentRevision"] = revisions.update_name
        status["currentReplicas"] = status["updatedReplicas"]
    return status


def _claim_pods(
    sts: Mapping[str, Any], pods: list[JSONDict], out: Plan
) -> dict[int, JSONDict] | None:
    """The set's pods by ordinal; fills `out.adopt` / `out.release`. None: bad selector."""
    meta = _meta(sts)
    set_name, uid = str(meta.get("name", "")), meta.get("uid")
    try:
        selector = label_selector_from_spec((sts.get("spec") or {}).get("selector") or {})
    except SelectorError:
        return None
    owned: dict[int, JSONDict] = {}
    for pod in pods:
        ordinal = ordinal_of(set_name, _name(pod))
        ref = controller_ref(pod)
        matches = not selector.empty and selector.matches(_meta(pod).get("labels") or {})
        if ref is not None and ref.get("uid") == uid:
            if not matches:
                out.release.append(_name(pod))
            elif ordinal is not None:
                owned[ordinal] = pod
        elif (
            ref is None
            and matches
            and ordinal is not None
            and is_active(pod)
            and not _deleting(sts)
        ):
            out.adopt.append(_name(pod))
            owned[ordinal] = pod
    return owned


def _storage(
    sts: Mapping[str, Any],
    owned: dict[int, JSONDict],
    claims: Mapping[str, JSONDict],
    start: int,
    end: int,
    out: Plan,
) -> None:
    """Claims that existing pods lack are created; claim owners follow the retention policy."""
    set_name = _name(sts)
    for ordinal, pod in sorted(owned.items()):
        if _deleting(pod):
            continue
        in_range = start <= ordinal < end
        for template in claim_templates(sts):
            cname = claim_name(str(_meta(template).get("name")), set_name, ordinal)
            claim = claims.get(cname)
            if claim is None:
                if in_range:
                    out.create_claims.append(new_claim(sts, template, ordinal))
                continue
            if _deleting(claim):
                continue
            refs = claim_owner_references(sts, claim, pod, in_range)
            if refs != list(_meta(claim).get("ownerReferences") or []):
                out.claim_owners[cname] = refs


def plan(
    sts: JSONDict,
    pods: list[JSONDict],
    claims: Mapping[str, JSONDict],
    revisions: Revisions,
    now: datetime,
    sync: bool = True,
) -> Plan:
    """The writes `sts` needs, from every pod and PVC (by name) in its namespace. With
    `sync=False` (earlier writes not yet observed) only the status is computed."""
    out = Plan()
    owned = _claim_pods(sts, pods, out)
    if owned is None:
        return out
    spec = sts.get("spec") or {}
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    end = start + int(spec.get("replicas", 1))
    min_ready = int(spec.get("minReadySeconds") or 0)
    out.status = _status(sts, list(owned.values()), revisions, min_ready, now, sync)
    if min_ready > 0 and any(
        is_ready(p) and not is_available(p, min_ready, now) for p in owned.values()
    ):
        out.requeue_after = float(min_ready)
    if not sync or _deleting(sts):
        return out
    _storage(sts, owned, claims, start, end, out)
    monotonic = spec.get("podManagementPolicy") != "Parallel"
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0) if rolling else 0

    def healthy(pod: JSONDict) -> bool:
        return _healthy(pod, min_ready, now)

    def stop(why: str) -> bool:
        out.waiting = out.waiting or why
        return monotonic

    blocked = _scale_up(
        sts, owned, claims, revisions, (start, end, partition if rolling else 0), out, healthy, stop
    )
    if not blocked:
        blocked = _scale_down(owned, start, end, healthy, monotonic, out, stop)
    if not blocked and rolling:
        _roll(owned, start + partition, end, revisions.update_name, healthy, out)
    return out


def _scale_up(
    sts: JSONDict,
    owned: dict[int, JSONDict],
    claims: Mapping[str, JSONDict],
    revisions: Revisions,
    bounds: tuple[int, int, int],
    out: Plan,
    healthy: Check,
    stop: Stop,
) -> bool:
    """Delete finished pods, create missing ones (claims first); True when the walk stops.
    `bounds` is (first ordinal, end, partition: ordinals below start+partition stay at the
    current revision)."""
    start, end, partition = bounds
    set_name = _name(sts)
    planned_claims = {_name(c) for c in out.create_claims}
    for ordinal in range(start, end):
        pod = owned.get(ordinal)
        if pod is not None and is_terminal(pod) and not _deleting(pod):
            out.delete_pods.append(_name(pod))  # recreated under the same name once gone
            if stop(f"{_name(pod)} finished; waiting for it to be deleted"):
                return True
            continue
        if pod is not None:
            if not _deleting(pod) and not is_terminal(pod):
                wanted = {POD_NAME_LABEL: _name(pod), POD_INDEX_LABEL: str(ordinal)}
                labels = _meta(pod).get("labels") or {}
                if any(labels.get(k) != v for k, v in wanted.items()):
                    out.relabel[_name(pod)] = wanted
            if _deleting(pod) and stop(f"{_name(pod)} is terminating"):
                return True
            if not healthy(pod) and stop(f"{_name(pod)} is not Running and Ready"):
                return True
            continue
        blocked_by = ""
        for template in claim_templates(sts):
            cname = claim_name(str(_meta(template).get("name")), set_name, ordinal)
            claim = claims.get(cname)
            if claim is not None and _deleting(claim):
                blocked_by = cname
            elif claim is None and cname not in planned_claims:
                out.create_claims.append(new_claim(sts, template, ordinal))
                planned_claims.add(cname)
        if blocked_by:
            if stop(f"claim {blocked_by} is being deleted"):
                return True
            continue
        at_current = ordinal < start + partition
        out.create_pods.append(
            stateful_pod(
                sts,
                revisions.current_template if at_current else revisions.update_template,
                revisions.current_name if at_current else revisions.update_name,
                ordinal,
            )
        )
        if stop(f"{set_name}-{ordinal} was just created"):
            return True
    return False


def _scale_down(
    owned: dict[int, JSONDict],
    start: int,
    end: int,
    healthy: Check,
    monotonic: bool,
    out: Plan,
    stop: Stop,
) -> bool:
    """Delete pods outside the ordinal range, highest first; True when the walk stops."""
    condemned = sorted((o for o in owned if not start <= o < end), reverse=True)
    first_unhealthy = next((o for o in reversed(condemned) if not healthy(owned[o])), None)
    for ordinal in condemned:
        pod = owned[ordinal]
        if _deleting(pod):
            if stop(f"{_name(pod)} is terminating"):
                return True
            continue
        if monotonic and not healthy(pod) and ordinal != first_unhealthy:
            return stop(f"{_name(pod)} is not healthy; a lower pod is not either")
        out.delete_pods.append(_name(pod))
        if stop(f"{_name(pod)} is being removed"):
            return True
    return False


def _roll(
    owned: dict[int, JSONDict],
    lowest: int,
    end: int,
    update_name: str,
    healthy: Check,
    out: Plan,
) -> None:
    """RollingUpdate: replace the highest pod not at the update revision, one at a time."""
    busy = {_name(p) for p in out.create_pods} | set(out.delete_pods)
    for ordinal in range(end - 1, lowest - 1, -1):
        pod = owned.get(ordinal)
        if pod is None or _name(pod) in busy:
            out.waiting = out.waiting or f"pod {ordinal} is being replaced"
            return
        if _revision_of(pod) != update_name and not _deleting(pod):
            out.delete_pods.append(_name(pod))
            out.waiting = out.waiting or f"{_name(pod)} is being updated"
            return
        if not healthy(pod):
            out.waiting = out.waiting or f"{_name(pod)} is not yet healthy"
            return
