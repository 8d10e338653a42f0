"""What a DaemonSet needs done now: the pure half of the DaemonSet controller.

Purely computational: `plan(ds, pods, nodes, hash, now)` returns the writes (`Plan`);
`daemonset.DaemonSetController` performs them. The rules are upstream's
`daemon_controller.go` and `update.go`:

- A node should run the daemon pod when `nodefit.fits` accepts the template there (with
  `nodeName` set to the node and the default DaemonSet tolerations added: not-ready and
  unreachable NoExecute; disk/memory/pid-pressure and unschedulable NoSchedule;
  network-unavailable for host-network pods). A node that fails only on an untolerated
  NoSchedule taint keeps the pod it already runs but gets no new one; an untolerated
  NoExecute taint, or a selector/affinity mismatch, removes it.
- Pods are not bound by the controller: each gets a required node affinity
  `matchFields metadata.name In [<node>]` (replacing the template's required terms, which
  the node was just checked against), and the scheduler binds it — ours honours
  `matchFields`, so this works with Recon's own scheduler as with kube-scheduler.
- Per node: a missing pod is created; failed or succeeded pods are deleted (and replaced on
  a later pass); extra pods beyond the oldest are deleted (with `maxSurge`, one old plus one
  new may coexist). Pods whose node is gone are deleted (force, when bound: no node agent
  is left to finish a graceful deletion).
- RollingUpdate, only when nothing else was done this pass. Worked example with 5 nodes,
  `maxUnavailable: 1`, `maxSurge: 0`: all 5 pods old and available → 1 old pod is deleted;
  the node is now unavailable (1 of 1 allowed), so nothing more until the new pod there is
  available; then the next one. An old pod that is not available anyway is replaced at once
  (it costs no availability). With `maxSurge: 1` instead, a new pod is started beside an old
  one, and the old one is deleted once the new one is available.
- Status: desired/current/misscheduled counts per node, ready/available/updated from each
  node's oldest pod; `observedGeneration` only moves when the pass was allowed to act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.controllers.daemonset_pods import (
    HASH_LABEL,
    node_should_run,
    target_node,
)
from reconciler.controllers.deployment_util import resolve_int_or_percent
from reconciler.controllers.podutil import (
    controller_ref,
    is_active,
    is_available,
    is_ready,
    is_terminal,
)
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["Plan", "plan"]

JSONDict = dict[str, Any]


@dataclass
class Plan:
    adopt: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)  # node names
    delete: list[str] = field(default_factory=list)  # pod names
    force_delete: list[str] = field(default_factory=list)  # bound to nodes that are gone
    status: JSONDict = field(default_factory=dict)  # empty: leave the status alone
    requeue_after: float | None = None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _age_key(pod: Mapping[str, Any]) -> tuple[int, str, str]:
    """Oldest first, bound pods before unbound ones (`podByCreationTimestampAndPhase`)."""
    bound = 0 if (pod.get("spec") or {}).get("nodeName") else 1
    return (bound, str(_meta(pod).get("creationTimestamp") or ""), _name(pod))


def _updated(pod: Mapping[str, Any], hash_: str) -> bool:
    return bool(hash_) and (_meta(pod).get("labels") or {}).get(HASH_LABEL) == hash_


def _claim(ds: Mapping[str, Any], pods: Iterable[JSONDict], out: Plan) -> list[JSONDict] | None:
    meta = _meta(ds)
    uid = meta.get("uid")
    try:
        selector = label_selector_from_spec((ds.get("spec") or {}).get("selector") or {})
    except SelectorError:
        return None
    if selector.empty:
        return None  # a DaemonSet selecting every pod is refused, as upstream does
    owned: list[JSONDict] = []
    for pod in pods:
        ref = controller_ref(pod)
        matches = selector.matches(_meta(pod).get("labels") or {})
        if ref is not None and ref.get("uid") == uid:
            if matches:
                owned.append(pod)
            else:
                out.release.append(_name(pod))
        elif ref is None and matches and is_active(pod) and not _deleting(ds):
            out.adopt.append(_name(pod))
            owned.append(pod)
    return owned


def _limits(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts of `desired` nodes, both rounded up; when
    both are zero, one may be unavailable (`updatedDesiredNodeCounts`)."""
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def plan(
    ds: JSONDict,
    pods: list[JSONDict],
    nodes: list[JSONDict],
    hash_: str,
    now: datetime,
    sync: bool = True,
) -> Plan:
    """The writes `ds` needs, from every pod in its namespace and every Node. With
    `sync=False` (earlier creates/deletes not yet seen) only the status is computed."""
    out = Plan()
    owned = _claim(ds, pods, out)
    if owned is None:
        return out
    spec = ds.get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    verdicts = {_name(n): node_should_run(template_spec, n) for n in nodes}
    by_node: dict[str, list[JSONDict]] = {}
    for pod in owned:
        node = target_node(pod)
        if node is not None and not (_deleting(pod) and is_terminal(pod)):
            by_node.setdefault(node, []).append(pod)
    desired = sum(1 for run, _ in verdicts.values() if run)
    surge, unavailable = _limits(ds, desired)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if not rolling:
        surge = 0
    out.status = _status(ds, verdicts, by_node, hash_, min_ready, now, sync)
    if min_ready > 0 and out.status["numberReady"] != out.status["numberAvailable"]:
        out.requeue_after = float(min_ready)
    if not sync or _deleting(ds):
        return out
    for node_name in sorted(verdicts):
        here = by_node.get(node_name, [])
        running = _manage_node(node_name, verdicts[node_name], here, surge, out)
        if surge and len(running) > 1:
            _surge_prune(running, hash_, min_ready, now, out)
    for node_name, here in sorted(by_node.items()):
        if node_name in verdicts:
            continue
        for pod in here:
            if not _deleting(pod):
                bound = (pod.get("spec") or {}).get("nodeName")
                (out.force_delete if bound else out.delete).append(_name(pod))
    if rolling and not (out.create_on or out.delete or out.force_delete):
        nodes_in_play = sorted(set(by_node) | {n for n, (run, _) in verdicts.items() if run})
        if surge:
            _roll_surge(nodes_in_play, verdicts, by_node, hash_, surge, min_ready, now, out)
        else:
            _roll(nodes_in_play, by_node, hash_, unavailable, min_ready, now, out)
    return out


def _manage_node(
    node_name: str, verdict: tuple[bool, bool], here: list[JSONDict], surge: int, out: Plan
) -> list[JSONDict]:
    """Create, prune or remove the daemon pods of one node; returns the pods left running."""
    should_run, should_continue = verdict
    if should_run and not here:
        out.create_on.append(node_name)
        return []
    if not should_continue:
        out.delete.extend(_name(p) for p in here if not _deleting(p))
        return []
    running = []
    for pod in here:
        if _deleting(pod):
            continue
        if is_terminal(pod):
            out.delete.append(_name(pod))  # replaced on a later pass, once it is gone
        else:
            running.append(pod)
    if not surge:
        out.delete.extend(_name(p) for p in sorted(running, key=_age_key)[1:])
        return running[:1]
    if not running and should_run:
        out.create_on.append(node_name)
    return running


def _surge_prune(
    running: list[JSONDict], hash_: str, min_ready: int, now: datetime, out: Plan
) -> None:
    """With surge, keep at most the oldest new and the oldest old pod on a node; the old one
    goes once the new one is available, or at once when it is not ready anyway."""
    newest: JSONDict | None = None
    oldest: JSONDict | None = None
    for pod in sorted(running, key=_age_key):
        if _updated(pod, hash_) and newest is None:
            newest = pod
        elif not _updated(pod, hash_) and oldest is None:
            oldest = pod
        else:
            out.delete.append(_name(pod))
    if (
        newest is not None
        and oldest is not None
        and (not is_ready(oldest) or is_available(newest, min_ready, now))
    ):
        out.delete.append(_name(oldest))


def _new_and_old(here: list[JSONDict], hash_: str) -> tuple[JSONDict | None, JSONDict | None, bool]:
    """`findUpdatedPodsOnNode`: the node's live new and old pod; False when either repeats."""
    new: JSONDict | None = None
    old: JSONDict | None = None
    for pod in here:
        if _deleting(pod):
            continue
        if _updated(pod, hash_):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _roll(
    nodes: list[str],
    by_node: dict[str, list[JSONDict]],
    hash_: str,
    max_unavailable: int,
    min_ready: int,
    now: datetime,
    out: Plan,
) -> None:
    """No surge: delete old pods while no more than `max_unavailable` nodes lack an
    available pod; the manage pass then creates their replacements."""
    unavailable = 0
    replace: list[str] = []
    candidates: list[str] = []
    for node_name in nodes:
        new, old, ok = _new_and_old(by_node.get(node_name, []), hash_)
        if not ok or (new is None) == (old is None):
            unavailable += 1  # the manage pass is still creating or pruning here
        elif new is not None:
            if not is_available(new, min_ready, now):
                unavailable += 1
        elif old is not None and not is_available(old, min_ready, now):
            replace.append(_name(old))
            unavailable += 1
        elif old is not None and unavailable < max_unavailable:
            candidates.append(_name(old))
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    out.delete.extend(replace + candidates[:room])


def _roll_surge(
    nodes: list[str],
    verdicts: Mapping[str, tuple[bool, bool]],
    by_node: dict[str, list[JSONDict]],
    hash_: str,
    max_surge: int,
    min_ready: int,
    now: datetime,
    out: Plan,
) -> None:
    """Surge: start a new pod beside an old one on up to `max_surge` nodes at once (at once
    where the old one is unavailable anyway); the old one goes when the new one is available."""
    surging = 0
    replace: list[str] = []
    candidates: list[str] = []
    for node_name in nodes:
        new, old, ok = _new_and_old(by_node.get(node_name, []), hash_)
        should_run = verdicts.get(node_name, (False, False))[0]
        if not ok:
            surging += 1
        elif old is None:
            continue
        elif new is None:
            if not should_run:
                if not is_available(old, min_ready, now):
                    out.delete.append(_name(old))
            elif not is_available(old, min_ready, now):
                replace.append(node_name)
            elif surging < max_surge:
                candidates.append(node_name)
        elif not is_available(new, min_ready, now):
            surging += 1
        else:
            out.delete.append(_name(old))
    room = min(max(max_surge - surging, 0), len(candidates))
    out.create_on.extend(replace + candidates[:room])


def _status(
    ds: Mapping[str, Any],
    verdicts: Mapping[str, tuple[bool, bool]],
    by_node: Mapping[str, list[JSONDict]],
    hash_: str,
    min_ready: int,
    now: datetime,
    synced: bool,
) -> JSONDict:
    desired = current = misscheduled = ready = available = updated = 0
    for node_name, (should_run, _) in verdicts.items():
        here = sorted((p for p in by_node.get(node_name, []) if not _deleting(p)), key=_age_key)
        if not should_run:
            misscheduled += 1 if here else 0
            continue
        desired += 1
        if not here:
            continue
        current += 1
        pod = here[0]
        if is_ready(pod):
            ready += 1
            available += 1 if is_available(pod, min_ready, now) else 0
        updated += 1 if _updated(pod, hash_) else 0
    previous = ds.get("status") or {}
    status: JSONDict = {
        "observedGeneration": _meta(ds).get("generation", 1)
        if synced
        else previous.get("observedGeneration", 0),
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": updated,
    }
    if previous.get("collisionCount"):
        status["collisionCount"] = previous["collisionCount"]
    return status
