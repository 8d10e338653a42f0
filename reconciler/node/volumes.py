"""Setting up a pod's volumes on the host, before its containers are created.

- emptyDir: a named engine volume per pod (removed with the pod); `medium: Memory` is a
  memory-backed directory instead;
- hostPath: the host path itself, created or checked as its `type` says;
- configMap, secret, downwardAPI, projected: files in a memory-backed directory (so Secret
  data never reaches a disk), rewritten atomically when their sources change;
- persistentVolumeClaim: what the claim is bound to (`claim_source`): a hostPath or local
  PersistentVolume's host path, or, for the volumes Recon provisions, a named engine volume
  per claim, which outlives every pod and goes with the claim (`claim_volumes`). A claim
  not bound yet (its volume is being provisioned) makes the pod wait quietly
  (ClaimNotBoundError).

A volume that cannot be set up yet (its ConfigMap is missing) raises VolumeSourceError: the
pod stays ContainerCreating and is retried when the object appears, as on Kubernetes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.node.atomic_writer import write_files
from reconciler.node.claim_volumes import claim_volume_labels, claim_volume_name
from reconciler.node.containers import PreparedVolume
from reconciler.node.env import ObjectLookup
from reconciler.node.volume_files import (
    TokenSource,
    VolumeSourceError,
    is_file_volume,
    volume_files,
)
from reconciler.runtime.base import POD_UID_LABEL, ContainerRuntime
from reconciler.storage_classes import ENGINE_PROVISIONER

__all__ = [
    "ClaimNotBoundError",
    "VolumeSourceError",
    "claim_source",
    "empty_dir_volume_name",
    "prepare_volumes",
    "refresh_file_volumes",
]

JSONDict = dict[str, Any]

# PersistentVolumeSpec fields that are objects but not a volume source.
_PV_FIELDS = frozenset({"capacity", "claimRef", "nodeAffinity", "mountOptions"})


class ClaimNotBoundError(VolumeSourceError):
    """The claim exists but is not bound yet: the pod waits without a FailedMount event."""


def empty_dir_volume_name(pod_uid: str, volume: str) -> str:
    return f"recon-{pod_uid}-{volume}"


def _host_path(volume: str, source: Mapping[str, Any]) -> PreparedVolume:
    path = str(source.get("path") or "")
    kind = str(source.get("type") or "")
    target = Path(path)
    if not path.startswith("/"):
        raise VolumeSourceError(f"hostPath volume {volume!r}: path {path!r} is not absolute")
    if kind in ("", "DirectoryOrCreate") and not target.exists():
        target.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o644)
    checks = {
        "Directory": (stat.S_ISDIR, "a directory"),
        "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
        "File": (stat.S_ISREG, "a file"),
        "FileOrCreate": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket"),
        "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device"),
    }
    if kind in checks:
        test, what = checks[kind]
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise VolumeSourceError(f"hostPath type check failed: {path} is not {what}") from None
        if not test(mode):
            raise VolumeSourceError(f"hostPath type check failed: {path} is not {what}")
    return PreparedVolume("bind", path)


def claim_source(claim: Mapping[str, Any], volume: Mapping[str, Any] | None) -> tuple[str, str]:
    """Where a bound claim's data are: ("hostPath" | "local", a host path) for the volumes
    users write by hand, ("engine", an engine volume's name) for Recon's provisioned ones
    (the PV's CSI volume handle) and for claims bound before PersistentVolumes existed here
    (named after the claim). Raises VolumeSourceError while the claim is not bound yet or
    for a volume this node cannot mount."""
    meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
    name = str(meta.get("name") or "")
    volume_name = spec.get("volumeName")
    if not volume_name or (claim.get("status") or {}).get("phase") != "Bound":
        raise ClaimNotBoundError(f'persistentvolumeclaim "{name}" is not bound yet')
    if volume is None:
        if str(volume_name) == claim_volume_name(str(meta.get("uid"))):
            return "engine", str(volume_name)
        raise VolumeSourceError(f'persistentvolume "{volume_name}" not found')
    vspec = volume.get("spec") or {}
    if isinstance(vspec.get("hostPath"), dict):
        return "hostPath", str(vspec["hostPath"].get("path") or "")
    if isinstance(vspec.get("local"), dict):
        return "local", str(vspec["local"].get("path") or "")
    csi = vspec.get("csi")
    if isinstance(csi, dict) and csi.get("driver") == ENGINE_PROVISIONER:
        return "engine", str(csi.get("volumeHandle") or "")
    kinds = sorted(k for k in vspec if isinstance(vspec.get(k), dict) and k not in _PV_FIELDS)
    raise VolumeSourceError(
        f'persistentvolume "{volume_name}": type {", ".join(kinds) or "(none)"} cannot be '
        "mounted on this node (hostPath, local and Recon's own are)"
    )


async def prepare_volumes(
    pod: JSONDict,
    runtime: ContainerRuntime,
    lookup: ObjectLookup,
    node_allocatable: Mapping[str, str],
    claims: Mapping[str, JSONDict | None],
    agent_id: str,
    tokens: TokenSource | None = None,
    bound: Mapping[str, JSONDict | None] | None = None,
) -> dict[str, PreparedVolume]:
    """Every volume of the pod, ready to mount. `claims` maps claim names to the PVCs found
    (None when missing: the pod waits); `bound` maps them to the PersistentVolumes they are
    bound to (`claim_source` reads them); engine volumes of claims are labelled with
    `agent_id`."""
    meta = pod.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    namespace = str(meta.get("namespace") or "default")
    prepared: dict[str, PreparedVolume] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume.get("name") or "")
        if isinstance(volume.get("emptyDir"), dict):
            if volume["emptyDir"].get("medium") == "Memory":
                path = await runtime.ensure_memory_dir(uid, name)
                prepared[name] = PreparedVolume("bind", path)
            else:
                engine_volume = empty_dir_volume_name(uid, name)
                await runtime.ensure_volume(engine_volume, {POD_UID_LABEL: uid})
                prepared[name] = PreparedVolume("volume", engine_volume)
        elif isinstance(volume.get("hostPath"), dict):
            prepared[name] = _host_path(name, volume["hostPath"])
        elif isinstance(volume.get("persistentVolumeClaim"), dict):
            source = volume["persistentVolumeClaim"]
            claim = str(source.get("claimName") or "")
            found = claims.get(claim)
            if found is None:
                raise VolumeSourceError(f'persistentvolumeclaim "{claim}" not found')
            if (found.get("metadata") or {}).get("deletionTimestamp"):
                raise VolumeSourceError(f'persistentvolumeclaim "{claim}" is being deleted')
            read_only = bool(source.get("readOnly"))
            kind, where = claim_source(found, (bound or {}).get(claim))
            if kind == "hostPath":
                host = _host_path(name, {"path": where, "type": "DirectoryOrCreate"})
                prepared[name] = PreparedVolume("bind", host.source, read_only=read_only)
            elif kind == "local":
                prepared[name] = PreparedVolume("bind", where, read_only=read_only)
            else:
                await runtime.ensure_volume(where, claim_volume_labels(agent_id, namespace, claim))
                prepared[name] = PreparedVolume("volume", where, read_only=read_only)
        elif is_file_volume(volume):
            files = volume_files(pod, volume, lookup, node_allocatable, tokens)
            path = await runtime.ensure_memory_dir(uid, name)
            write_files(Path(path), files)
            prepared[name] = PreparedVolume("bind", path, read_only=True, file_backed=True)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeSourceError(
                f"volume {name!r}: type {', '.join(kinds) or '(none)'} is not supported on "
                "this node (emptyDir, hostPath, configMap, secret, downwardAPI, projected, "
                "persistentVolumeClaim are)"
            )
    return prepared


async def refresh_file_volumes(
    pod: JSONDict,
    runtime: ContainerRuntime,
    lookup: ObjectLookup,
    node_allocatable: Mapping[str, str],
    tokens: TokenSource | None = None,
) -> bool:
    """Rewrite the file-backed volumes whose sources changed (a ServiceAccount token
    replaced included); returns whether any did.
    A source that disappeared leaves the last files in place (as the kubelet does)."""
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    changed = False
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if not is_file_volume(volume):
            continue
        try:
            files = volume_files(pod, volume, lookup, node_allocatable, tokens)
        except VolumeSourceError:
            continue
        path = await runtime.ensure_memory_dir(uid, str(volume.get("name") or ""))
        changed = write_files(Path(path), files) or changed
    return changed
