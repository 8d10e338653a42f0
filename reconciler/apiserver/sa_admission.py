"""The ServiceAccount admission plugin's part that pods notice: a new pod runs as a
ServiceAccount (`default` unless it names one) and gets a projected volume
`kube-api-access-<random>` mounted read-only at
`/var/run/secrets/kubernetes.io/serviceaccount` in every container: `token` (a token of
that ServiceAccount bound to the pod, refreshed by the node agent), `ca.crt` (the
`kube-root-ca.crt` ConfigMap) and `namespace`, exactly the files in-cluster clients read.
Not when the pod says `automountServiceAccountToken: false`, nor into a container that
already mounts something there, nor when its ServiceAccount says
`automountServiceAccountToken: false` and the pod says nothing. A pod naming a
ServiceAccount that does not exist is refused (403). Pure; applied once, at creation.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = [
    "MOUNT_PATH",
    "missing_account_error",
    "mount_service_account_token",
    "service_account_name",
]

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


def service_account_name(pod: JSONDict) -> str:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return "default"
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def missing_account_error(pod: JSONDict, account: JSONDict | None) -> str | None:
    """Why a new pod is refused for its ServiceAccount (upstream's 403 reason), or None.
    A missing `default` is not refused: the ServiceAccount controller is creating it in
    a new namespace (upstream's plugin waits for it instead)."""
    name = service_account_name(pod)
    if account is not None or name == "default":
        return None
    namespace = (pod.get("metadata") or {}).get("namespace") or ""
    return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'


def mount_service_account_token(
    pod: JSONDict, suffix: str | None = None, account: JSONDict | None = None
) -> None:
    """`account`: the pod's ServiceAccount when it exists; its `automountServiceAccountToken`
    applies unless the pod says otherwise, as upstream."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = service_account_name(pod)
    spec["serviceAccountName"] = name
    spec["serviceAccount"] = name
    automount = spec.get("automountServiceAccountToken")
    if automount is None and account is not None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
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
