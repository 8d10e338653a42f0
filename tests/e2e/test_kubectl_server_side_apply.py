"""`kubectl apply --server-side` against recon serve: field ownership as on a cluster."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e


def _manifest(name: str, replicas: int = 2, image: str = "busybox:1", **labels: str) -> str:
    extra = "".join(f"\n    {k}: {v}" for k, v in labels.items())
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}{extra}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: main
          image: {image}
          ports: [{{containerPort: 8080}}]
"""


def _get(kubectl: Kubectl, name: str) -> Any:
    return kubectl.json("get", "deployment", name, "--show-managed-fields")


def test_server_side_apply_owns_fields_and_reports_conflicts(kubectl: Kubectl) -> None:
    name = f"ssa-{uuid.uuid4().hex[:6]}"
    try:
        out = kubectl.run("apply", "--server-side", "-f", "-", input=_manifest(name, tier="web"))
        assert out.stdout.strip() == f"deployment.apps/{name} serverside-applied"
        got = _get(kubectl, name)
        entries = {(e["manager"], e["operation"]) for e in got["metadata"]["managedFields"]}
        assert ("kubectl", "Apply") in entries
        # kubectl hides managedFields unless asked
        assert "managedFields" not in kubectl.json("get", "deployment", name)["metadata"]

        # a changed image applies; the defaulted port protocol does not duplicate the port
        kubectl.run(
            "apply",
            "--server-side",
            "-f",
            "-",
            input=_manifest(name, image="busybox:2", tier="web"),
        )
        got = _get(kubectl, name)
        (container,) = got["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "busybox:2"
        assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]

        kubectl.run("scale", "deployment", name, "--replicas=5")
        refused = kubectl.run(
            "apply",
            "--server-side",
            "-f",
            "-",
            input=_manifest(name, image="busybox:2"),
            check=False,
        )
        assert refused.returncode != 0
        assert "Apply failed with 1 conflict: conflict with" in refused.stderr
        assert ".spec.replicas" in refused.stderr
        assert _get(kubectl, name)["spec"]["replicas"] == 5  # nothing stored

        diff = kubectl.run(
            "diff",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=_manifest(name, image="busybox:2"),
            check=False,
        )
        assert diff.returncode == 1 and "-  replicas: 5" in diff.stdout

        kubectl.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=_manifest(name, image="busybox:2"),
        )
        got = _get(kubectl, name)
        assert got["spec"]["replicas"] == 2
        assert got["metadata"]["labels"] == {"app": name}  # tier was dropped from the manifest
    finally:
        kubectl.run("delete", "deployment", name, "--wait=false", check=False)
