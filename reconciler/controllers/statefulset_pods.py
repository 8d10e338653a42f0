"""A StatefulSet's pods and claims as objects: names, identity, storage, claim owners.

Pure helpers of `statefulset_plan`: pod `<set>-<ordinal>` from a revision's template, with
`hostname`/`subdomain` and the identity labels; claim `<template>-<set>-<ordinal>` from a
`volumeClaimTemplates` entry; and the ownerReferences a claim should carry under
`persistentVolumeClaimRetentionPolicy`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from reconciler.controllers.podutil import owner_reference
from reconciler.controllers.revision_history import normalized

__all__ = [
    "HASH_LABEL",
    "POD_INDEX_LABEL",
    "POD_NAME_LABEL",
    "REVISION_LABEL",
    "claim_name",
    "claim_owner_references",
    "claim_templates",
    "new_claim",
    "ordinal_of",
    "stateful_pod",
]

JSONDict = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
HASH_LABEL = "controller.kubernetes.io/hash"  # on the ControllerRevisions

_ORDINAL = re.compile(r"^(.*)-(0|[1-9][0-9]*)$")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    """The ordinal of `<set>-<n>`, or None when the pod is not a member of the set."""
    match = _ORDINAL.match(pod_name)
    if match is None or match[1] != set_name:
        return None
    return int(match[2])


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    return f"{template_name}-{set_name}-{ordinal}"


def claim_templates(sts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((sts.get("spec") or {}).get("volumeClaimTemplates") or [])


def stateful_pod(
    sts: Mapping[str, Any], template: Mapping[str, Any], revision: str, ordinal: int
) -> JSONDict:
    """Pod `ordinal` of `sts` from `template` (the template of revision `revision`)."""
    meta, spec = _meta(sts), sts.get("spec") or {}
    set_name = str(meta.get("name", ""))
    name = f"{set_name}-{ordinal}"
    tmeta = template.get("metadata") or {}
    labels = {
        **(tmeta.get("labels") or {}),
        POD_NAME_LABEL: name,
        POD_INDEX_LABEL: str(ordinal),
        REVISION_LABEL: revision,
    }
    pod_meta: JSONDict = {
        "name": name,
        "namespace": meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(sts)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    pod_spec: JSONDict = normalized(copy.deepcopy(template.get("spec") or {}))
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = {str(t.get("metadata", {}).get("name")) for t in claim_templates(sts)}
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
    for tname in sorted(claims):
        volumes.append(
            {
                "name": tname,
                "persistentVolumeClaim": {"claimName": claim_name(tname, set_name, ordinal)},
            }
        )
    if volumes:
        pod_spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def _retention(sts: Mapping[str, Any]) -> tuple[bool, bool]:
    """(delete claims when the set is deleted, delete claims when scaled away)."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") == "Delete", policy.get("whenScaled") == "Delete"


def _plain_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> JSONDict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": _name(owner),
        "uid": _meta(owner).get("uid"),
    }


def claim_owner_references(
    sts: Mapping[str, Any],
    claim: Mapping[str, Any],
    pod: Mapping[str, Any] | None,
    in_range: bool,
) -> list[JSONDict]:
    """The ownerReferences a claim should have under the retention policy (upstream
    `updateClaimOwnerRefForSetAndPod`): the set owns it when `whenDeleted: Delete`; a pod
    scaled away owns it (so it goes with the pod) when `whenScaled: Delete`; otherwise neither
    does, and garbage collection never touches it. Other owners are kept."""
    when_deleted, when_scaled = _retention(sts)
    set_uid = _meta(sts).get("uid")
    pod_uid = _meta(pod).get("uid") if pod is not None else None
    refs = [
        dict(r)
        for r in _meta(claim).get("ownerReferences") or []
        if r.get("uid") not in (set_uid, pod_uid)
    ]
    existing = {r.get("uid"): r for r in _meta(claim).get("ownerReferences") or []}
    if when_deleted and (in_range or not when_scaled):
        refs.append(dict(existing.get(set_uid) or _plain_ref(sts, "apps/v1", "StatefulSet")))
    if when_scaled and not in_range and pod is not None:
        refs.append(dict(existing.get(pod_uid) or _plain_ref(pod, "v1", "Pod")))
    return refs


def new_claim(sts: Mapping[str, Any], template: Mapping[str, Any], ordinal: int) -> JSONDict:
    meta = _meta(sts)
    tmeta = template.get("metadata") or {}
    selector_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    claim_meta: JSONDict = {
        "name": claim_name(str(tmeta.get("name")), str(meta.get("name")), ordinal),
        "namespace": meta.get("namespace"),
        "labels": {**(tmeta.get("labels") or {}), **selector_labels},
    }
    if tmeta.get("annotations"):
        claim_meta["annotations"] = dict(tmeta["annotations"])
    claim: JSONDict = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": claim_meta,
        "spec": normalized(copy.deepcopy(template.get("spec") or {})),
    }
    refs = claim_owner_references(sts, claim, None, in_range=True)
    if refs:
        claim_meta["ownerReferences"] = refs
    return claim
