"""Setting up a pod's volumes on the host, before its containers are created.

- emptyDir: a named engine volume per pod (removed with the pod); `medium: Memory` is a
  memory-backed directory instead;
- hostPath: the host path itself, created or checked as its `type` says;
- configMap, secret, downwardAPI, projected: files in a memory-backed directory (so Secret
  data never reaches a disk), rewritten atomically when their sources change;
- persistentVolumeClaim: a named engine volume per claim, which outlives every pod and goes
  with the claim (`claim_volumes`).

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

__all__ = [
    "VolumeSourceError",
    "empty_dir_volume_name",
    "prepare_volumes",
    "refresh_file_volumes",
]

JSONDict = dict[str, Any]


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


async def prepare_volumes(
    pod: JSONDict,
    runtime: ContainerRuntime,
    lookup: ObjectLookup,
    node_allocatable: Mapping[str, str],
    claims: Mapping[str, JSONDict | None],
    agent_id: str,
    tokens: TokenSource | None = None,
) -> dict[str, PreparedVolume]:
    """Every volume of the pod, ready to mount. `claims` maps claim names to the PVCs found
    (None when missing: the pod waits); the volumes of claims are labelled with `agent_id`."""
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
            engine_volume = claim_volume_name(str((found.get("metadata") or {}).get("uid")))
            await runtime.ensure_volume(
                engine_volume, claim_volume_labels(agent_id, namespace, claim)
            )
            prepared[name] = PreparedVolume(
                "volume", engine_volume, read_only=bool(source.get("readOnly"))
            )
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
