"""Inter-pod affinity and anti-affinity: may a pod go to a node, given the pods already
placed? kube-scheduler's InterPodAffinity filter, for the required terms. Pure.

Users write `podAntiAffinity` with `topologyKey: kubernetes.io/hostname` to keep replicas
on different nodes, and `podAffinity` to put a cache next to its app; on one node the first
keeps all replicas but one Pending, and users expect the scheduler's words for it. A node
passes when, as upstream checks them, in this order:

1. every required affinity term of the new pod finds a matching placed pod in the node's
   domain for the term's `topologyKey` (the node must have every term's topology label),
   unless no placed pod matches any of the terms and the new pod matches them all itself:
   the first pod of a group that wants to be together ("node(s) didn't match pod affinity
   rules");
2. no required anti-affinity term of the new pod matches a placed pod in the node's domain
   ("node(s) didn't match pod anti-affinity rules");
3. no pod already placed has a required anti-affinity term that matches the new pod within
   that node's topology domain ("node(s) didn't satisfy existing pods anti-affinity rules").

A term matches pods in its `namespaces` and the namespaces its `namespaceSelector` selects
(`{}`: all), or else in the namespace of the pod that has the term; `labelSelector` absent
matches nothing; `matchLabelKeys` / `mismatchLabelKeys` add `key in (value)` /
`key notin (value)` for the term owner's own labels. The preferred terms only rank nodes
upstream; with a choice of nodes by fewest pods here they are not weighed.

Worked example: a Deployment `web` (3 replicas) with required anti-affinity on
`app=web` over `kubernetes.io/hostname`, one node: `web-1` is placed (nothing matches yet);
`web-2` fails rule 2 on the node (web-1 is in its domain), so it waits with "0/1 nodes are
available: 1 node(s) didn't match pod anti-affinity rules."
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = [
    "AFFINITY_MISMATCH",
    "ANTI_AFFINITY_MISMATCH",
    "EXISTING_ANTI_AFFINITY",
    "AffinityCheck",
    "Placed",
    "required_terms",
]

JSONDict = dict[str, Any]
NamespaceLabels = Callable[[str], Mapping[str, str] | None]

EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"


def required_terms(spec: Mapping[str, Any], kind: str) -> tuple[JSONDict, ...]:
    """The required terms of `podAffinity` or `podAntiAffinity` in a pod spec."""
    section = ((spec.get("affinity") or {}).get(kind)) or {}
    terms = section.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    return tuple(t for t in terms if isinstance(t, dict))


@dataclass(frozen=True)
class Placed:
    """A pod bound to a node, as the filter sees it."""

    namespace: str
    labels: Mapping[str, str]
    node: str
    anti_terms: tuple[JSONDict, ...] = ()

    @staticmethod
    def of(pod: Mapping[str, Any]) -> Placed:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        return Placed(
            str(meta.get("namespace") or ""),
            meta.get("labels") or {},
            str(spec.get("nodeName") or ""),
            required_terms(spec, "podAntiAffinity"),
        )


def _term_matches(
    term: Mapping[str, Any],
    owner_namespace: str,
    owner_labels: Mapping[str, str],
    namespace: str,
    labels: Mapping[str, str],
    namespace_labels: NamespaceLabels,
) -> bool:
    """Whether a pod (`namespace`, `labels`) is one the term (of a pod in `owner_namespace`
    with `owner_labels`) is about."""
    named = term.get("namespaces") or []
    selector_spec = term.get("namespaceSelector")
    if not named and selector_spec is None:
        in_scope = namespace == owner_namespace
    else:
        in_scope = namespace in named
        if not in_scope and selector_spec is not None:
            try:
                in_scope = label_selector_from_spec(selector_spec).matches(
                    namespace_labels(namespace) or {}
                )
            except SelectorError:
                in_scope = False
    if not in_scope or term.get("labelSelector") is None:
        return False
    try:
        selector = label_selector_from_spec(term["labelSelector"])
    except SelectorError:
        return False
    if not selector.matches(labels):
        return False
    for key in term.get("matchLabelKeys") or []:
        if key in owner_labels and labels.get(key) != owner_labels[key]:
            return False
    for key in term.get("mismatchLabelKeys") or []:
        if key in owner_labels and labels.get(key) == owner_labels[key]:
            return False
    return True


class AffinityCheck:
    """The filter for one pod, prepared once per scheduling attempt: `reason(node)` is None
    when the node passes. `placed`: the pods bound to nodes (terminating ones count, as
    upstream); only read when the pod has required terms of its own. `holders`: the placed
    pods with required anti-affinity terms."""

    def __init__(
        self,
        pod: Mapping[str, Any],
        nodes: Sequence[Mapping[str, Any]],
        placed: Callable[[], Iterable[Placed]],
        holders: Iterable[Placed],
        namespace_labels: NamespaceLabels,
    ) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.namespace = str(meta.get("namespace") or "")
        self.labels: Mapping[str, str] = meta.get("labels") or {}
        self.affinity = required_terms(spec, "podAffinity")
        self.anti = required_terms(spec, "podAntiAffinity")
        self.namespace_labels = namespace_labels
        self.node_labels = {
            str((n.get("metadata") or {}).get("name")): (n.get("metadata") or {}).get("labels")
            or {}
            for n in nodes
        }
        self.holders = [h for h in holders if self._threatened_by(h)]
        self.others = list(placed()) if self.affinity or self.anti else []
        self.first_of_group = bool(self.affinity) and self._first_of_group()

    @property
    def needed(self) -> bool:
        """Whether the filter can refuse anything for this pod at all."""
        return bool(self.affinity or self.anti or self.holders)

    def _threatened_by(self, holder: Placed) -> bool:
        return any(
            _term_matches(
                t,
                holder.namespace,
                holder.labels,
                self.namespace,
                self.labels,
                self.namespace_labels,
            )
            for t in holder.anti_terms
        )

    def _matches(self, term: Mapping[str, Any], other: Placed) -> bool:
        return _term_matches(
            term,
            self.namespace,
            self.labels,
            other.namespace,
            other.labels,
            self.namespace_labels,
        )

    def _first_of_group(self) -> bool:
        """No placed pod matches any affinity term, and the pod matches all of them."""
        if any(self._matches(t, o) for t in self.affinity for o in self.others):
            return False
        me = Placed(self.namespace, self.labels, "")
        return all(self._matches(t, me) for t in self.affinity)

    def _same_domain(self, key: str, node: str, other_node: str) -> bool:
        here = self.node_labels.get(node, {})
        there = self.node_labels.get(other_node, {})
        return key in here and key in there and here[key] == there[key]

    def reason(self, node: str) -> str | None:
        labels = self.node_labels.get(node, {})
        if any(str(t.get("topologyKey") or "") not in labels for t in self.affinity):
            return AFFINITY_MISMATCH  # every term's topology must exist on the node
        if not self.first_of_group:
            for term in self.affinity:
                key = str(term.get("topologyKey") or "")
                if not any(
                    self._same_domain(key, node, o.node) and self._matches(term, o)
                    for o in self.others
                ):
                    return AFFINITY_MISMATCH
        for term in self.anti:
            key = str(term.get("topologyKey") or "")
            if any(
                self._same_domain(key, node, o.node) and self._matches(term, o) for o in self.others
            ):
                return ANTI_AFFINITY_MISMATCH
        for holder in self.holders:
            for term in holder.anti_terms:
                key = str(term.get("topologyKey") or "")
                if self._same_domain(key, node, holder.node) and _term_matches(
                    term,
                    holder.namespace,
                    holder.labels,
                    self.namespace,
                    self.labels,
                    self.namespace_labels,
                ):
                    return EXISTING_ANTI_AFFINITY
        return None
