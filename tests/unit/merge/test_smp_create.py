"""create_strategic_merge_patch: the exact patches kubectl would send, and round-trips.

The round-trip property is the contract the three-way apply builds on:
`apply(original, create(original, modified)) == modified`, list order included.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from reconciler.merge import PatchError, apply_strategic_merge_patch, create_strategic_merge_patch
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta

DEFS = load()
POD = PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Pod")
DEPLOYMENT = PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Deployment")
PDB = PatchMeta.for_definition(DEFS, "io.k8s.api.policy.v1.PodDisruptionBudget")

JSON = dict[str, Any]


def c(name: str, **fields: Any) -> JSON:
    return {"name": name, **fields}


def spec(**fields: Any) -> JSON:
    return {"spec": fields}


def md(**fields: Any) -> JSON:
    return {"metadata": fields}


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}

# (meta, original, modified, expected patch)
PATCHES: list[Any] = [
    pytest.param(POD, spec(containers=[c("a")]), spec(containers=[c("a")]), {}, id="equal"),
    pytest.param(
        POD,
        md(labels={"keep": "1", "change": "1", "drop": "1"}),
        md(labels={"keep": "1", "change": "2", "add": "1"}),
        md(labels={"change": "2", "add": "1", "drop": None}),
        id="map-add-change-remove",
    ),
    pytest.param(
        POD,
        md(name="p", labels={"a": "1"}),
        md(name="p"),
        md(labels=None),
        id="whole-map-removed",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web", image="1"), c("log", image="1")]),
        spec(containers=[c("web", image="2"), c("log", image="1")]),
        spec(
            **{
                "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}],
                "containers": [{"name": "web", "image": "2"}],
            }
        ),
        id="container-changed",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web"), c("log")]),
        spec(containers=[c("web")]),
        spec(
            **{
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"name": "log", "$patch": "delete"}],
            }
        ),
        id="container-removed",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web"), c("log")]),
        spec(containers=[c("log"), c("web")]),
        spec(**{"$setElementOrder/containers": [{"name": "log"}, {"name": "web"}]}),
        id="containers-reordered-only",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web")]),
        spec(containers=[c("web"), c("side", image="envoy")]),
        spec(
            **{
                "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                "containers": [{"name": "side", "image": "envoy"}],
            }
        ),
        id="container-added",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])]),
        spec(containers=[c("web", env=[{"name": "A", "value": "1"}])]),
        spec(
            **{
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [
                    {
                        "name": "web",
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"name": "B", "$patch": "delete"}],
                    }
                ],
            }
        ),
        id="nested-env-removed",
    ),
    pytest.param(
        POD,
        md(finalizers=["a", "b", "c"]),
        md(finalizers=["c", "a", "d"]),
        md(
            **{
                "finalizers": ["d"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "$setElementOrder/finalizers": ["c", "a", "d"],
            }
        ),
        id="finalizers-add-remove-reorder",
    ),
    pytest.param(
        POD,
        md(finalizers=["a"]),
        md(finalizers=[]),
        md(**{"$deleteFromPrimitiveList/finalizers": ["a"]}),
        id="finalizers-emptied",
    ),
    pytest.param(
        POD,
        spec(containers=[c("web", args=["-a", "-b"])]),
        spec(containers=[c("web", args=["-b"])]),
        spec(
            **{
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"name": "web", "args": ["-b"]}],
            }
        ),
        id="atomic-args-sent-whole",
    ),
    pytest.param(
        POD,
        spec(tolerations=[{"key": "a"}, {"key": "b"}]),
        spec(tolerations=[{"key": "b"}]),
        spec(tolerations=[{"key": "b"}]),
        id="atomic-tolerations-sent-whole",
    ),
    pytest.param(
        DEPLOYMENT,
        spec(strategy=ROLLING),
        spec(strategy={"type": "Recreate"}),
        spec(strategy={"type": "Recreate", "rollingUpdate": None, "$retainKeys": ["type"]}),
        id="retain-keys-strategy-switch",
    ),
    pytest.param(
        DEPLOYMENT,
        spec(strategy=ROLLING, replicas=1),
        spec(strategy=ROLLING, replicas=2),
        spec(replicas=2),
        id="retain-keys-not-sent-when-unchanged",
    ),
    pytest.param(
        POD,
        spec(volumes=[{"name": "data", "emptyDir": {}}]),
        spec(volumes=[{"name": "data", "configMap": {"name": "app"}}]),
        spec(
            **{
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [
                    {
                        "name": "data",
                        "configMap": {"name": "app"},
                        "emptyDir": None,
                        "$retainKeys": ["configMap", "name"],
                    }
                ],
            }
        ),
        id="retain-keys-volume-source-switch",
    ),
    pytest.param(
        PDB,
        spec(selector={"matchLabels": {"app": "a", "tier": "x"}}),
        spec(selector={"matchLabels": {"app": "a"}}),
        spec(selector={"matchLabels": {"app": "a"}}),
        id="replace-strategy-sends-whole-map",
    ),
    pytest.param(
        POD,
        spec(nodeName="n"),
        spec(nodeName="n", containers=[c("web")]),
        spec(containers=[c("web")]),
        id="list-added",
    ),
    pytest.param(
        POD,
        spec(initContainers=[]),
        spec(initContainers=[c("init")]),
        spec(initContainers=[c("init")]),
        id="list-from-empty",
    ),
    pytest.param(
        POD,
        spec(initContainers=[]),
        spec(initContainers=[]),
        {},
        id="empty-lists-equal",
    ),
    pytest.param(
        POD,
        spec(customField="a"),
        spec(customField={"a": 1}),
        spec(customField={"a": 1}),
        id="type-change-sends-new-value",
    ),
    pytest.param(
        POD,
        spec(terminationGracePeriodSeconds=30),
        spec(terminationGracePeriodSeconds=30.0),
        {},
        id="numbers-compare-by-value",
    ),
    pytest.param(
        POD,
        spec(hostNetwork=1),
        spec(hostNetwork=True),
        spec(hostNetwork=True),
        id="true-is-not-one",
    ),
]


@pytest.mark.parametrize(("meta", "original", "modified", "expected"), PATCHES)
def test_create(meta: PatchMeta, original: JSON, modified: JSON, expected: JSON) -> None:
    before = (copy.deepcopy(original), copy.deepcopy(modified))
    patch = create_strategic_merge_patch(original, modified, meta)
    assert patch == expected
    assert (original, modified) == before, "inputs must not be mutated"
    assert apply_strategic_merge_patch(original, patch, meta) == modified


def test_patch_shares_no_containers_with_modified() -> None:
    modified = spec(containers=[c("web", args=["-a"])])
    patch = create_strategic_merge_patch({}, modified, POD)
    patch["spec"]["containers"][0]["args"].append("-b")
    assert modified == spec(containers=[c("web", args=["-a"])])


# ---------------------------------------------------------------------------------------
# the two halves of kubectl's three-way patch


def test_ignore_deletions_keeps_only_changes_and_additions() -> None:
    original = {
        "metadata": {"labels": {"a": "1", "b": "1"}, "finalizers": ["x", "y"]},
        "spec": {"containers": [c("web", image="1"), c("log")]},
    }
    modified = {
        "metadata": {"labels": {"a": "2"}, "finalizers": ["x", "z"]},
        "spec": {"containers": [c("web", image="2")]},
    }
    patch = create_strategic_merge_patch(original, modified, POD, ignore_deletions=True)
    assert patch == {
        "metadata": {
            "labels": {"a": "2"},
            "finalizers": ["z"],
            "$setElementOrder/finalizers": ["x", "z"],
        },
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "web", "image": "2"}],
        },
    }


def test_ignore_changes_and_additions_keeps_only_deletions() -> None:
    original = {
        "metadata": {"labels": {"a": "1", "b": "1"}, "finalizers": ["x", "y"]},
        "spec": {"containers": [c("web", image="1"), c("log")]},
    }
    modified = {
        "metadata": {"labels": {"a": "2", "c": "1"}, "finalizers": ["x", "z"]},
        "spec": {"containers": [c("web", image="2"), c("new")]},
    }
    patch = create_strategic_merge_patch(original, modified, POD, ignore_changes_and_additions=True)
    assert patch == {
        "metadata": {
            "labels": {"b": None},
            "$deleteFromPrimitiveList/finalizers": ["y"],
            "$setElementOrder/finalizers": ["x", "z"],
        },
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "new"}],
            "containers": [{"name": "log", "$patch": "delete"}],
        },
    }


def test_retain_keys_sent_for_a_cleared_field_even_when_deletions_are_ignored() -> None:
    original = spec(strategy=ROLLING)
    modified = spec(strategy={"type": "RollingUpdate"})
    patch = create_strategic_merge_patch(original, modified, DEPLOYMENT, ignore_deletions=True)
    assert patch == spec(strategy={"$retainKeys": ["type"]})


# ---------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("original", "modified", "path", "message"),
    [
        pytest.param(
            spec(containers=[c("web")]),
            spec(containers=[{"image": "x"}]),
            "spec.containers[0]",
            "no merge key 'name'",
            id="modified-element-without-key",
        ),
        pytest.param(
            spec(containers=[{"image": "x"}]),
            spec(containers=[c("web")]),
            "spec.containers[0]",
            "no merge key 'name'",
            id="original-element-without-key",
        ),
        pytest.param(
            md(finalizers=["a"]),
            md(finalizers=[["b"]]),
            "metadata.finalizers[0]",
            "must be a string, number, boolean or null, not array",
            id="list-in-primitive-set",
        ),
    ],
)
def test_create_errors(original: JSON, modified: JSON, path: str, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        create_strategic_merge_patch(original, modified, POD)
    assert caught.value.path == path
    assert message in caught.value.reason


@pytest.mark.parametrize(("original", "modified"), [([], {}), ({}, None)])
def test_create_needs_objects(original: Any, modified: Any) -> None:
    with pytest.raises(PatchError, match="must be a JSON object"):
        create_strategic_merge_patch(original, modified, POD)


# ---------------------------------------------------------------------------------------
# round-trips

BASE: JSON = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"team": "a"},
        "finalizers": ["example.com/a", "example.com/b"],
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": copy.deepcopy(ROLLING),
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    c(
                        "web",
                        image="nginx:1.25",
                        args=["--port", "8080"],
                        env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        ports=[{"containerPort": 8080, "name": "http"}],
                        volumeMounts=[{"name": "data", "mountPath": "/data"}],
                        resources={"limits": {"cpu": "1"}, "requests": {"cpu": "100m"}},
                    ),
                    c("log", image="fluent:1", env=[{"name": "LEVEL", "value": "info"}]),
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
        },
    },
}


def _pod_spec(doc: JSON) -> JSON:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _edit(fn: Any) -> JSON:
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


ROUND_TRIPS: list[Any] = [
    pytest.param(_edit(lambda d: None), id="unchanged"),
    pytest.param(_edit(lambda d: d["spec"].update(replicas=5)), id="replicas"),
    pytest.param(_edit(lambda d: d["metadata"].pop("annotations")), id="drop-annotations"),
    pytest.param(_edit(lambda d: _pod_spec(d)["containers"].reverse()), id="reorder-containers"),
    pytest.param(
        _edit(lambda d: _pod_spec(d)["containers"].insert(1, c("mid", image="busybox"))),
        id="insert-container-in-the-middle",
    ),
    pytest.param(_edit(lambda d: _pod_spec(d)["containers"].pop(0)), id="remove-first-container"),
    pytest.param(
        _edit(
            lambda d: _pod_spec(d)["containers"][0]["env"].insert(0, {"name": "Z", "value": "0"})
        ),
        id="prepend-env",
    ),
    pytest.param(
        _edit(lambda d: _pod_spec(d)["containers"][0].update(env=[{"name": "B", "value": "2"}])),
        id="drop-env",
    ),
    pytest.param(_edit(lambda d: _pod_spec(d)["containers"][0].pop("env")), id="drop-env-list"),
    pytest.param(
        _edit(lambda d: _pod_spec(d)["containers"][0]["ports"].append({"containerPort": 9090})),
        id="add-port",
    ),
    pytest.param(
        _edit(lambda d: d["metadata"].update(finalizers=["example.com/b", "example.com/c"])),
        id="finalizers",
    ),
    pytest.param(_edit(lambda d: d["metadata"].pop("finalizers")), id="drop-finalizers"),
    pytest.param(
        _edit(lambda d: d["spec"].update(strategy={"type": "Recreate"})), id="strategy-recreate"
    ),
    pytest.param(
        _edit(
            lambda d: _pod_spec(d).update(volumes=[{"name": "data", "hostPath": {"path": "/x"}}])
        ),
        id="volume-source-switch",
    ),
    pytest.param(_edit(lambda d: _pod_spec(d).update(tolerations=[])), id="tolerations-emptied"),
    pytest.param(
        _edit(lambda d: _pod_spec(d)["containers"][0].update(args=["--port", "9090", "-v"])),
        id="args",
    ),
    pytest.param(
        _edit(lambda d: _pod_spec(d)["containers"][0]["resources"].pop("limits")),
        id="drop-limits",
    ),
    pytest.param(
        _edit(lambda d: _pod_spec(d).update(containers=[c("only", image="x")])),
        id="replace-all-containers",
    ),
]


@pytest.mark.parametrize("modified", ROUND_TRIPS)
def test_round_trip(modified: JSON) -> None:
    patch = create_strategic_merge_patch(BASE, modified, DEPLOYMENT)
    assert apply_strategic_merge_patch(BASE, patch, DEPLOYMENT) == modified
    # ... and back again.
    back = create_strategic_merge_patch(modified, BASE, DEPLOYMENT)
    assert apply_strategic_merge_patch(modified, back, DEPLOYMENT) == BASE
    assert create_strategic_merge_patch(modified, modified, DEPLOYMENT) == {}


# A seeded random walk over realistic edits: every step must round-trip exactly.

NAMES = ["web", "log", "proxy", "init", "metrics", "cache"]


def _mutate(doc: JSON, rng: random.Random) -> None:
    pod_spec = _pod_spec(doc)
    containers: list[JSON] = pod_spec["containers"]
    choice = rng.randrange(12)
    if choice == 0 and len(containers) < len(NAMES):
        used = {item["name"] for item in containers}
        name = rng.choice([n for n in NAMES if n not in used])
        containers.insert(rng.randrange(len(containers) + 1), c(name, image=f"{name}:1"))
    elif choice == 1 and len(containers) > 1:
        containers.pop(rng.randrange(len(containers)))
    elif choice == 2:
        rng.shuffle(containers)
    elif choice == 3:
        rng.choice(containers)["image"] = f"img:{rng.randrange(100)}"
    elif choice == 4:
        target = rng.choice(containers)
        env = target.setdefault("env", [])
        var = f"V{rng.randrange(5)}"
        env[:] = [e for e in env if e["name"] != var]
        if rng.random() < 0.7:
            env.insert(rng.randrange(len(env) + 1), {"name": var, "value": str(rng.random())})
        if not env:
            target.pop("env")
    elif choice == 5:
        finalizers = [f"f/{i}" for i in range(6) if rng.random() < 0.5]
        rng.shuffle(finalizers)
        if finalizers:
            doc["metadata"]["finalizers"] = finalizers
        else:
            doc["metadata"].pop("finalizers", None)
    elif choice == 6:
        labels = doc["metadata"].setdefault("labels", {})
        key = f"l{rng.randrange(4)}"
        if key in labels and rng.random() < 0.5:
            del labels[key]
        else:
            labels[key] = str(rng.randrange(10))
    elif choice == 7:
        doc["spec"]["strategy"] = rng.choice(
            [{"type": "Recreate"}, copy.deepcopy(ROLLING), {"type": "RollingUpdate"}]
        )
    elif choice == 8:
        pod_spec["volumes"] = [
            {"name": "data", rng.choice(["emptyDir", "hostPath"]): {}},
            *([{"name": "cfg", "configMap": {"name": "c"}}] if rng.random() < 0.5 else []),
        ]
    elif choice == 9:
        target = rng.choice(containers)
        target["args"] = [f"-{x}" for x in "abc" if rng.random() < 0.6]
    elif choice == 10:
        target = rng.choice(containers)
        ports = [{"containerPort": p} for p in (80, 443, 8080) if rng.random() < 0.5]
        rng.shuffle(ports)
        if ports:
            target["ports"] = ports
        else:
            target.pop("ports", None)
    else:
        doc["spec"]["replicas"] = rng.randrange(5)


@pytest.mark.parametrize("seed", range(20))
def test_random_edits_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    current = copy.deepcopy(BASE)
    for _ in range(15):
        modified = copy.deepcopy(current)
        for _ in range(rng.randrange(1, 4)):
            _mutate(modified, rng)
        patch = create_strategic_merge_patch(current, modified, DEPLOYMENT)
        assert apply_strategic_merge_patch(current, patch, DEPLOYMENT) == modified, patch
        current = modified
