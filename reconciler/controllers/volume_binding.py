"""Which PersistentVolume a claim binds to, and what a provisioned one looks like (pure).

The rules of upstream's PV controller that users rely on when they write a PV and a claim
by hand (the seed notes' "define a Persistent Volume, define a Persistent Volume Claim"):
a claim binds to an Available volume (or one pre-bound to it by `claimRef`, or the one it
names in `volumeName`) of the same storage class (none matches none), the same volume
mode, offering every access mode the claim asks for, with at least the storage it
requests, whose labels match the claim's `selector`; the smallest such volume wins, a
pre-bound one first.

Worked example: volumes of 1Gi, 5Gi and 10Gi in class `manual`, a claim for 3Gi in class
`manual`: it binds the 5Gi one, and `kubectl get pvc` shows CAPACITY 5Gi.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from reconciler.quantity import QuantityError, parse_quantity
from reconciler.selectors import SelectorError, label_selector_from_spec
from reconciler.storage_classes import ENGINE_PROVISIONER

__all__ = [
    "ENGINE_PROVISIONER",
    "claim_class",
    "find_volume",
    "provisioned_volume",
]

JSONDict = dict[str, Any]


def _storage(resources: Mapping[str, Any] | None) -> Decimal:
    try:
        return parse_quantity((resources or {}).get("storage") or 0)
    except QuantityError:
        return Decimal(0)


def claim_class(claim: Mapping[str, Any]) -> str:
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def _prebound_to(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    meta = claim.get("metadata") or {}
    return bool(
        ref
        and ref.get("name") == meta.get("name")
        and ref.get("namespace") == meta.get("namespace")
        and ref.get("uid") in (None, "", meta.get("uid"))
    )


def _fits(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    spec, want = volume.get("spec") or {}, claim.get("spec") or {}
    if str(spec.get("storageClassName") or "") != claim_class(claim):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (want.get("volumeMode") or "Filesystem"):
        return False
    if not set(want.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if _storage(spec.get("capacity")) < _storage((want.get("resources") or {}).get("requests")):
        return False
    selector = want.get("selector")
    if selector is not None:
        try:
            parsed = label_selector_from_spec(selector)
        except SelectorError:
            return False
        if not parsed.matches((volume.get("metadata") or {}).get("labels") or {}):
            return False
    return True


def find_volume(
    claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The volume `claim` should bind to, or None."""
    named = (claim.get("spec") or {}).get("volumeName")
    candidates = []
    for volume in volumes:
        meta = volume.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        if named and meta.get("name") != named:
            continue
        prebound = _prebound_to(volume, claim)
        if not prebound and (volume.get("spec") or {}).get("claimRef"):
            continue  # someone else's
        if (volume.get("status") or {}).get("phase") in ("Released", "Failed") and not prebound:
            continue
        if not _fits(volume, claim):
            continue
        size = _storage((volume.get("spec") or {}).get("capacity"))
        candidates.append((not prebound, size, str(meta.get("name")), volume))
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None


def provisioned_volume(
    claim: Mapping[str, Any], storage_class: Mapping[str, Any], volume_handle: str
) -> JSONDict:
    """The PersistentVolume Recon's provisioner makes for `claim`: `pvc-<claim uid>`, exactly
    the claim's size and access modes, pre-bound to it, its data in the engine volume
    `volume_handle`."""
    meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta.get('uid')}",
            "annotations": {"pv.kubernetes.io/provisioned-by": ENGINE_PROVISIONER},
        },
        "spec": {
            "capacity": {
                "storage": ((spec.get("resources") or {}).get("requests") or {}).get(
                    "storage", "1Gi"
                )
            },
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(claim),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "apiVersion": "v1",
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
            },
            "csi": {"driver": ENGINE_PROVISIONER, "volumeHandle": volume_handle},
        },
    }
