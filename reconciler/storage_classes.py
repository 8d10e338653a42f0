"""Recon's storage: its provisioner and the default StorageClass every cluster starts with.

kind and minikube ship one default class, so charts and manifests that leave
`storageClassName` out (or name `standard`) get storage; Recon does the same, provisioning
a named engine volume per claim (`controllers/persistentvolume.py`, the node mounts it).
The class waits for the first consumer, as kind's does, so a claim is bound only once a
pod that uses it is placed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_ANNOTATION", "ENGINE_PROVISIONER", "default_class", "default_class_name"]

ENGINE_PROVISIONER = "recon.dev/engine-volume"
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def default_class() -> dict[str, Any]:
    """The `standard` StorageClass created at start when missing."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "standard", "annotations": {DEFAULT_ANNOTATION: "true"}},
        "provisioner": ENGINE_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def default_class_name(classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The class a claim naming none gets (the DefaultStorageClass admission plugin): the
    one marked default, the newest when several are."""
    marked = [
        c
        for c in classes
        if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true"
    ]
    if not marked:
        return None
    newest = max(
        marked,
        key=lambda c: (
            str((c.get("metadata") or {}).get("creationTimestamp") or ""),
            str((c.get("metadata") or {}).get("name") or ""),
        ),
    )
    return str((newest.get("metadata") or {}).get("name"))
