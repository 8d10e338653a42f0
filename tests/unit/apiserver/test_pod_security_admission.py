"""Pod Security Admission on the API: enforce refuses pods, warn and workload templates warn,
namespaces with invalid labels are refused and a stricter enforce level warns about the pods
already there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.pod_security_admission import (
    namespace_warnings,
    pod_update_matters,
    pod_verdict,
    template_warnings,
)
from reconciler.apiserver.resources import ResourceType
from reconciler.apiserver.server import ApiServer, ServerOptions

ENFORCE = "pod-security.kubernetes.io/enforce"
WARN = "pod-security.kubernetes.io/warn"

HOST_NAMESPACES = "host namespaces (hostNetwork=true)"
RESTRICTED = (
    'allowPrivilegeEscalation != false (container "c" must set '
    "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
    '"c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
    'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or '
    'container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
    '"Localhost")'
)


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def compliant() -> dict[str, Any]:
    body = pod()
    body["spec"]["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    body["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    return body


def test_enforce_refuses_and_warn_warns() -> None:
    assert pod_verdict({}, pod(hostNetwork=True)) == (None, [])
    refused, warnings = pod_verdict({ENFORCE: "baseline"}, pod(hostNetwork=True))
    assert refused == f'violates PodSecurity "baseline:latest": {HOST_NAMESPACES}'
    assert warnings == []  # warn follows enforce: one verdict, no second message
    refused, warnings = pod_verdict({ENFORCE: "baseline", WARN: "restricted"}, pod())
    assert refused is None
    assert warnings == [f'would violate PodSecurity "restricted:latest": {RESTRICTED}']
    assert pod_verdict({ENFORCE: "restricted"}, compliant()) == (None, [])


def test_only_significant_pod_updates_are_checked_again() -> None:
    old = pod()
    bound = pod(nodeName="n1")
    assert not pod_update_matters(old, bound)
    new_image = pod()
    new_image["spec"]["containers"][0]["image"] = "busybox:2"
    assert pod_update_matters(old, new_image)
    debugged = pod(ephemeralContainers=[{"name": "debugger", "image": "busybox"}])
    assert pod_update_matters(old, debugged)


def test_templates_warn_for_enforce_and_warn_levels() -> None:
    template = {"metadata": {}, "spec": pod(hostNetwork=True)["spec"]}
    assert template_warnings({ENFORCE: "baseline", WARN: "restricted"}, template) == [
        f'would violate PodSecurity "baseline:latest": {HOST_NAMESPACES}',
        'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), '
        + RESTRICTED,
    ]


def test_a_new_enforce_level_lists_the_pods_that_violate_it() -> None:
    pods = [pod("b", hostNetwork=True), pod("a", hostNetwork=True), pod("c"), compliant()]
    assert namespace_warnings("team", {}, {ENFORCE: "baseline"}, pods) == [
        'existing pods in namespace "team" violate the new PodSecurity enforce level '
        '"baseline:latest"',
        "a (and 1 other pod): host namespaces",
    ]
    assert namespace_warnings("team", {ENFORCE: "baseline"}, {ENFORCE: "baseline"}, pods) == []
    restricted = namespace_warnings("team", None, {ENFORCE: "restricted"}, pods[:3])
    assert restricted[1:] == [
        "a (and 1 other pod): host namespaces, allowPrivilegeEscalation != false, "
        "unrestricted capabilities, runAsNonRoot != true, seccompProfile",
        "c: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, "
        "seccompProfile",
    ]


# -- on the API server ------------------------------------------------------------------


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ObjectService]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    yield server.service
    server.store.close()


def _rt(service: ObjectService, group: str, version: str, plural: str) -> ResourceType:
    found = service.registry.lookup(group, version, plural)
    assert found is not None
    return found


def _namespace(service: ObjectService, labels: dict[str, str]) -> dict[str, Any]:
    rt = _rt(service, "", "v1", "namespaces")
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": labels}}
    return service.create(rt, "", body)


async def test_the_api_refuses_warns_and_stores_nothing_refused(service: ObjectService) -> None:
    namespaces = _rt(service, "", "v1", "namespaces")
    pods = _rt(service, "", "v1", "pods")
    deployments = _rt(service, "apps", "v1", "deployments")
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    bad["metadata"]["labels"] = {ENFORCE: "strict"}
    with pytest.raises(ApiError) as invalid:
        service.create(namespaces, "", bad)
    assert invalid.value.code == 422
    assert (
        'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be '
        "one of privileged, baseline, restricted" in invalid.value.message
    )
    _namespace(service, {ENFORCE: "baseline", WARN: "restricted"})

    with pytest.raises(ApiError) as refused:
        service.create(pods, "team", pod(hostNetwork=True))
    assert refused.value.code == 403
    assert refused.value.message == (
        f'pods "p" is forbidden: violates PodSecurity "baseline:latest": {HOST_NAMESPACES}'
    )
    assert service.store.find("core/pods", "team", "p") is None

    warnings: list[str] = []
    service.create(pods, "team", pod(), warnings=warnings)
    assert warnings == [f'would violate PodSecurity "restricted:latest": {RESTRICTED}']

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": pod(hostNetwork=True)["spec"],
            },
        },
    }
    warnings = []
    service.create(deployments, "team", deployment, warnings=warnings)  # stored, with warnings
    assert warnings[0] == f'would violate PodSecurity "baseline:latest": {HOST_NAMESPACES}'

    # restricted now: the pod stored above violates it
    live = json.loads(json.dumps(service.get(namespaces, "", "team")))
    live["metadata"]["labels"][ENFORCE] = "restricted"
    warnings = []
    service.update(namespaces, "", "team", live, warnings=warnings)
    assert warnings[0] == (
        'existing pods in namespace "team" violate the new PodSecurity enforce level '
        '"restricted:latest"'
    )
    assert warnings[1].startswith("p: allowPrivilegeEscalation != false")
