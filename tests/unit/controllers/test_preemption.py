"""Preemption's choices (pure): which lower-priority pods go, on which node, and why not."""

from __future__ import annotations

from typing import Any

from reconciler.controllers.nodefit import HostPort, NodeUsage, Requests
from reconciler.controllers.preemption import Budget, Candidate, Choice, pick, plan, select_victims
from reconciler.selectors import label_selector_from_spec

ALLOCATABLE = {"pods": "110", "cpu": "2", "memory": "8Gi"}


def on(name: str, priority: int, cpu: int, started: str, **labels: str) -> Candidate:
    return Candidate("default", name, priority, Requests(cpu, 0), started, labels)


def usage(*pods: Candidate) -> NodeUsage:
    total = NodeUsage()
    for p in pods:
        total = total.plus(p.requests)
    return total


def names(victims: list[Candidate] | tuple[Candidate, ...]) -> list[str]:
    return [v.name for v in victims]


def test_the_docstring_example_keeps_the_pod_that_started_first() -> None:
    a = on("a", 0, 1000, "2026-01-01T00:00:00Z")
    b = on("b", 0, 1000, "2026-01-01T00:01:00Z")
    found = select_victims(Requests(1000, 0), ALLOCATABLE, usage(a, b), [b, a], 1000)
    assert found is not None
    assert (names(found[0]), found[1]) == (["b"], 0)


def test_only_lower_priority_pods_are_victims_and_higher_ones_are_kept_first() -> None:
    same = on("same", 100, 1000, "t1")
    low = on("low", 10, 500, "t1")
    lowest = on("lowest", 1, 500, "t1")
    pods = [same, low, lowest]
    # 1 CPU wanted, 2 CPUs all taken: low and lowest must both go (same is not lower)
    found = select_victims(Requests(1000, 0), ALLOCATABLE, usage(*pods), pods, 100)
    assert found is not None and sorted(names(found[0])) == ["low", "lowest"]
    # half a CPU wanted: the more important of the two stays
    found = select_victims(Requests(500, 0), ALLOCATABLE, usage(*pods), pods, 100)
    assert found is not None and names(found[0]) == ["lowest"]
    # more than evicting every lower pod frees: the node cannot help
    assert select_victims(Requests(1500, 0), ALLOCATABLE, usage(*pods), pods, 100) is None
    # nothing of lower priority at all
    assert select_victims(Requests(1, 0), ALLOCATABLE, usage(same), [same], 100) is None


def test_pods_a_budget_protects_are_reprieved_first() -> None:
    guarded = on("guarded", 0, 1000, "t2", app="db")  # less important: started later
    free = on("free", 0, 1000, "t1", app="web")
    budget = Budget("default", label_selector_from_spec({"matchLabels": {"app": "db"}}), 0)
    pods = [guarded, free]
    found = select_victims(Requests(1000, 0), ALLOCATABLE, usage(*pods), pods, 5, [budget])
    assert found is not None and (names(found[0]), found[1]) == (["free"], 0)
    # when both must go, the broken budget is counted
    found = select_victims(Requests(2000, 0), ALLOCATABLE, usage(*pods), pods, 5, [budget])
    assert found is not None and (sorted(names(found[0])), found[1]) == (["free", "guarded"], 1)
    # a budget allowing one disruption covers one pod, not two
    both = [on("d1", 0, 1000, "t1", app="db"), on("d2", 0, 1000, "t2", app="db")]
    one = Budget("default", label_selector_from_spec({"matchLabels": {"app": "db"}}), 1)
    found = select_victims(Requests(2000, 0), ALLOCATABLE, usage(*both), both, 5, [one])
    assert found is not None and found[1] == 1


def test_pick_prefers_fewer_broken_budgets_then_lower_victims() -> None:
    def choice(node: str, broken: int, *priorities: int) -> Choice:
        victims = tuple(on(f"{node}{i}", p, 1, "t") for i, p in enumerate(priorities))
        return Choice(node, victims, broken)

    assert pick([]) is None
    assert pick([choice("n1", 1, 1), choice("n2", 0, 50)]).node == "n2"  # type: ignore[union-attr]
    assert pick([choice("n1", 0, 50), choice("n2", 0, 10, 10)]).node == "n2"  # type: ignore[union-attr]
    assert pick([choice("n1", 0, 10, 10), choice("n2", 0, 10, 5)]).node == "n2"  # type: ignore[union-attr]
    assert pick([choice("n1", 0, 10, -5), choice("n2", 0, 10)]).node == "n2"  # type: ignore[union-attr]


def node(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {"allocatable": ALLOCATABLE},
    }


def pending(priority: int, cpu: str, **selector: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "priority": priority,
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
    }
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}


def test_plan_says_why_no_node_can_help() -> None:
    busy = [on("a", 0, 2000, "t")]
    nodes = [node("n1", disk="ssd"), node("n2")]
    taken = {"n1": usage(*busy), "n2": usage(*busy)}
    choice, why = plan(pending(0, "1", disk="ssd"), nodes, taken, {"n1": busy, "n2": busy})
    assert choice is None
    assert why == (
        "0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )
    choice, why = plan(pending(10, "1", disk="ssd"), nodes, taken, {"n1": busy, "n2": busy})
    assert why == "" and choice is not None
    assert (choice.node, names(choice.victims)) == ("n1", ["a"])


def test_a_pod_holding_the_wanted_host_port_is_the_victim() -> None:
    port = (HostPort(8080),)
    holder = Candidate("default", "holder", 0, Requests(100, 0, port), "t1", {})
    other = Candidate("default", "other", 0, Requests(100, 0), "t0", {})
    pods = [holder, other]
    found = select_victims(Requests(0, 0, port), ALLOCATABLE, usage(*pods), pods, 10)
    assert found is not None and names(found[0]) == ["holder"]


def test_placement_refusals_upstream_calls_resolvable_name_the_missing_victims() -> None:
    from reconciler.controllers.pod_affinity import AFFINITY_MISMATCH, ANTI_AFFINITY_MISMATCH
    from reconciler.controllers.topology_spread import MISSING_LABEL, SPREAD_MISMATCH

    nodes = [node("n1")]
    peer = [on("peer", 0, 100, "t")]
    taken = {"n1": usage(*peer)}

    def why(reason: str, priority: int = 0) -> str:
        return plan(pending(priority, "1"), nodes, taken, {"n1": peer}, placement=lambda _: reason)[
            1
        ]

    # Skew or anti-affinity could be cured by removing pods; with none of lower priority
    # there, upstream finds no victims. A missing label or an unmet affinity term cannot.
    for resolvable in (SPREAD_MISMATCH, ANTI_AFFINITY_MISMATCH):
        assert why(resolvable) == (
            "0/1 nodes are available: 1 No preemption victims found for incoming pod."
        )
    for unresolvable in (MISSING_LABEL, AFFINITY_MISMATCH):
        assert why(unresolvable) == (
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
    # A lower-priority pod is there, which Recon does not weigh for placement: not helpful.
    assert why(SPREAD_MISMATCH, priority=10).endswith("1 Preemption is not helpful for scheduling.")
