"""A kubeconfig for the pod's own service account, so `recon operator --in-cluster` runs
inside a cluster through the same kubeconfig path as everywhere else.

Kubernetes mounts the account's token, the cluster CA and the namespace at
`/var/run/secrets/kubernetes.io/serviceaccount/` and names the API server in
`KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`. The token is read once, at start;
a restart picks up a rotated one and loses nothing (the operator resumes from the cluster's
state).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = ["SERVICE_ACCOUNT_DIR", "InClusterError", "write_in_cluster_kubeconfig"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class InClusterError(Exception):
    pass


def write_in_cluster_kubeconfig(
    target: Path,
    account: Path = SERVICE_ACCOUNT_DIR,
    env: Mapping[str, str] | None = None,
) -> Path:
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    token_file, ca_file = account / "token", account / "ca.crt"
    if not host or not token_file.exists():
        raise InClusterError(
            "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST is unset or "
            f"{token_file} is missing (use --kubeconfig instead)"
        )
    namespace_file = account / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "in-cluster",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": "service-account", "user": {"token": token_file.read_text().strip()}}],
        "contexts": [
            {
                "name": "in-cluster",
                "context": {
                    "cluster": "in-cluster",
                    "user": "service-account",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": "in-cluster",
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return target
