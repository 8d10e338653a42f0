"""URL parsing and the catalogue of served kinds derived from the upstream schemas."""

from __future__ import annotations

import pytest

from reconciler.apiserver.paths import ResourcePath, parse
from reconciler.apiserver.resources import (
    ResourceRegistry,
    builtin_types,
    crd_types,
    guess_plural,
    version_priority,
)
from reconciler.schema.definitions import load


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/api/v1/pods", ResourcePath("", "v1", "pods", None, None, None)),
        ("/api/v1/namespaces", ResourcePath("", "v1", "namespaces", None, None, None)),
        ("/api/v1/namespaces/default", ResourcePath("", "v1", "namespaces", None, "default", None)),
        ("/api/v1/namespaces/x/status", ResourcePath("", "v1", "namespaces", None, "x", "status")),
        (
            "/api/v1/namespaces/x/finalize",
            ResourcePath("", "v1", "namespaces", None, "x", "finalize"),
        ),
        ("/api/v1/namespaces/x/pods", ResourcePath("", "v1", "pods", "x", None, None)),
        ("/api/v1/namespaces/x/pods/p/log", ResourcePath("", "v1", "pods", "x", "p", "log")),
        (
            "/apis/apps/v1/namespaces/x/deployments/web",
            ResourcePath("apps", "v1", "deployments", "x", "web", None),
        ),
        ("/apis/apps/v1/deployments", ResourcePath("apps", "v1", "deployments", None, None, None)),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            ResourcePath("rbac.authorization.k8s.io", "v1", "clusterroles", None, "admin", None),
        ),
        (
            "/api/v1/watch/namespaces/x/pods",
            ResourcePath("", "v1", "pods", "x", None, None, legacy_watch=True),
        ),
        ("/api/v1", None),
        ("/apis/apps", None),
        ("/healthz", None),
        ("/api/v1/namespaces/x/pods/p/log/extra", None),
    ],
)
def test_parse(url: str, expected: ResourcePath | None) -> None:
    assert parse(url) == expected


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("Pod", "pods"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Endpoints", "endpoints"),
        ("PriorityClass", "priorityclasses"),
        ("Lease", "leases"),
    ],
)
def test_plurals(kind: str, plural: str) -> None:
    assert guess_plural(kind) == plural


def test_version_priority_orders_ga_beta_alpha() -> None:
    versions = ["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "v2beta1"]
    assert sorted(versions, key=version_priority, reverse=True) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
    ]


def test_builtin_types_come_from_the_schemas_at_their_ga_version() -> None:
    registry = ResourceRegistry(builtin_types(load()))
    deploy = registry.lookup("apps", "v1", "deployments")
    assert deploy is not None and deploy.kind == "Deployment" and deploy.namespaced
    assert deploy.subresources == {"status", "scale"} and deploy.short_names == ("deploy",)
    assert deploy.definition == "io.k8s.api.apps.v1.Deployment"
    ns = registry.by_kind("v1", "Namespace")
    assert ns is not None and not ns.namespaced
    hpa_versions = registry.group_versions()["autoscaling"]
    assert hpa_versions[0] == "v2"
    kinds = {t.kind for t in registry.all()}
    assert {
        "Pod",
        "ConfigMap",
        "Secret",
        "Service",
        "CronJob",
        "Job",
        "StatefulSet",
        "DaemonSet",
        "CustomResourceDefinition",
        "Event",
        "Lease",
        "Ingress",
    } <= kinds
    assert not {"Status", "Scale", "Eviction"} & kinds
    # review kinds are served for POST only, never stored
    (review,) = [t for t in registry.all() if t.kind == "TokenReview"]
    assert review.verbs == ("create",)
    assert not any("alpha" in t.version or "beta" in t.version for t in registry.all())


def test_crds_register_and_unregister() -> None:
    registry = ResourceRegistry(builtin_types(load()))
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}},
                {"name": "v1beta1", "served": False, "storage": False},
            ],
        },
    }
    assert [t.version for t in crd_types(crd)] == ["v1"]
    registry.set_crd(crd)
    widget = registry.lookup("example.com", "v1", "widgets")
    assert widget is not None and not widget.namespaced and widget.subresources == {"status"}
    assert widget.storage_key == "example.com/widgets"
    registry.remove_crd("widgets.example.com")
    assert registry.lookup("example.com", "v1", "widgets") is None
