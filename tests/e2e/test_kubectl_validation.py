"""kubectl's server-side field validation and `kind: List` files against recon serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replica: 3
  selector:
    matchLabels: {app: typo}
  template:
    metadata:
      labels: {app: typo}
    spec:
      containers:
        - name: c
          image: busybox
"""

LIST = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: listed-a}
    data: {a: "1"}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: listed-b}
    data: {b: "2"}
"""


def test_unknown_field_is_an_error_by_default_naming_the_field(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    result = kubectl.run("apply", "-f", str(path), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.replica"' in result.stderr
    assert kubectl.run("get", "deployment", "typo", check=False).returncode == 1


def test_unknown_field_is_dropped_with_a_warning_when_asked(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    result = kubectl.run("apply", "--validate=warn", "-f", str(path))
    assert 'Warning: unknown field "spec.replica"' in result.stderr
    live = kubectl.json("get", "deployment", "typo")
    assert "replica" not in live["spec"] and live["spec"]["replicas"] == 1
    kubectl.run("delete", "deployment", "typo")


def test_apply_of_a_kind_list_file(kubectl: Kubectl, tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(LIST)
    out = kubectl.run("apply", "-f", str(path)).stdout
    assert "configmap/listed-a created" in out and "configmap/listed-b created" in out


def test_explain_reads_the_openapi_documents(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "deployment.spec.strategy").stdout
    assert "KIND:       Deployment" in out and "rollingUpdate" in out


def test_api_resources_and_versions(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources").stdout
    assert "deployments" in out and "deploy" in out and "apps/v1" in out
    assert "batch/v1" in kubectl.run("api-versions").stdout


def test_a_pod_takes_image_and_toleration_changes_and_refuses_the_rest(kubectl: Kubectl) -> None:
    name = "edited"
    kubectl.run("run", name, "--image=busybox:1", "--restart=Never", "--", "sleep", "3600")
    try:
        kubectl.run("set", "image", f"pod/{name}", f"{name}=busybox:2")
        kubectl.run(
            "patch",
            "pod",
            name,
            "-p",
            '{"spec":{"activeDeadlineSeconds":600,"tolerations":[{"key":"k","operator":"Exists"}]}}',
        )
        refused = kubectl.run(
            "patch",
            "pod",
            name,
            "-p",
            f'{{"spec":{{"containers":[{{"name":"{name}","command":["sh"]}}]}}}}',
            check=False,
        )
        assert refused.returncode != 0
        assert (
            f'The Pod "{name}" is invalid: spec: Forbidden: pod updates may not change fields '
            in (refused.stderr)
        )
        assert "changed: spec.containers[0].command" in refused.stderr
        longer = kubectl.run(
            "patch", "pod", name, "-p", '{"spec":{"activeDeadlineSeconds":900}}', check=False
        )
        assert "must be less than or equal to previous value" in longer.stderr
        spec = kubectl.json("get", "pod", name)["spec"]
        assert spec["containers"][0]["image"] == "busybox:2"
        assert spec["containers"][0]["args"] == ["sleep", "3600"]
        assert "command" not in spec["containers"][0]
        assert spec["activeDeadlineSeconds"] == 600
        # labels and annotations are metadata: always editable
        kubectl.run("label", "pod", name, "tier=web")
    finally:
        kubectl.run("delete", "pod", name, "--wait=false", check=False)
