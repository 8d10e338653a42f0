"""Pure translation between the runtime's values and the Docker Engine API's JSON.

Specs become the keyword arguments of the SDK's `create_host_config` / `create_container`;
`inspect` and event JSON become `ContainerState` / `RuntimeEvent`. No I/O here, so the
mapping is tested without an engine; `docker.py` does the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from reconciler.runtime.base import (
    HOST_NETWORK,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
    ROLE_LABEL,
    SANDBOX_ID_LABEL,
    BindMount,
    ContainerId,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EventKind,
    ImageInfo,
    MountInfo,
    NetworkAttachment,
    PublishedPort,
    RuntimeEvent,
    SandboxSpec,
    TmpfsMount,
    VolumeMount,
    managed_labels,
    sandbox_container_name,
)

__all__ = [
    "CreateArgs",
    "container_create_args",
    "event_from_raw",
    "image_info",
    "parse_engine_time",
    "sandbox_create_args",
    "state_from_inspect",
    "update_body",
]

Raw = Mapping[str, Any]

_STATUS = {
    "created": ContainerStatus.CREATED,
    "running": ContainerStatus.RUNNING,
    "paused": ContainerStatus.RUNNING,
    "restarting": ContainerStatus.RUNNING,
    "removing": ContainerStatus.EXITED,
    "exited": ContainerStatus.EXITED,
    "dead": ContainerStatus.EXITED,
}
_EVENTS = {kind.value: kind for kind in EventKind}
_EVENT_ATTRIBUTES_NOT_LABELS = frozenset({"name", "image", "exitCode", "signal", "execDuration"})


@dataclass(frozen=True)
class CreateArgs:
    """What `create_container` needs: its own keywords, the host config's, the endpoint's."""

    name: str
    container: dict[str, Any]
    host_config: dict[str, Any]
    network: str | None = None
    aliases: tuple[str, ...] = ()
    ip_address: str | None = None
    attachments: tuple[NetworkAttachment, ...] = ()
    """Networks connected after create, before start."""
    stdin_once: bool = False
    """The engine's `StdinOnce`, which the SDK's `create_container` has no keyword for."""


def sandbox_create_args(spec: SandboxSpec) -> CreateArgs:
    """The pause container: published ports on loopback only, a shareable IPC namespace."""
    labels = managed_labels(
        spec.labels,
        **{
            ROLE_LABEL: "sandbox",
            POD_UID_LABEL: spec.pod_uid,
            POD_NAME_LABEL: spec.name,
            POD_NAMESPACE_LABEL: spec.namespace,
        },
    )
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in spec.ports:
        key = f"{port.container_port}/{port.protocol}"
        bindings[key] = [
            {"HostIp": port.host_ip, "HostPort": str(port.host_port) if port.host_port else ""}
        ]
    host_config: dict[str, Any] = {
        "network_mode": spec.network,
        "ipc_mode": "host" if spec.host_ipc else "shareable",
        "pid_mode": "host" if spec.host_pid else None,
        "port_bindings": bindings or None,
        "extra_hosts": dict(spec.extra_hosts) or None,
        "dns": list(spec.dns_servers) or None,
        "dns_search": list(spec.dns_search) or None,
        "dns_opt": list(spec.dns_options) or None,
    }
    container: dict[str, Any] = {
        "image": spec.image,
        "hostname": spec.hostname,
        "domainname": spec.domainname,
        "labels": labels,
        "ports": [(p.container_port, p.protocol) for p in spec.ports] or None,
        "detach": True,
    }
    return CreateArgs(
        name=sandbox_container_name(spec),
        container=container,
        host_config=host_config,
        # the host's network takes no endpoint settings (the engine refuses aliases there)
        network=None if spec.network == HOST_NETWORK else spec.network,
        aliases=spec.dns_aliases,
        attachments=spec.extra_networks,
    )


def _mount(mount: BindMount | VolumeMount | TmpfsMount) -> dict[str, Any]:
    if isinstance(mount, BindMount):
        return {
            "Type": "bind",
            "Source": mount.source,
            "Target": mount.target,
            "ReadOnly": mount.read_only,
        }
    if isinstance(mount, VolumeMount):
        return {
            "Type": "volume",
            "Source": mount.volume,
            "Target": mount.target,
            "ReadOnly": mount.read_only,
        }
    options: dict[str, int] = {}
    if mount.size_bytes is not None:
        options["SizeBytes"] = mount.size_bytes
    if mount.mode is not None:
        options["Mode"] = mount.mode
    raw: dict[str, Any] = {"Type": "tmpfs", "Source": "", "Target": mount.target}
    if options:
        raw["TmpfsOptions"] = options
    return raw


def container_create_args(spec: ContainerSpec) -> CreateArgs:
    """An app container; in a sandbox it joins the sandbox's namespaces.

    Worked example: `sandbox="ab12"`, `share_pid=True` -> `network_mode="container:ab12"`,
    `ipc_mode="container:ab12"`, `pid_mode="container:ab12"`; with `pid_of="cd34"` instead
    (a debug container sharing its target's processes) `pid_mode="container:cd34"`;
    `memory_bytes=64Mi` sets the memory+swap limit to the same 64Mi, so the container
    cannot swap past its limit.
    """
    ours: dict[str, str] = {ROLE_LABEL: "container"}
    host_config: dict[str, Any] = {
        "mounts": [_mount(m) for m in spec.mounts] or None,
        "read_only": spec.read_only_rootfs or None,
        "privileged": spec.privileged,
    }
    if spec.sandbox is not None:
        ours[SANDBOX_ID_LABEL] = spec.sandbox
        joined = f"container:{spec.sandbox}"
        host_config["network_mode"] = joined
        if spec.share_ipc:
            host_config["ipc_mode"] = joined
        if spec.share_pid:
            host_config["pid_mode"] = joined
        elif spec.pid_of is not None:
            host_config["pid_mode"] = f"container:{spec.pid_of}"
    elif spec.network is not None:
        host_config["network_mode"] = spec.network
    if spec.memory_bytes is not None:
        host_config["mem_limit"] = spec.memory_bytes
        host_config["memswap_limit"] = spec.memory_bytes
    if spec.nano_cpus is not None:
        host_config["nano_cpus"] = spec.nano_cpus
    if spec.cpu_shares is not None:
        host_config["cpu_shares"] = spec.cpu_shares
    container: dict[str, Any] = {
        "image": spec.image,
        "entrypoint": list(spec.command) if spec.command is not None else None,
        "command": list(spec.args) if spec.args is not None else None,
        "environment": dict(spec.env) or None,
        "working_dir": spec.working_dir,
        "user": spec.user,
        "labels": managed_labels(spec.labels, **ours),
        "stdin_open": spec.stdin,
        "tty": spec.tty,
        "detach": True,
    }
    return CreateArgs(
        name=spec.name,
        container=container,
        host_config=host_config,
        network=spec.network if spec.sandbox is None else None,
        aliases=spec.network_aliases,
        ip_address=spec.ip_address,
        attachments=spec.extra_networks,
        stdin_once=spec.stdin_once,
    )


def parse_engine_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 times with nanoseconds; the zero time ("0001-01-01...") is None."""
    if not text or text.startswith("0001-01-01"):
        return None
    body = text[:-1] if text.endswith("Z") else text
    offset = ""
    for sign in ("+", "-"):
        at = body.rfind(sign)
        if at > 10:  # past the date's own dashes
            body, offset = body[:at], body[at:]
            break
    main, _, fraction = body.partition(".")
    moment = datetime.fromisoformat(main + (offset or "+00:00"))
    if fraction:
        moment = moment.replace(microsecond=int((fraction + "000000")[:6]))
    return moment.astimezone(UTC)


def _ports(raw: Raw) -> tuple[PublishedPort, ...]:
    published: list[PublishedPort] = []
    for key, bindings in sorted((raw or {}).items()):
        if not bindings:
            continue
        number, _, proto = str(key).partition("/")
        protocol: Literal["tcp", "udp"] = "udp" if proto == "udp" else "tcp"
        for binding in bindings:
            if binding.get("HostPort"):
                published.append(
                    PublishedPort(
                        container_port=int(number),
                        protocol=protocol,
                        host_ip=str(binding.get("HostIp") or ""),
                        host_port=int(binding["HostPort"]),
                    )
                )
    return tuple(published)


def _mounts(raw: Raw) -> tuple[MountInfo, ...]:
    found: list[MountInfo] = []
    seen: set[str] = set()
    for mount in raw.get("Mounts") or ():
        kind = mount.get("Type")
        if kind not in ("bind", "volume", "tmpfs"):
            continue
        target = str(mount.get("Destination", ""))
        source = str(mount.get("Name") if kind == "volume" else mount.get("Source", ""))
        found.append(MountInfo(kind, source, target, not mount.get("RW", True)))
        seen.add(target)
    for mount in (raw.get("HostConfig") or {}).get("Mounts") or ():
        if mount.get("Type") == "tmpfs" and mount.get("Target") not in seen:
            found.append(MountInfo("tmpfs", "", str(mount["Target"]), bool(mount.get("ReadOnly"))))
    return tuple(found)


def _ip_address(raw: Raw) -> str | None:
    settings = raw.get("NetworkSettings") or {}
    mode = str((raw.get("HostConfig") or {}).get("NetworkMode") or "")
    networks: Mapping[str, Any] = settings.get("Networks") or {}
    if mode in networks and networks[mode].get("IPAddress"):
        return str(networks[mode]["IPAddress"])
    for network in networks.values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return None


def state_from_inspect(raw: Raw) -> ContainerState:
    state: Raw = raw.get("State") or {}
    config: Raw = raw.get("Config") or {}
    host: Raw = raw.get("HostConfig") or {}
    status = _STATUS.get(str(state.get("Status")), ContainerStatus.EXITED)
    started_at = parse_engine_time(state.get("StartedAt"))
    finished_at = parse_engine_time(state.get("FinishedAt"))
    if (
        status is ContainerStatus.EXITED
        and started_at is not None
        and finished_at is not None
        and finished_at < started_at
    ):
        # The engine stamps StartedAt once its start call returns, which can be after a
        # quick process has already exited; it cannot have started after it finished.
        # (While running again after a restart, FinishedAt is the last run's: left alone.)
        started_at = finished_at
    return ContainerState(
        id=ContainerId(str(raw["Id"])),
        name=str(raw.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels=dict(config.get("Labels") or {}),
        status=status,
        exit_code=int(state.get("ExitCode", 0)) if status is ContainerStatus.EXITED else None,
        created_at=parse_engine_time(raw.get("Created")),
        started_at=started_at,
        finished_at=finished_at,
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        image_id=str(raw.get("Image", "")),
        ip_address=_ip_address(raw),
        ports=_ports((raw.get("NetworkSettings") or {}).get("Ports") or {}),
        memory_bytes=int(host["Memory"]) if host.get("Memory") else None,
        nano_cpus=int(host["NanoCpus"]) if host.get("NanoCpus") else None,
        cpu_shares=int(host["CpuShares"]) if host.get("CpuShares") else None,
        mounts=_mounts(raw),
        pid_of=_joined(host.get("PidMode")),
    )


def _joined(mode: object) -> str | None:
    """`container:<id>` (a namespace mode joining another container's) -> the id."""
    kind, _, other = str(mode or "").partition(":")
    return other if kind == "container" and other else None


def image_info(raw: Raw, ref: str) -> ImageInfo:
    return ImageInfo(
        id=str(raw["Id"]),
        ref=ref,
        tags=tuple(str(t) for t in raw.get("RepoTags") or ()),
        digests=tuple(str(d) for d in raw.get("RepoDigests") or ()),
        size_bytes=int(raw.get("Size") or 0),
    )


def event_from_raw(raw: Raw) -> RuntimeEvent | None:
    """A container event we report, or None (other types and actions are dropped)."""
    if raw.get("Type") != "container":
        return None
    kind = _EVENTS.get(str(raw.get("Action") or raw.get("status") or ""))
    if kind is None:
        return None
    actor: Raw = raw.get("Actor") or {}
    attributes: Mapping[str, str] = actor.get("Attributes") or {}
    nanos = raw.get("timeNano")
    moment = (
        datetime.fromtimestamp(int(nanos) / 1e9, UTC)
        if nanos
        else datetime.fromtimestamp(int(raw.get("time") or 0), UTC)
    )
    exit_code = attributes.get("exitCode")
    return RuntimeEvent(
        kind=kind,
        container_id=ContainerId(str(actor.get("ID") or raw.get("id") or "")),
        name=str(attributes.get("name", "")),
        labels={k: v for k, v in attributes.items() if k not in _EVENT_ATTRIBUTES_NOT_LABELS},
        time=moment,
        exit_code=int(exit_code) if exit_code is not None and kind is EventKind.DIED else None,
    )


def update_body(
    nano_cpus: int | None, memory_bytes: int | None, cpu_shares: int | None
) -> dict[str, int]:
    """The engine's `/containers/ID/update` body: the memory limit and swap together, as at
    create (no swap beyond the limit)."""
    body: dict[str, int] = {}
    if nano_cpus is not None:
        body["NanoCpus"] = nano_cpus
    if memory_bytes is not None:
        body["Memory"] = memory_bytes
        body["MemorySwap"] = memory_bytes
    if cpu_shares is not None:
        body["CpuShares"] = cpu_shares
    return body
