"""Pod topology spread (pure): DoNotSchedule constraints refuse nodes that would make the
group lopsided, in the scheduler's words."""

from __future__ import annotations

from typing import Any

from reconciler.controllers.topology_spread import MISSING_LABEL, SPREAD_MISMATCH, spread_filter

ZONE = "topology.kubernetes.io/zone"


def node(name: str, zone: str | None, **labels: str) -> dict[str, Any]:
    all_labels = {**labels, **({ZONE: zone} if zone else {})}
    return {"metadata": {"name": name, "labels": all_labels}, "spec": {}}


NODES = [node("n1", "a"), node("n2", "b"), node("n3", None)]


def pod(**constraint: Any) -> dict[str, Any]:
    spread = {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}},
        **constraint,
    }
    return {
        "metadata": {"namespace": "shop", "labels": {"app": "web", "rev": "2"}},
        "spec": {"topologySpreadConstraints": [spread]},
    }


def verdicts(
    new: dict[str, Any], placed: list[tuple[str, dict[str, str], str]], nodes: Any = None
) -> dict[str, str | None]:
    check = spread_filter(new, nodes or NODES, lambda: placed)
    assert check is not None
    return {n["metadata"]["name"]: check(n["metadata"]["name"]) for n in nodes or NODES}


def web(node_name: str, namespace: str = "shop", **labels: str) -> tuple[str, dict[str, str], str]:
    return (namespace, {"app": "web", **labels}, node_name)


def test_the_docstring_example() -> None:
    assert verdicts(pod(), [web("n1"), web("n1")]) == {
        "n1": SPREAD_MISMATCH,
        "n2": None,
        "n3": MISSING_LABEL,
    }
    # balanced: either zone
    assert verdicts(pod(), [web("n1"), web("n2")]) == {"n1": None, "n2": None, "n3": MISSING_LABEL}


def test_only_matching_pods_of_the_namespace_count() -> None:
    others = [
        web("n1", namespace="other"),
        web("n1", namespace="other"),
        ("shop", {"app": "db"}, "n1"),
    ]
    assert verdicts(pod(), others)["n1"] is None
    # matchLabelKeys: only pods of the same revision
    old_revision = [web("n1", rev="1"), web("n1", rev="1")]
    assert verdicts(pod(matchLabelKeys=["rev"]), old_revision)["n1"] is None
    assert verdicts(pod(), old_revision)["n1"] == SPREAD_MISMATCH


def test_domains_follow_node_affinity_and_min_domains() -> None:
    # the pod may only go to zone a: zone b is no domain, so n1 is the emptiest one itself
    pinned = pod()
    pinned["spec"]["nodeSelector"] = {ZONE: "a"}
    assert verdicts(pinned, [web("n1"), web("n1")])["n1"] is None
    # minDomains 3 with two domains: the minimum is 0, so one pod per zone is the limit
    assert verdicts(pod(minDomains=3), [web("n2")]) == {
        "n1": None,
        "n2": SPREAD_MISMATCH,
        "n3": MISSING_LABEL,
    }


def test_schedule_anyway_is_not_a_filter() -> None:
    assert spread_filter(pod(whenUnsatisfiable="ScheduleAnyway"), NODES, list) is None
