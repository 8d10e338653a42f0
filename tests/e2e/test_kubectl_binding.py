"""A scheduler of one's own against Recon, with the real kubectl: a pod naming another
`schedulerName` waits for it; the Binding it POSTs to `pods/NAME/binding` assigns the pod
(discovery lists the subresource), and a second Binding is refused."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e


def test_a_custom_scheduler_binds_a_pod(server: ReconServer, kubectl: Kubectl) -> None:
    ns = f"bind-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", ns)
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns},
            "spec": {"schedulerName": "my-scheduler", "containers": [{"name": "c", "image": "x"}]},
        }
        kubectl.run("apply", "-f", "-", input=json.dumps(pod))
        assert not kubectl.json("-n", ns, "get", "pod", "p")["spec"].get("nodeName")
        resources = json.loads(kubectl.run("get", "--raw", "/api/v1").stdout)["resources"]
        listed = next(r for r in resources if r["name"] == "pods/binding")
        assert (listed["kind"], listed["verbs"]) == ("Binding", ["create"])

        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"},
        }
        path = f"/api/v1/namespaces/{ns}/pods/p/binding"
        kubectl.run("create", "--raw", path, "-f", "-", input=json.dumps(binding))
        bound = kubectl.json("-n", ns, "get", "pod", "p")
        assert bound["spec"]["nodeName"] == "node-a"
        scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled[0]["status"] == "True"

        again = kubectl.run(
            "create", "--raw", path, "-f", "-", input=json.dumps(binding), check=False
        )
        assert again.returncode != 0
        assert 'pod p is already assigned to node "node-a"' in again.stderr
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
