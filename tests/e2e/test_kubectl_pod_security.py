"""Pod Security Admission with the real kubectl: a namespace labelled `enforce=baseline,
warn=restricted` refuses a host-network pod, warns about a root pod and about a Deployment
whose pods it will refuse (they show as FailedCreate), refuses an invalid level, and
`kubectl label --dry-run=server` previews a stricter level."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

HOST_NAMESPACES = 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
WOULD = 'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'


def _pod(ns: str, name: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
        }
    )


def test_enforce_warn_and_a_preview_of_a_stricter_level(
    server: ReconServer, kubectl: Kubectl
) -> None:
    ns = f"psa-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    label = "pod-security.kubernetes.io"
    try:
        bad = kubectl.run("label", "ns", ns, f"{label}/enforce=strict", check=False)
        assert bad.returncode != 0
        assert (
            f'metadata.labels[{label}/enforce]: Invalid value: "strict": must be one of '
            "privileged, baseline, restricted" in bad.stderr
        )
        kubectl.run("label", "ns", ns, f"{label}/enforce=baseline", f"{label}/warn=restricted")

        refused = kubectl.run(
            "apply", "-f", "-", input=_pod(ns, "host", hostNetwork=True), check=False
        )
        assert refused.returncode != 0
        assert f'pods "host" is forbidden: {HOST_NAMESPACES}' in refused.stderr
        assert kubectl.run("-n", ns, "get", "pod", "host", check=False).returncode != 0

        root = kubectl.run("apply", "-f", "-", input=_pod(ns, "root"))
        assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilege' in (
            root.stderr
        )
        assert "pod/root created" in root.stdout

        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "agent", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": json.loads(_pod(ns, "x", hostNetwork=True))["spec"],
                },
            },
        }
        made = kubectl.run("apply", "-f", "-", input=json.dumps(deployment))
        assert f"Warning: {WOULD}" in made.stderr
        assert "deployment.apps/agent created" in made.stdout

        def failed_create() -> str:
            events = kubectl.json("-n", ns, "get", "events")["items"]
            return next(
                (str(e["message"]) for e in events if e.get("reason") == "FailedCreate"), ""
            )

        message = wait_until(failed_create, what="the ReplicaSet's FailedCreate event")
        assert "is forbidden: " + HOST_NAMESPACES in message

        preview = kubectl.run(
            "label", "--dry-run=server", "--overwrite", "ns", ns, f"{label}/enforce=restricted"
        )
        assert (
            f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce '
            'level "restricted:latest"' in preview.stderr
        )
        assert "Warning: root: allowPrivilegeEscalation != false" in preview.stderr
        labels = kubectl.json("get", "ns", ns)["metadata"]["labels"]
        assert labels[f"{label}/enforce"] == "baseline"  # a dry run changes nothing
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
