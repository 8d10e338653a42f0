"""The manifests that run `recon operator` inside a cluster stay valid Kubernetes."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.cli.validate import collect_errors, default_schema_dirs

ROOT = Path(__file__).resolve().parents[3]


def test_operator_manifests_validate() -> None:
    paths = [str(ROOT / "docs" / "operator" / "operator.yaml"), str(ROOT / "schemas")]
    count, errors = collect_errors(paths, None, default_schema_dirs())
    assert errors == [] and count >= 6


def test_the_deployment_runs_the_operator_in_cluster_as_its_service_account() -> None:
    docs = list(yaml.safe_load_all((ROOT / "docs" / "operator" / "operator.yaml").read_text()))
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "recon-operator"
    assert pod["containers"][0]["args"][:2] == ["operator", "--in-cluster"]
    [binding] = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"][0]["name"] == "recon-operator"
