"""The container-runtime port: what the node agent asks of an engine, in engine-neutral values.

The node agent (`reconciler/node`) decides *what* runs: which pod sandbox, which containers,
which images, mounts, limits and labels. An implementation of `ContainerRuntime` only does
it: `docker.DockerRuntime` on a real Docker engine, `memory.MemoryRuntime` as an in-memory
fake for unit tests and scale benchmarks. Both pass one contract test suite
(`tests/unit/runtime/contract.py`). Nothing here knows Kubernetes objects; a "pod" is only a
sandbox container that holds the network namespace its containers join.

Values are frozen dataclasses; the spec validators below are pure and shared by every
implementation, so a spec one runtime refuses the other refuses too, with the same message.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NewType, Protocol

from reconciler.runtime.cgroup_usage import ResourceUsage
from reconciler.runtime.errors import InvalidSpecError

__all__ = [
    "HOST_NETWORK",
    "MANAGED_LABEL",
    "MIN_MEMORY_BYTES",
    "POD_NAMESPACE_LABEL",
    "POD_NAME_LABEL",
    "POD_UID_LABEL",
    "ROLE_LABEL",
    "SANDBOX_ID_LABEL",
    "AttachSession",
    "BindMount",
    "ContainerId",
    "ContainerRuntime",
    "ContainerSpec",
    "ContainerState",
    "ContainerStatus",
    "EngineInfo",
    "EventKind",
    "EventStream",
    "ExecChunk",
    "ExecResult",
    "ExecSession",
    "ImageInfo",
    "Mount",
    "MountInfo",
    "NetworkAttachment",
    "NetworkConfig",
    "PortMapping",
    "PublishedPort",
    "PullPolicy",
    "RegistryAuth",
    "ResourceUsage",
    "RuntimeEvent",
    "SandboxSpec",
    "TmpfsMount",
    "VolumeMount",
    "managed_labels",
    "run_exec",
    "sandbox_container_name",
    "split_log_timestamp",
    "validate_container_spec",
    "validate_sandbox_spec",
]

ContainerId = NewType("ContainerId", str)
"""The engine's id of a container (a name is accepted wherever an id is)."""

MANAGED_LABEL = "recon.dev/managed"
"""Set to "true" on everything a runtime creates, so it can be listed and cleaned up."""
ROLE_LABEL = "recon.dev/role"
"""`sandbox` on pod sandboxes, `container` on the containers that join them."""
SANDBOX_ID_LABEL = "recon.dev/sandbox-id"
"""On a container that joins a sandbox: the sandbox's container id."""
POD_UID_LABEL = "recon.dev/pod-uid"
POD_NAME_LABEL = "recon.dev/pod-name"
POD_NAMESPACE_LABEL = "recon.dev/pod-namespace"

MIN_MEMORY_BYTES = 6 * 1024 * 1024

HOST_NETWORK = "host"
"""The `network` of a sandbox on the host's own network namespace (a pod's `hostNetwork`)."""
"""Docker refuses a memory limit under 6 MiB; every runtime refuses it the same way."""


class PullPolicy(enum.StrEnum):
    """Kubernetes' `imagePullPolicy` values, spelled as in a pod spec."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ContainerStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


class EventKind(enum.StrEnum):
    CREATED = "create"
    STARTED = "start"
    DIED = "die"
    OOM = "oom"
    REMOVED = "destroy"


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one pull. `repr` hides the password so it never reaches a log."""

    username: str
    password: str = field(repr=False)
    server: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    id: str
    ref: str
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    size_bytes: int = 0


@dataclass(frozen=True)
class PortMapping:
    """Publish `container_port` on the host. Only loopback host IPs are accepted.

    `host_port` 0 asks for an ephemeral port; the one chosen is reported in
    `ContainerState.ports` after `run_sandbox`.
    """

    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = "127.0.0.1"
    host_port: int = 0


@dataclass(frozen=True)
class PublishedPort:
    container_port: int
    protocol: Literal["tcp", "udp"]
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class BindMount:
    """A host path (file or directory, which must exist) mounted into the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class VolumeMount:
    """A named volume (see `ensure_volume`): it outlives the containers that mount it."""

    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class TmpfsMount:
    """A fresh memory-backed filesystem private to this container, empty at each start."""

    target: str
    size_bytes: int | None = None
    mode: int | None = None


Mount = BindMount | VolumeMount | TmpfsMount


@dataclass(frozen=True)
class MountInfo:
    """A mount as the engine reports it back (see `ContainerState.mounts`)."""

    kind: Literal["bind", "volume", "tmpfs"]
    source: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class NetworkAttachment:
    """A further network a container joins, the names it answers to there and, optionally,
    a fixed address (inside the network's subnet, outside its dynamic `ip_range`)."""

    network: str
    aliases: tuple[str, ...] = ()
    ip_address: str | None = None


@dataclass(frozen=True)
class NetworkConfig:
    """Addressing of a network that needs fixed addresses (`ensure_network`): the subnet,
    the part of it the engine hands out by itself, and the bridge's own address."""

    subnet: str
    ip_range: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """The pod sandbox: one container from `image` (a pause image, run with its own
    entrypoint) that holds the network, IPC and (optionally shared) PID namespaces.

    `network` is a user-defined bridge network (see `ensure_network`); `dns_aliases` make the
    sandbox resolvable by those names from other containers on that network. `attempt`
    distinguishes a re-created sandbox of the same pod in the container name.
    """

    pod_uid: str
    name: str
    namespace: str
    image: str
    network: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    """With `hostname`, the pod's fully qualified name (`hostname -f`, /etc/hosts)."""
    dns_aliases: tuple[str, ...] = ()
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    """host name -> IP address, added to the sandbox's /etc/hosts (Kubernetes' hostAliases)."""
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    """resolv.conf options, e.g. `ndots:5` (so `web` is tried with the search domains first)."""
    extra_networks: tuple[NetworkAttachment, ...] = ()
    """Networks joined besides `network` (whose address stays the pod's IP)."""
    host_pid: bool = False
    """Run in the host's PID namespace (containers sharing the sandbox's see the host's
    processes: a pod's `hostPID`)."""
    host_ipc: bool = False
    """Use the host's IPC namespace instead of one of the pod's own (`hostIPC`)."""
    attempt: int = 0


@dataclass(frozen=True)
class ContainerSpec:
    """One container. `command` replaces the image's ENTRYPOINT and `args` its CMD, as in a
    pod spec (a `command` without `args` drops the image's CMD).

    With `sandbox` set (a sandbox's container id) the container joins the sandbox's network
    namespace, so the containers of one pod reach each other on 127.0.0.1, and its IPC
    namespace (`share_ipc`) and PID namespace (`share_pid`), or instead the PID namespace
    of another running container of the pod (`pid_of`, a container id: what `kubectl debug
    --target` asks for). Without it the container runs on `network` (or the engine's
    default network).
    """

    name: str
    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    nano_cpus: int | None = None
    """CPU limit in billionths of a CPU (Kubernetes `limits.cpu` 500m -> 500_000_000)."""
    cpu_shares: int | None = None
    """Relative CPU weight (Kubernetes derives it from `requests.cpu`)."""
    memory_bytes: int | None = None
    """Hard memory limit; swap is not allowed beyond it (as the kubelet does)."""
    user: str | None = None
    read_only_rootfs: bool = False
    privileged: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    sandbox: str | None = None
    share_ipc: bool = True
    share_pid: bool = False
    network: str | None = None
    network_aliases: tuple[str, ...] = ()
    """Names on `network` (without a sandbox only)."""
    ip_address: str | None = None
    """A fixed address on `network` (without a sandbox only)."""
    extra_networks: tuple[NetworkAttachment, ...] = ()
    """Networks joined besides `network` (without a sandbox only)."""
    stdin: bool = False
    """Keep stdin open, for `attach` to write to (Kubernetes' `stdin`)."""
    stdin_once: bool = False
    """Close stdin when the first attached session that wrote to it says it is done."""
    tty: bool = False
    pid_of: str | None = None


@dataclass(frozen=True)
class ContainerState:
    """A container as the engine sees it now.

    `exit_code` is None until the container has exited. `ports` and `ip_address` are set on
    a sandbox (a container that joined one reports neither: use the sandbox's).
    """

    id: ContainerId
    name: str
    image: str
    labels: Mapping[str, str]
    status: ContainerStatus
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    oom_killed: bool = False
    error: str = ""
    image_id: str = ""
    ip_address: str | None = None
    ports: tuple[PublishedPort, ...] = ()
    memory_bytes: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    mounts: tuple[MountInfo, ...] = ()
    pid_of: str | None = None
    """The container whose PID namespace this one joined (`pid_of`, or the sandbox with
    `share_pid`), as it was named at creation."""


@dataclass(frozen=True)
class RuntimeEvent:
    """Something happened to a managed container. `exit_code` is set on `DIED`."""

    kind: EventKind
    container_id: ContainerId
    name: str
    labels: Mapping[str, str]
    time: datetime
    exit_code: int | None = None


@dataclass(frozen=True)
class EngineInfo:
    name: str
    version: str
    engine_id: str
    cpus: int
    memory_bytes: int
    os: str
    kernel: str
    root_dir: str = ""
    """Where the engine keeps images and container layers on this host ("" unknown)."""


@dataclass(frozen=True)
class ExecChunk:
    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecSession(Protocol):
    """A process started in a running container (`kubectl exec`, exec probes, hooks).

    `read` returns output as it comes, None once both streams are closed; with a TTY all
    output is on stdout. `exit_code` waits for the process to end. Always `close` it.
    """

    async def read(self) -> ExecChunk | None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def exit_code(self) -> int: ...

    async def close(self) -> None: ...


class AttachSession(Protocol):
    """The main process of a running container, attached to (`kubectl attach`): its output
    from the moment of attaching, and its stdin when the container keeps one open
    (`ContainerSpec.stdin`) and the session asked for it.

    `read` returns output as it comes, None once the process has closed its output (it
    exited) or the session was closed; with the container's TTY all output is on stdout.
    `close_stdin` ends the process's stdin only for a `stdin_once` container; otherwise
    the process keeps reading and another session may write to it later (Docker's and the
    kubelet's behaviour). Closing a session leaves the process running. Always `close` it.
    """

    async def read(self) -> ExecChunk | None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def close(self) -> None: ...


class EventStream(Protocol):
    """A subscription to runtime events: iterate it, `aclose` it when done."""

    def __aiter__(self) -> EventStream: ...

    async def __anext__(self) -> RuntimeEvent: ...

    async def aclose(self) -> None: ...


class ContainerRuntime(Protocol):
    """The engine the node agent runs pods on. All methods are safe to call concurrently.

    Idempotence: `remove_*` of something already gone is not an error; `ensure_*` of
    something present does nothing. Everything created carries `MANAGED_LABEL=true` plus the
    caller's labels; `list_*` only ever returns managed objects.
    """

    @property
    def name(self) -> str:
        """ "docker" or "memory"."""
        ...

    async def engine_info(self) -> EngineInfo: ...

    async def ensure_image(
        self, ref: str, policy: PullPolicy, auth: RegistryAuth | None = None
    ) -> ImageInfo:
        """Make `ref` present as `policy` says: Always pulls, IfNotPresent pulls only when
        absent, Never never pulls. Raises ImageNeverPullError, ImageNotFoundError or
        ImagePullError."""
        ...

    async def inspect_image(self, ref: str) -> ImageInfo | None: ...

    async def run_sandbox(self, spec: SandboxSpec) -> ContainerState:
        """Create and start the sandbox; the state carries the published host ports."""
        ...

    async def create_container(self, spec: ContainerSpec) -> ContainerId: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        """SIGTERM (the image's stop signal), then SIGKILL after `timeout_s`; returns once the
        container has exited. Stopping a container that is not running does nothing."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Remove it, killing it first if it still runs (stop it first for a graceful end)."""
        ...

    async def list_containers(
        self, label_selector: Mapping[str, str] | None = None
    ) -> list[ContainerState]:
        """Managed containers (running or not) whose labels include all of `label_selector`."""
        ...

    async def inspect(self, container_id: str) -> ContainerState: ...

    async def update_resources(
        self,
        container_id: str,
        *,
        nano_cpus: int | None,
        memory_bytes: int | None,
        cpu_shares: int | None,
    ) -> None:
        """Change a container's CPU and memory limits and CPU weight while it runs (a pod's
        in-place resize); None leaves that one as it is. Raises ContainerRuntimeError when
        the engine refuses (a memory limit below what the container uses)."""
        ...

    def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: datetime | None = None,
        follow: bool = False,
        timestamps: bool = False,
    ) -> AsyncGenerator[bytes, None]:
        """stdout and stderr interleaved as written. `tail` counts lines; `since` is inclusive;
        `follow` keeps the stream open until the container exits (or the caller stops
        iterating: use `contextlib.aclosing`). `timestamps` prefixes each line with an
        RFC 3339 time and a space (see `split_log_timestamp`)."""
        ...

    async def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        stdin: bool = False,
        tty: bool = False,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> ExecSession: ...

    async def attach(self, container_id: str, *, stdin: bool = False) -> AttachSession:
        """Attach to the running container's main process (see `AttachSession`); `stdin`
        asks to write to it. Raises ContainerNotRunningError when it is not running,
        ContainerNotFoundError when it is gone."""
        ...

    async def wait(self, container_id: str) -> int:
        """Wait until the container is not running; return its exit code. To follow many
        containers use `events()` instead: each `wait` holds a connection to the engine."""
        ...

    async def network_namespace(self, container_id: str) -> str:
        """The path of the running container's network namespace (`/proc/PID/ns/net`), to
        open connections from inside the pod as the kubelet's port-forward does. Raises
        ContainerNotRunningError when it is not running, ContainerNotFoundError when it is
        gone, and ContainerRuntimeError when this runtime has no such thing (in-memory)."""
        ...

    async def usage(self, container_id: str) -> ResourceUsage | None:
        """The running container's cumulative CPU time and memory working set, for the
        resource metrics (`kubectl top`, autoscaling); None when it is not running."""
        ...

    async def ensure_network(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        config: NetworkConfig | None = None,
    ) -> None:
        """Create the bridge network unless it exists (an existing one is kept as it is)."""
        ...

    async def remove_network(self, name: str) -> None: ...

    async def list_networks(self, label_selector: Mapping[str, str] | None = None) -> list[str]: ...

    async def ensure_volume(self, name: str, labels: Mapping[str, str] | None = None) -> None: ...

    async def remove_volume(self, name: str) -> None: ...

    async def list_volumes(self, label_selector: Mapping[str, str] | None = None) -> list[str]: ...

    async def ensure_memory_dir(self, pod_uid: str, name: str) -> str:
        """A host directory on tmpfs for the pod's volume `name`, to fill with files (secrets,
        memory-backed emptyDir) and bind into its containers: the data never touches disk."""
        ...

    async def remove_memory_dirs(self, pod_uid: str) -> None: ...

    async def list_memory_dir_pods(self) -> set[str]: ...

    async def events(self) -> EventStream:
        """Subscribe to events of managed containers; returns once subscribed, so
        "subscribe, then list, then iterate" loses nothing. Iterating raises
        RuntimeUnavailableError when the engine goes away (a dockerd restart): subscribe
        again and re-list."""
        ...

    async def close(self) -> None: ...


# --- helpers shared by every implementation --------------------------------------------------

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def sandbox_container_name(spec: SandboxSpec) -> str:
    """The engine-side name of a sandbox, in the kubelet's shape:
    `recon_POD_web-0_default_<uid>_0`."""
    return f"recon_POD_{spec.name}_{spec.namespace}_{spec.pod_uid}_{spec.attempt}"


def managed_labels(caller: Mapping[str, str] | None, **ours: str) -> dict[str, str]:
    """Caller labels plus ours (ours win: the caller cannot unmark a managed object)."""
    labels = dict(caller or {})
    labels[MANAGED_LABEL] = "true"
    for key, value in ours.items():
        labels[key] = value
    return labels


def _check_name(what: str, name: str) -> None:
    if not _NAME.match(name):
        raise InvalidSpecError(
            f"{what} name {name!r} is not valid for a container engine: use letters, digits, "
            "'_', '.', '-', at least 2 characters, starting with a letter or digit"
        )


def _check_ports(ports: Sequence[PortMapping]) -> None:
    seen: set[tuple[int, str]] = set()
    for port in ports:
        if not 1 <= port.container_port <= 65535:
            raise InvalidSpecError(f"container port {port.container_port} is not in 1-65535")
        if not 0 <= port.host_port <= 65535:
            raise InvalidSpecError(f"host port {port.host_port} is not in 0-65535")
        if port.protocol not in ("tcp", "udp"):
            raise InvalidSpecError(f"port protocol {port.protocol!r} is not tcp or udp")
        try:
            loopback = ipaddress.ip_address(port.host_ip).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise InvalidSpecError(
                f"port {port.container_port}/{port.protocol} would be published on "
                f"{port.host_ip!r}: Recon publishes only on loopback addresses (127.0.0.1)"
            )
        key = (port.container_port, port.protocol)
        if key in seen:
            raise InvalidSpecError(f"port {port.container_port}/{port.protocol} published twice")
        seen.add(key)


def _check_ip(what: str, ip: str) -> None:
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidSpecError(f"{what}: {ip!r} is not an IPv4 address") from None


def _check_attachments(what: str, attachments: Sequence[NetworkAttachment]) -> None:
    seen: set[str] = set()
    for attachment in attachments:
        if not attachment.network or attachment.network in seen:
            raise InvalidSpecError(f"{what}: network {attachment.network!r} is empty or repeated")
        seen.add(attachment.network)
        if attachment.ip_address is not None:
            _check_ip(f"{what} on {attachment.network}", attachment.ip_address)


def validate_sandbox_spec(spec: SandboxSpec) -> None:
    """Raise InvalidSpecError for a sandbox no engine should be asked to run."""
    for what, value in (
        ("pod uid", spec.pod_uid),
        ("pod", spec.name),
        ("namespace", spec.namespace),
    ):
        if not value:
            raise InvalidSpecError(f"sandbox spec has an empty {what}")
    _check_name("sandbox", sandbox_container_name(spec))
    if not spec.network:
        raise InvalidSpecError("sandbox spec names no network")
    if not spec.image:
        raise InvalidSpecError("sandbox spec names no (pause) image")
    _check_ports(spec.ports)
    _check_attachments("sandbox", spec.extra_networks)
    if spec.network == HOST_NETWORK and (spec.ports or spec.extra_networks or spec.dns_aliases):
        raise InvalidSpecError(
            "a sandbox on the host's network publishes no ports, joins no other network and "
            "has no network aliases"
        )
    for host, ip in spec.extra_hosts.items():
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidSpecError(f"extra host {host!r}: {ip!r} is not an IP address") from None


def validate_container_spec(spec: ContainerSpec) -> None:
    """Raise InvalidSpecError for a container no engine should be asked to run."""
    _check_name("container", spec.name)
    if not spec.image:
        raise InvalidSpecError(f"container {spec.name}: no image")
    if spec.memory_bytes is not None and spec.memory_bytes < MIN_MEMORY_BYTES:
        raise InvalidSpecError(
            f"container {spec.name}: memory limit {spec.memory_bytes} bytes is under the "
            f"minimum of {MIN_MEMORY_BYTES} (6 MiB)"
        )
    if spec.nano_cpus is not None and spec.nano_cpus <= 0:
        raise InvalidSpecError(f"container {spec.name}: CPU limit must be positive")
    if spec.cpu_shares is not None and spec.cpu_shares < 2:
        raise InvalidSpecError(f"container {spec.name}: CPU shares must be at least 2")
    if spec.sandbox is not None and (
        spec.network_aliases or spec.ip_address or spec.extra_networks
    ):
        raise InvalidSpecError(
            f"container {spec.name}: joins a sandbox, so its network is the sandbox's"
        )
    if (spec.ip_address is not None or spec.network_aliases) and spec.network is None:
        raise InvalidSpecError(f"container {spec.name}: an address or alias needs a network")
    _check_attachments(f"container {spec.name}", spec.extra_networks)
    if spec.ip_address is not None:
        _check_ip(f"container {spec.name}", spec.ip_address)
    targets: set[str] = set()
    for mount in spec.mounts:
        if not mount.target.startswith("/"):
            raise InvalidSpecError(
                f"container {spec.name}: mount target {mount.target!r} is not an absolute path"
            )
        if mount.target in targets:
            raise InvalidSpecError(f"container {spec.name}: two mounts at {mount.target}")
        targets.add(mount.target)
        if isinstance(mount, BindMount) and not mount.source.startswith("/"):
            raise InvalidSpecError(
                f"container {spec.name}: bind source {mount.source!r} is not an absolute path"
            )
        if isinstance(mount, VolumeMount):
            _check_name("volume", mount.volume)
    if spec.working_dir is not None and not spec.working_dir.startswith("/"):
        raise InvalidSpecError(
            f"container {spec.name}: working directory {spec.working_dir!r} is not absolute"
        )
    if spec.sandbox is None and (spec.share_pid or spec.pid_of is not None):
        raise InvalidSpecError(f"container {spec.name}: sharing a PID namespace needs a sandbox")
    if spec.share_pid and spec.pid_of is not None:
        raise InvalidSpecError(
            f"container {spec.name}: joins the sandbox's PID namespace (share_pid) or another "
            "container's (pid_of), not both"
        )
    if spec.stdin_once and not spec.stdin:
        raise InvalidSpecError(f"container {spec.name}: stdin_once needs stdin")


def split_log_timestamp(line: bytes) -> tuple[datetime, bytes]:
    """Split a `logs(timestamps=True)` line into its time and the rest.

    Engines write RFC 3339 with up to nine fractional digits
    (`2026-01-01T10:00:00.123456789Z hello`); Python keeps six.
    """
    stamp, _, rest = line.partition(b" ")
    text = stamp.decode("ascii").rstrip("Z")
    main, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(main).replace(tzinfo=UTC)
    if fraction:
        micros = int((fraction + "000000")[:6])
        moment = moment.replace(microsecond=micros)
    return moment, rest


async def run_exec(
    runtime: ContainerRuntime,
    container_id: str,
    cmd: Sequence[str],
    *,
    stdin_data: bytes | None = None,
) -> ExecResult:
    """Run `cmd` in the container to completion and collect its output (exec probes, hooks).

    Bound the time with `asyncio.timeout` around the call: cancelling closes the session.
    """
    session = await runtime.exec(container_id, cmd, stdin=stdin_data is not None)
    try:
        if stdin_data is not None:
            await session.write(stdin_data)
            await session.close_stdin()
        out: list[bytes] = []
        err: list[bytes] = []
        while (chunk := await session.read()) is not None:
            (out if chunk.stream == "stdout" else err).append(chunk.data)
        code = await session.exit_code()
        return ExecResult(code, b"".join(out), b"".join(err))
    finally:
        await session.close()
