"""Inter-pod affinity and anti-affinity (pure): which nodes a pod may go to given the pods
already placed, in the scheduler's words."""

from __future__ import annotations

from typing import Any

from reconciler.controllers.pod_affinity import (
    AFFINITY_MISMATCH,
    ANTI_AFFINITY_MISMATCH,
    EXISTING_ANTI_AFFINITY,
    AffinityCheck,
    Placed,
)

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"

NODES = [
    {"metadata": {"name": "n1", "labels": {HOST: "n1", ZONE: "a"}}},
    {"metadata": {"name": "n2", "labels": {HOST: "n2", ZONE: "a"}}},
    {"metadata": {"name": "n3", "labels": {HOST: "n3"}}},  # no zone
]


def term(key: str = HOST, **match: str) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": match}, "topologyKey": key}


def pod(namespace: str = "shop", affinity: Any = None, anti: Any = None, **labels: str) -> Any:
    spec: dict[str, Any] = {"affinity": {}}
    if affinity:
        spec["affinity"]["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": affinity
        }
    if anti:
        spec["affinity"]["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": anti
        }
    return {"metadata": {"namespace": namespace, "labels": labels}, "spec": spec}


def placed(node: str, namespace: str = "shop", anti: Any = None, **labels: str) -> Placed:
    return Placed(namespace, labels, node, tuple(anti or ()))


def verdicts(new: Any, others: list[Placed], ns_labels: Any = None) -> dict[str, str | None]:
    check = AffinityCheck(
        new,
        NODES,
        lambda: others,
        [p for p in others if p.anti_terms],
        lambda name: (ns_labels or {}).get(name),
    )
    return {n: check.reason(n) for n in ("n1", "n2", "n3")}


def test_anti_affinity_keeps_replicas_apart() -> None:
    web = pod(anti=[term(app="web")], app="web")
    assert verdicts(web, []) == {"n1": None, "n2": None, "n3": None}
    one = [placed("n1", app="web")]
    assert verdicts(web, one) == {"n1": ANTI_AFFINITY_MISMATCH, "n2": None, "n3": None}
    # over zones: n1 and n2 share zone a; n3 has no zone, so no domain to share
    zoned = pod(anti=[term(ZONE, app="web")], app="web")
    assert verdicts(zoned, one) == {
        "n1": ANTI_AFFINITY_MISMATCH,
        "n2": ANTI_AFFINITY_MISMATCH,
        "n3": None,
    }
    # another namespace's web pods are not in the term's scope
    assert verdicts(web, [placed("n1", namespace="other", app="web")])["n1"] is None


def test_an_existing_pods_anti_affinity_keeps_others_away() -> None:
    db = placed("n1", anti=[term(tier="batch")], app="db")
    assert verdicts(pod(tier="batch"), [db]) == {
        "n1": EXISTING_ANTI_AFFINITY,
        "n2": None,
        "n3": None,
    }
    assert verdicts(pod(tier="web"), [db])["n1"] is None


def test_affinity_wants_a_matching_pod_in_the_domain() -> None:
    cache = pod(affinity=[term(app="web")], app="cache")
    assert verdicts(cache, [placed("n2", app="web")]) == {
        "n1": AFFINITY_MISMATCH,
        "n2": None,
        "n3": AFFINITY_MISMATCH,
    }
    # nothing matches anywhere and the pod does not match its own term: nowhere
    assert set(verdicts(cache, []).values()) == {AFFINITY_MISMATCH}
    # the first of a group that wants to be together goes where the topology exists
    group = pod(affinity=[term(ZONE, app="web")], app="web")
    assert verdicts(group, []) == {"n1": None, "n2": None, "n3": AFFINITY_MISMATCH}


def test_namespaces_namespace_selectors_and_label_keys() -> None:
    everywhere = term(app="web")
    everywhere["namespaceSelector"] = {}
    others = [placed("n1", namespace="other", app="web")]
    assert verdicts(pod(anti=[everywhere]), others)["n1"] == ANTI_AFFINITY_MISMATCH
    chosen = term(app="web")
    chosen["namespaceSelector"] = {"matchLabels": {"team": "a"}}
    assert verdicts(pod(anti=[chosen]), others, {"other": {"team": "a"}})["n1"] is not None
    assert verdicts(pod(anti=[chosen]), others, {"other": {"team": "b"}})["n1"] is None
    named = term(app="web")
    named["namespaces"] = ["other"]
    assert verdicts(pod(anti=[named]), others)["n1"] == ANTI_AFFINITY_MISMATCH
    # matchLabelKeys: only pods of the same revision count
    per_revision = term(app="web")
    per_revision["matchLabelKeys"] = ["rev"]
    new = pod(anti=[per_revision], app="web", rev="2")
    assert verdicts(new, [placed("n1", app="web", rev="1")])["n1"] is None
    assert verdicts(new, [placed("n1", app="web", rev="2")])["n1"] == ANTI_AFFINITY_MISMATCH
    # no labelSelector: the term is about no pod
    blind = {"topologyKey": HOST}
    assert verdicts(pod(anti=[blind]), [placed("n1", app="web")])["n1"] is None


def test_the_check_is_skipped_when_nothing_can_refuse() -> None:
    calls: list[int] = []

    def listing() -> list[Placed]:
        calls.append(1)
        return []

    check = AffinityCheck(pod(app="web"), NODES, listing, [], lambda _n: None)
    assert not check.needed and calls == []  # the pods were never listed
