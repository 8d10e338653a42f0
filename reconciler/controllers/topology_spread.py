"""Pod topology spread: may a pod go to a node without making its group lopsided?
kube-scheduler's PodTopologySpread filter, for `whenUnsatisfiable: DoNotSchedule`. Pure.

Charts spread replicas with `topologySpreadConstraints` (`maxSkew: 1` over
`kubernetes.io/hostname` or a zone); users expect a node that would make one domain hold
more than `maxSkew` pods over the emptiest one to be refused in the scheduler's words:

- the node must carry the constraint's `topologyKey` ("node(s) didn't match pod topology
  spread constraints (missing required label)");
- the pods matching the constraint's `labelSelector` (plus `matchLabelKeys` from the pod's
  own labels) in the pod's namespace, not terminating, are counted per domain over the
  nodes that may hold the pod (`nodeAffinityPolicy: Honor`, the default: its nodeSelector
  and required node affinity; `nodeTaintsPolicy: Ignore`, the default) and carry every
  constraint's key; the emptiest domain's count is the minimum (0 when there are fewer
  domains than `minDomains`);
- placing the pod there must leave `count + (1 if the pod matches itself) - minimum` at most
  `maxSkew` ("node(s) didn't match pod topology spread constraints").

`ScheduleAnyway` constraints only rank nodes upstream and are not weighed here.

Worked example: `maxSkew: 1` over zones a (n1) and b (n2), two matching pods on n1, none on
n2: n1 gives 2 + 1 - 0 = 3 > 1 (refused), n2 gives 0 + 1 - 0 = 1 (fits).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reconciler.controllers.nodefit import node_affinity_matches, tolerates
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["MISSING_LABEL", "SPREAD_MISMATCH", "spread_filter"]

JSONDict = dict[str, Any]
Pod = tuple[str, Mapping[str, str], str]  # namespace, labels, node

SPREAD_MISMATCH = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = SPREAD_MISMATCH + " (missing required label)"


def _hard(spec: Mapping[str, Any]) -> list[JSONDict]:
    return [
        c
        for c in spec.get("topologySpreadConstraints") or []
        if isinstance(c, dict) and c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
    ]


def _matcher(
    constraint: Mapping[str, Any], own: Mapping[str, str]
) -> Callable[[Mapping[str, str]], bool]:
    try:
        selector = label_selector_from_spec(constraint.get("labelSelector"))
    except SelectorError:
        return lambda _labels: False
    if constraint.get("labelSelector") is None:
        return lambda _labels: False  # no selector: no pod is counted, as upstream
    keys = [k for k in constraint.get("matchLabelKeys") or [] if k in own]

    def matches(labels: Mapping[str, str]) -> bool:
        return selector.matches(labels) and all(labels.get(k) == own[k] for k in keys)

    return matches


def _eligible(
    spec: Mapping[str, Any], node: Mapping[str, Any], constraint: Mapping[str, Any]
) -> bool:
    if constraint.get("nodeAffinityPolicy", "Honor") == "Honor" and not node_affinity_matches(
        spec, node
    ):
        return False
    if constraint.get("nodeTaintsPolicy", "Ignore") == "Honor":
        tolerations = spec.get("tolerations") or []
        for taint in (node.get("spec") or {}).get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
                tolerations, taint
            ):
                return False
    return True


def spread_filter(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    placed: Callable[[], Iterable[Pod]],
) -> Callable[[str], str | None] | None:
    """The filter for one pod (None when it has no DoNotSchedule constraint). `placed`: the
    pods bound to nodes and not terminating, read once and only when needed."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    constraints = _hard(spec)
    if not constraints:
        return None
    namespace = str(meta.get("namespace") or "")
    own: Mapping[str, str] = meta.get("labels") or {}
    keys = [str(c.get("topologyKey") or "") for c in constraints]
    labels_of = {
        str((n.get("metadata") or {}).get("name")): (n.get("metadata") or {}).get("labels") or {}
        for n in nodes
    }
    pods = [p for p in placed() if p[0] == namespace]
    plans: list[tuple[str, int, Counter[str], int, Callable[[Mapping[str, str]], bool]]] = []
    for constraint, key in zip(constraints, keys, strict=True):
        matches = _matcher(constraint, own)
        domains: Counter[str] = Counter()
        for node in nodes:
            name = str((node.get("metadata") or {}).get("name"))
            node_labels = labels_of[name]
            if all(k in node_labels for k in keys) and _eligible(spec, node, constraint):
                domains[node_labels[key]] += 0  # a domain, even with no pod
        for _, labels, node_name in pods:
            value = labels_of.get(node_name, {}).get(key)
            if value is not None and value in domains and matches(labels):
                domains[str(value)] += 1
        minimum = min(domains.values(), default=0)
        if len(domains) < int(constraint.get("minDomains") or 1):
            minimum = 0
        plans.append((key, int(constraint.get("maxSkew") or 1), domains, minimum, matches))

    def reason(node: str) -> str | None:
        node_labels = labels_of.get(node, {})
        if any(k not in node_labels for k in keys):
            return MISSING_LABEL
        for key, max_skew, domains, minimum, matches in plans:
            itself = 1 if matches(own) else 0
            if domains[node_labels[key]] + itself - minimum > max_skew:
                return SPREAD_MISMATCH
        return None

    return reason
