"""Preemption: which lower-priority pods to evict so a pending pod of higher priority fits.

kube-scheduler's DefaultPreemption, in the shape users can predict from its docs:

- only a pod whose `preemptionPolicy` is not `Never` preempts, and not while pods it
  already preempted on its nominated node are still terminating (it waits for them);
- on each node that fails only on resources (not on a selector or a taint: evicting pods
  cannot fix those), every pod of lower priority is taken off; if the pod still does not
  fit, the node cannot help. Otherwise victims are reprieved one by one, most important
  first (higher priority, then running longer), those whose eviction would break a
  PodDisruptionBudget first: a pod that can stay without the preemptor stopping to fit
  stays;
- among the nodes that can help, the one with the fewest budgets broken, then the lowest
  highest-victim priority, the smallest sum of victims' priorities, the fewest victims.

Pure: `pick` takes what the scheduler's caches hold. Worked example: a node with 2 CPUs
holds a (priority 0, 1 CPU, started first) and b (priority 0, 1 CPU); a pod of priority
1000 asks for 1 CPU. Without a and b it fits; reprieving a (more important: it started
first) still fits; reprieving b then does not, so b alone is the victim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.controllers.nodefit import NodeUsage, Requests, fits, pod_requests, usage_fits
from reconciler.controllers.pod_affinity import ANTI_AFFINITY_MISMATCH, EXISTING_ANTI_AFFINITY
from reconciler.controllers.topology_spread import SPREAD_MISMATCH
from reconciler.selectors import LabelSelector

__all__ = [
    "Budget",
    "Candidate",
    "Choice",
    "pick",
    "plan",
    "pod_priority",
    "select_victims",
]

JSONDict = dict[str, Any]

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
RESOLVABLE = frozenset({SPREAD_MISMATCH, ANTI_AFFINITY_MISMATCH, EXISTING_ANTI_AFFINITY})
"""Placement failures upstream's filters call resolvable (removing pods may cure them),
unlike a missing topology label or an unmet affinity term."""


def pod_priority(pod: Mapping[str, Any]) -> int:
    """The priority admission resolved (0 for a pod stored before priorities existed)."""
    value = (pod.get("spec") or {}).get("priority")
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class Candidate:
    """A pod bound to a node, as preemption weighs it."""

    namespace: str
    name: str
    priority: int
    requests: Requests
    started: str  # status.startTime (or creationTimestamp): earlier is more important
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Budget:
    """A PodDisruptionBudget: its namespace, parsed selector and `disruptionsAllowed`."""

    namespace: str
    selector: LabelSelector
    allowed: int


@dataclass(frozen=True)
class Choice:
    node: str
    victims: tuple[Candidate, ...]
    budgets_broken: int


def _split_by_budgets(
    ordered: Sequence[Candidate], budgets: Sequence[Budget]
) -> tuple[list[Candidate], list[Candidate]]:
    """(pods whose eviction breaks a budget, the others), in the order given; each pod that
    a budget still allows uses one of its disruptions up (upstream's
    filterPodsWithPDBViolation)."""
    allowed = [b.allowed for b in budgets]
    violating: list[Candidate] = []
    fine: list[Candidate] = []
    for pod in ordered:
        matching = [
            i
            for i, b in enumerate(budgets)
            if b.namespace == pod.namespace and b.selector.matches(pod.labels)
        ]
        if any(allowed[i] <= 0 for i in matching):
            violating.append(pod)
            continue
        for i in matching:
            allowed[i] -= 1
        fine.append(pod)
    return violating, fine


def select_victims(
    want: Requests,
    allocatable: Mapping[str, Any],
    usage: NodeUsage,
    on_node: Sequence[Candidate],
    priority: int,
    budgets: Sequence[Budget] = (),
) -> tuple[list[Candidate], int] | None:
    """The fewest pods of lower priority than `priority` to evict from a node so a pod
    requesting `want` fits, and how many of them break a budget; None when evicting every
    one of them is not enough (or there are none)."""
    lower = [p for p in on_node if p.priority < priority]
    if not lower:
        return None
    left = usage
    for pod in lower:
        left = left.minus(pod.requests)
    if usage_fits(want, allocatable, left) is not None:
        return None
    ordered = sorted(lower, key=lambda p: (-p.priority, p.started, p.namespace, p.name))
    violating, fine = _split_by_budgets(ordered, budgets)
    victims: list[Candidate] = []
    broken = 0
    for group, breaks in ((violating, True), (fine, False)):
        for pod in group:
            trial = left.plus(pod.requests)
            if usage_fits(want, allocatable, trial) is None:
                left = trial  # reprieved: it stays
            else:
                victims.append(pod)
                broken += breaks
    return victims, broken


def pick(choices: Sequence[Choice]) -> Choice | None:
    """The node whose preemption hurts least (see the module docstring)."""

    def cost(choice: Choice) -> tuple[int, int, int, int, str]:
        priorities = [v.priority for v in choice.victims]
        return (
            choice.budgets_broken,
            max(priorities, default=-(2**31)),
            sum(p + 2**31 for p in priorities),  # offset as upstream: negatives count too
            len(priorities),
            choice.node,
        )

    return min(choices, key=cost) if choices else None


def plan(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    usage: Mapping[str, NodeUsage],
    on_nodes: Mapping[str, Sequence[Candidate]],
    budgets: Sequence[Budget] = (),
    placement: Callable[[str], str | None] | None = None,
) -> tuple[Choice | None, str]:
    """(the node and victims, "") or (None, why preemption cannot help, as the scheduler
    says it after the placement failure: "0/1 nodes are available: 1 No preemption victims
    found for incoming pod."). `on_nodes`: node name -> the pods bound there that could be
    evicted (not terminating)."""
    spec = pod.get("spec") or {}
    want = pod_requests(spec)
    priority = pod_priority(pod)
    choices: list[Choice] = []
    reasons: Counter[str] = Counter()
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name"))
        problem = None
        if fits(spec, node) is None and placement is not None:
            problem = placement(name)
        if fits(spec, node) is not None or (problem and problem not in RESOLVABLE):
            reasons[NOT_HELPFUL] += 1
            continue
        if problem:
            # Pods on the node could be what anti-affinity or spreading counts (upstream
            # weighs evicting them); Recon evicts for resources and ports only, so it says
            # what upstream says when no pod of lower priority is there to weigh.
            lower = [c for c in on_nodes.get(name, ()) if c.priority < priority]
            reasons[NOT_HELPFUL if lower else NO_VICTIMS] += 1
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        found = select_victims(
            want,
            allocatable,
            usage.get(name, NodeUsage()),
            on_nodes.get(name, ()),
            priority,
            budgets,
        )
        if found is None:
            reasons[NO_VICTIMS] += 1
            continue
        victims, broken = found
        choices.append(Choice(name, tuple(victims), broken))
    chosen = pick(choices)
    if chosen is not None:
        return chosen, ""
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return None, f"0/{len(nodes)} nodes are available: {detail}."
