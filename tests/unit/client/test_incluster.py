"""The kubeconfig `recon operator --in-cluster` builds from a pod's service account."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.client.incluster import InClusterError, write_in_cluster_kubeconfig


def test_kubeconfig_from_the_service_account(tmp_path: Path) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("tok-123\n")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (account / "namespace").write_text("recon-system")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    path = write_in_cluster_kubeconfig(tmp_path / "out" / "kubeconfig", account, env)
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster == {
        "server": "https://10.96.0.1:443",
        "certificate-authority": str(account / "ca.crt"),
    }
    assert config["users"][0]["user"] == {"token": "tok-123"}
    assert config["contexts"][0]["context"]["namespace"] == "recon-system"
    assert path.stat().st_mode & 0o777 == 0o600
    ipv6 = write_in_cluster_kubeconfig(
        tmp_path / "v6", account, {"KUBERNETES_SERVICE_HOST": "fd00::1"}
    )
    assert yaml.safe_load(ipv6.read_text())["clusters"][0]["cluster"]["server"] == (
        "https://[fd00::1]:443"
    )


def test_outside_a_pod_it_says_so(tmp_path: Path) -> None:
    with pytest.raises(InClusterError, match="not running in a Kubernetes pod"):
        write_in_cluster_kubeconfig(tmp_path / "k", tmp_path / "nowhere", {})
