"""From a pod's container to the runtime's `ContainerSpec`. Pure.

Everything the engine needs is decided here: the command (with `$(VAR)` expansion), the
environment (computed by `env.py`), mounts from the prepared volumes, limits, the user, and
the labels that let the agent find the container again after a restart (re-adoption goes by
labels, never by memory).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.node.env import ConfigError, Environment, expand
from reconciler.quantity import QuantityError, cpu_nanos, memory_bytes, parse_quantity
from reconciler.runtime.base import (
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
    BindMount,
    ContainerSpec,
    Mount,
    TmpfsMount,
    VolumeMount,
)

__all__ = [
    "AGENT_LABEL",
    "CONTAINER_NAME_LABEL",
    "DEFINITION_HASH_LABEL",
    "EPHEMERAL_LABEL",
    "INIT_LABEL",
    "RESTART_COUNT_LABEL",
    "SPEC_HASH_LABEL",
    "PreparedVolume",
    "build_container_spec",
    "container_hash",
    "container_limits",
    "definition_changed",
    "definition_hash",
    "engine_container_name",
]

JSONDict = dict[str, Any]

CONTAINER_NAME_LABEL = "recon.dev/container-name"
RESTART_COUNT_LABEL = "recon.dev/restart-count"
INIT_LABEL = "recon.dev/init-container"
EPHEMERAL_LABEL = "recon.dev/ephemeral-container"
"""On ephemeral containers only (`kubectl debug`): "true"."""
SPEC_HASH_LABEL = "recon.dev/container-hash"
DEFINITION_HASH_LABEL = "recon.dev/definition-hash"
"""The container's spec without what a resize may change (`resources`, `resizePolicy`):
only a change of this restarts the container. Containers made before it existed carry only
`SPEC_HASH_LABEL`, compared as before."""
AGENT_LABEL = "recon.dev/agent"
"""Which node agent made the container: agents sharing one engine never touch each other's."""


@dataclass(frozen=True)
class PreparedVolume:
    """A pod volume ready to mount: a host directory, a named engine volume, or tmpfs."""

    kind: Literal["bind", "volume", "tmpfs"]
    source: str = ""
    read_only: bool = False
    file_backed: bool = False
    """configMap/secret/downwardAPI/projected: files live under `source/..data/`."""


def container_hash(container: Mapping[str, Any]) -> str:
    """A fingerprint of the container's spec: when it changes (a new image on a live pod) the
    container is restarted, as the kubelet does."""
    blob = json.dumps(container, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def definition_hash(container: Mapping[str, Any]) -> str:
    """`container_hash` of all but the resources an in-place resize changes."""
    rest = {k: v for k, v in container.items() if k not in ("resources", "resizePolicy")}
    return container_hash(rest)


def definition_changed(container: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a running container no longer matches the pod's definition of it (and is
    restarted); a resize alone is not a change of definition."""
    if DEFINITION_HASH_LABEL in labels:
        return labels[DEFINITION_HASH_LABEL] != definition_hash(container)
    return labels.get(SPEC_HASH_LABEL) != container_hash(container)


def engine_container_name(pod: JSONDict, container_name: str, restart_count: int) -> str:
    """The kubelet's naming: `recon_web_mypod_default_<uid>_<restarts>`."""
    meta = pod.get("metadata") or {}
    return (
        f"recon_{container_name}_{meta.get('name')}_{meta.get('namespace')}_"
        f"{meta.get('uid')}_{restart_count}"
    )


def _mounts(container: JSONDict, volumes: Mapping[str, PreparedVolume]) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        name = str(mount.get("name") or "")
        target = str(mount.get("mountPath") or "")
        prepared = volumes.get(name)
        if prepared is None:
            raise ConfigError(f'volume "{name}" is mounted at {target} but not defined')
        read_only = bool(mount.get("readOnly")) or prepared.read_only
        sub_path = str(mount.get("subPath") or "")
        if prepared.kind == "tmpfs":
            mounts.append(TmpfsMount(target))
        elif prepared.kind == "volume":
            if sub_path:
                raise ConfigError(
                    f"volumeMount {name!r}: subPath is not supported on engine volumes yet"
                )
            mounts.append(VolumeMount(prepared.source, target, read_only))
        else:
            source = prepared.source
            if sub_path:
                base = f"{source}/..data" if prepared.file_backed else source
                source = f"{base}/{sub_path}"
            mounts.append(BindMount(source, target, read_only))
    return tuple(mounts)


def _user(container: JSONDict, pod_security: JSONDict) -> str | None:
    security = container.get("securityContext") or {}
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def container_limits(
    container: Mapping[str, Any], name: str
) -> tuple[int | None, int | None, int | None]:
    """(CPU limit in nano-CPUs, memory limit in bytes, CPU shares from the request) for the
    engine; ConfigError for a quantity it cannot read."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    try:
        nanos = cpu_nanos(limits["cpu"]) if "cpu" in limits else None
        memory = memory_bytes(limits["memory"]) if "memory" in limits else None
        shares = None
        cpu_request = requests.get("cpu", limits.get("cpu"))
        if cpu_request is not None:
            shares = max(2, math.ceil(parse_quantity(cpu_request) * 1024))
    except QuantityError as exc:
        raise ConfigError(f"container {name}: {exc}") from None
    return nanos, memory, shares


def build_container_spec(
    pod: JSONDict,
    container: JSONDict,
    *,
    env: Mapping[str, str],
    volumes: Mapping[str, PreparedVolume],
    sandbox_id: str,
    restart_count: int,
    init: bool,
    allow_privileged: bool,
    ephemeral: bool = False,
    pid_of: str | None = None,
) -> ContainerSpec:
    """Raises ConfigError for what the kubelet reports as CreateContainerConfigError.

    `ephemeral`: one of `spec.ephemeralContainers`; `pid_of`: the engine id of its target
    container, whose processes it sees (unless the whole pod shares one PID namespace)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(container.get("name") or "")
    security = container.get("securityContext") or {}
    if security.get("privileged") and not allow_privileged:
        raise ConfigError(
            f"container {name}: privileged containers are not allowed on this node "
            "(start recon serve with --allow-privileged)"
        )
    command = container.get("command")
    args = container.get("args")
    nanos, memory, shares = container_limits(container, name)
    labels = {
        POD_UID_LABEL: str(meta.get("uid") or ""),
        POD_NAME_LABEL: str(meta.get("name") or ""),
        POD_NAMESPACE_LABEL: str(meta.get("namespace") or ""),
        CONTAINER_NAME_LABEL: name,
        RESTART_COUNT_LABEL: str(restart_count),
        INIT_LABEL: "true" if init else "false",
        SPEC_HASH_LABEL: container_hash(container),
        DEFINITION_HASH_LABEL: definition_hash(container),
    }
    if ephemeral:
        labels[EPHEMERAL_LABEL] = "true"
    # With hostPID the sandbox is in the host's PID namespace: sharing it gives the host's.
    share_pid = bool(spec.get("shareProcessNamespace")) or spec.get("hostPID") is True
    stdin = bool(container.get("stdin"))
    return ContainerSpec(
        name=engine_container_name(pod, name, restart_count),
        image=str(container.get("image") or ""),
        command=tuple(expand(str(c), env) for c in command) if command else None,
        args=tuple(expand(str(a), env) for a in args) if args else None,
        # Kept as given when it is an `Environment` (read-only, its Service variables shared
        # with the other pods of the namespace); anything else is copied.
        env=env if isinstance(env, Environment) else Environment(dict(env)),
        working_dir=container.get("workingDir") or None,
        mounts=_mounts(container, volumes),
        nano_cpus=nanos,
        cpu_shares=shares,
        memory_bytes=memory,
        user=_user(container, spec.get("securityContext") or {}),
        read_only_rootfs=bool(security.get("readOnlyRootFilesystem")),
        privileged=bool(security.get("privileged")),
        labels=labels,
        sandbox=sandbox_id,
        share_pid=share_pid,
        pid_of=None if share_pid else pid_of,
        stdin=stdin,
        stdin_once=stdin and bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
    )
