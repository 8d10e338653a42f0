"""The ServiceAccount admission plugin's part that pods notice: a new pod runs as a
ServiceAccount (`default` unless it names one) and gets a projected volume
`kube-api-access-<random>` mounted read-only at
`/var/run/secrets/kubernetes.io/serviceaccount` in every container: `token` (a token of
that ServiceAccount bound to the pod, refreshed by the node agent), `ca.crt` (the
`kube-root-ca.crt` ConfigMap) and `namespace`, exactly the files in-cluster clients read.
Not when the pod says `automountServiceAccountToken: false`, nor into a container that
already mounts something there. Pure; applied once, at creation.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["MOUNT_PATH", "mount_service_account_token"]

JSONDict = dict[str, Any]

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphabet


def _volume(name: str) -> JSONDict:
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


def mount_service_account_token(pod: JSONDict, suffix: str | None = None) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = account
    spec["serviceAccount"] = account
    if spec.get("automountServiceAccountToken") is False:
        return
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
        and not any(
            isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
            for m in c.get("volumeMounts") or []
        )
    ]
    if not containers:
        return
    name = "kube-api-access-" + (suffix or "".join(secrets.choice(_ALPHABET) for _ in range(5)))
    volumes = spec.setdefault("volumes", [])
    if not isinstance(volumes, list):
        return
    volumes.append(_volume(name))
    for container in containers:
        mounts = container.setdefault("volumeMounts", [])
        if isinstance(mounts, list):
            mounts.append({"name": name, "mountPath": MOUNT_PATH, "readOnly": True})
