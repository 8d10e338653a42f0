"""The in-memory container runtime. NOTHING REALLY RUNS: no process, no image, no network.

It exists for the node agent's unit tests and for scale benchmarks (thousands of pods in one
process), and it passes the same contract suite as the Docker runtime
(`tests/unit/runtime/contract.py`). `recon serve --runtime memory` selects it; it logs a
warning when constructed so nobody mistakes it for a working node.

What it models, so tests can drive the agent through real situations:
- images: a local set and a "registry" (by default every `fake/...` reference can be
  pulled); `pull_counts` tells whether a pull happened; `fail_pulls` makes pulls fail;
- containers "run" a program chosen by image (`fake/exit:3` exits 3 at once; see
  `fake_process.builtin_program`) or registered with `register_program` (a callback), until
  it returns or they are stopped: SIGTERM reaches the program, SIGKILL follows after the
  timeout on the injected clock (a `ManualClock` makes grace periods instantaneous);
- logs: what programs print, and what a test feeds with `feed_logs`;
- pods: a sandbox is a network namespace its containers share (`listen` / `get` in
  `fake/script`), published ports get host ports (read back with `host_http_get`);
- volumes, tmpfs mounts and memory dirs hold files the programs read and write;
- `simulate_engine_restart` kills everything and breaks the event streams, like dockerd.

Everything is O(1) per operation except listing, so 10,000 containers are cheap. Listing
scans every container, except by pod uid (what the node agent asks on every pod sync):
containers are indexed by their pod-uid label, so that list costs O(the pod's containers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import logging
import os
import tempfile
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from reconciler.clock import Clock, SystemClock
from reconciler.runtime._memory_parts import (
    Container,
    FakeHostPorts,
    FakeImages,
    LogLine,
    MemoryAttachSession,
    MemoryEventStream,
    MemoryExecSession,
    Network,
    Stream,
    Volume,
    normalize_ref,
)
from reconciler.runtime.base import (
    HOST_NETWORK,
    MANAGED_LABEL,
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
    EngineInfo,
    EventKind,
    ImageInfo,
    MountInfo,
    NetworkAttachment,
    NetworkConfig,
    PullPolicy,
    RegistryAuth,
    ResourceUsage,
    RuntimeEvent,
    SandboxSpec,
    TmpfsMount,
    VolumeMount,
    managed_labels,
    sandbox_container_name,
    validate_container_spec,
    validate_sandbox_spec,
)
from reconciler.runtime.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    ContainerStartError,
    InvalidSpecError,
    NetworkNotFoundError,
    ResourceInUseError,
    RuntimeUnavailableError,
    VolumeNotFoundError,
)
from reconciler.runtime.fake_process import (
    SIGKILL_EXIT,
    FakeFiles,
    FakeNetns,
    FakeOOMKilled,
    FakeProcess,
    FakeProgram,
    FakeTerminated,
    Flag,
    builtin_program,
    default_exec_program,
)
from reconciler.runtime.memdir import MemoryDirs, filesystem_type

__all__ = [
    "MemoryAttachSession",
    "MemoryEventStream",
    "MemoryExecSession",
    "MemoryRuntime",
    "normalize_ref",
]

logger = logging.getLogger(__name__)


class MemoryRuntime:
    """`ContainerRuntime` in memory, for tests and benchmarks only (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        images: Sequence[str] = ("fake/pause",),
        pullable: Sequence[str] = (),
        memory_dir_root: Path | None = None,
    ) -> None:
        logger.warning(
            "MemoryRuntime: NOTHING REALLY RUNS. Containers are simulated in memory, for "
            "tests and benchmarks; use the docker runtime to run pods"
        )
        self.clock: Clock = clock or SystemClock()
        self.images = FakeImages(pullable)
        self.pull_counts = self.images.pull_counts
        """reference -> how many pulls were attempted."""
        self.fail_pulls = self.images.fail_pulls
        """reference -> message: pulls of it fail with ImagePullError."""
        self._programs: dict[str, FakeProgram] = {}
        self._exec_program: FakeProgram = default_exec_program
        self._containers: dict[str, Container] = {}
        self._usage: dict[str, ResourceUsage] = {}
        self._by_name: dict[str, str] = {}
        self._by_pod: dict[str, dict[str, Container]] = {}  # pod uid -> id -> container
        self._networks: dict[str, Network] = {}
        self._host_netns = FakeNetns()
        self._volumes: dict[str, Volume] = {}
        self._host_ports = FakeHostPorts()
        self._ids = itertools.count(1)
        self._subscribers: set[MemoryEventStream] = set()
        if memory_dir_root is None:
            shm = Path("/dev/shm")
            parent = shm if shm.is_dir() and filesystem_type(shm) == "tmpfs" else None
            memory_dir_root = Path(tempfile.mkdtemp(prefix="recon-memory-runtime-", dir=parent))
            self._owns_memory_root = True
        else:
            self._owns_memory_root = False
        self._memory_dirs = MemoryDirs(memory_dir_root, require_tmpfs=False)
        for ref in images:
            self.add_local_image(ref)

    @property
    def name(self) -> str:
        return "memory"

    # -- scripting (tests) ---------------------------------------------------------------

    def add_local_image(self, ref: str) -> None:
        self.images.add_local(ref)

    def add_registry_image(self, ref: str) -> None:
        self.images.add_registry(ref)

    def register_program(self, image: str, program: FakeProgram) -> None:
        """Containers of `image` (a reference, or a repository for every tag) run `program`."""
        self._programs[image] = program

    def set_exec_program(self, program: FakeProgram) -> None:
        """Run `program` for every exec (its `argv` is the command) instead of the default."""
        self._exec_program = program

    def feed_logs(self, container_id: str, data: bytes, stream: Stream = "stdout") -> None:
        self._append_log(self._get(container_id), stream, data)

    def host_http_get(self, host_port: int, host_ip: str = "127.0.0.1") -> bytes:
        """What an HTTP GET to a published host port returns; ConnectionRefusedError if no
        running sandbox publishes it or nothing listens behind it."""
        owner = self._host_ports.owner(host_ip, host_port, "tcp")
        container = self._containers.get(owner or "")
        if container is not None and container.status is ContainerStatus.RUNNING:
            for port in container.ports:
                if port.host_port == host_port and container.netns is not None:
                    body = container.netns.serve(port.container_port)
                    if body is not None:
                        return body
        raise ConnectionRefusedError(f"nothing answers on {host_ip}:{host_port}")

    async def simulate_engine_restart(self) -> None:
        """Like a dockerd restart: every running container dies (137), event streams break."""
        for container in list(self._containers.values()):
            if container.status is ContainerStatus.RUNNING:
                await self._kill(container)
        for subscriber in list(self._subscribers):
            subscriber.queue.put_nowait(
                RuntimeUnavailableError("the in-memory engine restarted; re-list containers")
            )
        self._subscribers.clear()

    # -- internals -----------------------------------------------------------------------

    def _find(self, container_id: str) -> Container | None:
        """By id or by name, as the engine finds containers."""
        container = self._containers.get(container_id)
        if container is None and container_id in self._by_name:
            container = self._containers[self._by_name[container_id]]
        return container

    def _get(self, container_id: str) -> Container:
        container = self._find(container_id)
        if container is None:
            raise ContainerNotFoundError(f"no such container: {container_id}")
        return container

    def _emit(self, kind: EventKind, container: Container, exit_code: int | None = None) -> None:
        if not self._subscribers:
            return
        event = RuntimeEvent(
            kind=kind,
            container_id=container.id,
            name=container.name,
            labels=MappingProxyType(container.labels),
            time=self.clock.now(),
            exit_code=exit_code,
        )
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(event)

    def _append_log(self, container: Container, stream: Stream, data: bytes) -> None:
        now = self.clock.now()
        for line in data.splitlines(keepends=True):
            container.logs.append(LogLine(now, stream, line))
        container.notify()

    def _new_id(self) -> ContainerId:
        return ContainerId(f"{next(self._ids):012x}{os.urandom(26).hex()}")

    def _program_for(self, image: str) -> FakeProgram:
        key = normalize_ref(image)
        for candidate in (image, key, key.rpartition(":")[0]):
            if candidate in self._programs:
                return self._programs[candidate]
        return builtin_program(key)

    def _register(self, container: Container) -> None:
        if container.name in self._by_name:
            raise ConflictError(
                f"create container {container.name}: the name is already in use by "
                f"{self._by_name[container.name]} (remove the old one or choose another name)"
            )
        self._containers[container.id] = container
        self._by_name[container.name] = container.id
        pod_uid = container.labels.get(POD_UID_LABEL)
        if pod_uid is not None:
            self._by_pod.setdefault(pod_uid, {})[container.id] = container
        self._emit(EventKind.CREATED, container)

    def _resolve(self, host: str, networks: Iterable[str]) -> FakeNetns | None:
        """Names and addresses as a Docker network's DNS answers them: a running container
        on one of `networks`, by its name, an alias there, or its address there."""
        for other in self._containers.values():
            if other.status is not ContainerStatus.RUNNING or other.netns is None:
                continue
            names = _names_by_network(other)
            if any(host in names.get(network, ()) for network in networks):
                return other.netns
        return None

    # -- images --------------------------------------------------------------------------

    async def engine_info(self) -> EngineInfo:
        # The simulated node has this host's CPUs and memory, so pods' requests fit as
        # they would on a real node here.
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return EngineInfo("memory", "0", "memory", os.cpu_count() or 1, memory, "linux", "none")

    async def inspect_image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    async def ensure_image(
        self, ref: str, policy: PullPolicy, auth: RegistryAuth | None = None
    ) -> ImageInfo:
        return await self.images.ensure(ref, policy)

    # -- containers ----------------------------------------------------------------------

    async def run_sandbox(self, spec: SandboxSpec) -> ContainerState:
        validate_sandbox_spec(spec)
        if spec.network != HOST_NETWORK and spec.network not in self._networks:
            raise NetworkNotFoundError(f"create container: network {spec.network} not found")
        self._check_attachments(spec.name, spec.extra_networks)
        self.images.require(spec.image)
        labels = managed_labels(
            spec.labels,
            **{
                ROLE_LABEL: "sandbox",
                POD_UID_LABEL: spec.pod_uid,
                POD_NAME_LABEL: spec.name,
                POD_NAMESPACE_LABEL: spec.namespace,
            },
        )
        name = sandbox_container_name(spec)
        container = Container(
            id=self._new_id(),
            name=name,
            image=spec.image,
            labels=labels,
            spec=ContainerSpec(name=name, image=spec.image),
            sandbox_spec=spec,
            created_at=self.clock.now(),
        )
        self._register(container)
        try:
            await self._start(container)
        except BaseException:
            await self.remove_container(container.id)
            raise
        return self._state(container)

    async def create_container(self, spec: ContainerSpec) -> ContainerId:
        validate_container_spec(spec)
        self.images.require(spec.image)
        for mount in spec.mounts:
            if isinstance(mount, VolumeMount) and mount.volume not in self._volumes:
                raise VolumeNotFoundError(
                    f"container {spec.name} mounts volume {mount.volume}, which does not "
                    "exist: ensure_volume it first"
                )
        if spec.sandbox is not None:
            sandbox = self._get(spec.sandbox)
            if spec.pid_of is not None and self._find(spec.pid_of) is None:
                raise InvalidSpecError(
                    f"create container {spec.name}: No such container: {spec.pid_of}"
                )
        elif spec.network is not None and spec.network not in self._networks:
            raise NetworkNotFoundError(f"create container {spec.name}: network not found")
        self._check_attachments(spec.name, spec.extra_networks)
        if spec.ip_address is not None and spec.network is not None:
            self._check_attachments(
                spec.name, (NetworkAttachment(spec.network, ip_address=spec.ip_address),)
            )
        ours = {ROLE_LABEL: "container"}
        if spec.sandbox is not None:
            ours[SANDBOX_ID_LABEL] = sandbox.id
        container = Container(
            id=self._new_id(),
            name=spec.name,
            image=spec.image,
            labels=managed_labels(spec.labels, **ours),
            spec=spec,
            sandbox_spec=None,
            created_at=self.clock.now(),
        )
        self._register(container)
        return container.id

    async def start_container(self, container_id: str) -> None:
        container = self._get(container_id)
        if container.status is ContainerStatus.RUNNING:
            return
        await self._start(container)

    async def _start(self, container: Container) -> None:
        spec = container.spec
        assert spec is not None
        on_networks_of = container  # whose networks its process resolves names on
        if container.sandbox_spec is not None and container.sandbox_spec.network == HOST_NETWORK:
            container.netns = self._host_netns  # every host-network pod shares the host's
        elif container.sandbox_spec is not None:
            network = container.sandbox_spec.network
            container.ports = self._host_ports.publish(
                container.id, container.name, container.sandbox_spec.ports
            )
            record = self._networks[network]
            container.ip_address = f"10.88.{record.next_ip // 250}.{record.next_ip % 250 + 2}"
            record.next_ip += 1
            container.netns = FakeNetns()
        elif spec.sandbox is not None:
            sandbox = self._get(spec.sandbox)
            if sandbox.status is not ContainerStatus.RUNNING:
                raise ContainerStartError(
                    f"start container {container.name}: cannot join network of a non running "
                    f"container: {sandbox.id}"
                )
            container.netns = sandbox.netns
            on_networks_of = sandbox
            target = self._find(spec.pid_of) if spec.pid_of is not None else None
            if spec.pid_of is not None and (
                target is None or target.status is not ContainerStatus.RUNNING
            ):
                raise ContainerStartError(
                    f"start container {container.name}: container {spec.pid_of} is not running"
                )
        else:
            container.netns = FakeNetns()
        container.tmpfs = {m.target: {} for m in spec.mounts if isinstance(m, TmpfsMount)}
        files = FakeFiles(
            spec,
            container.rootfs,
            {name: volume.files for name, volume in self._volumes.items()},
            container.tmpfs,
        )
        argv = (*(spec.command or ()), *(spec.args or ()))
        links = _ProcessLinks(self, container, on_networks_of)
        container.stdin = asyncio.Queue() if spec.stdin else None
        process = FakeProcess(
            container_id=container.id,
            spec=spec,
            clock=self.clock,
            files=files,
            netns=container.netns,
            resolve=links.resolve,
            sink=links.sink,
            argv=argv,
            stdin=container.stdin,
        )
        container.status = ContainerStatus.RUNNING
        container.exit_code = None
        container.oom_killed = False
        container.finished_at = None
        container.started_at = self.clock.now()
        container.exited = Flag()
        container.killing = False
        container.process = process
        task = asyncio.create_task(self._run(container, process))
        container.task = task
        task.add_done_callback(links.reap)
        self._emit(EventKind.STARTED, container)

    async def _run(self, container: Container, process: FakeProcess) -> None:
        program = self._program_for(container.image)
        oom = False
        try:
            code = await program(process)
        except FakeTerminated as exc:
            code = exc.code
        except FakeOOMKilled:
            code, oom = SIGKILL_EXIT, True
        except asyncio.CancelledError:
            if not container.killing:
                self._exited(container, SIGKILL_EXIT, oom=False)
                raise
            code = SIGKILL_EXIT
        except Exception as exc:
            logger.exception("fake program of %s failed", container.name)
            self._append_log(container, "stderr", f"fake program crashed: {exc!r}\n".encode())
            code = 255
        self._exited(container, code, oom=oom)

    def _exited(self, container: Container, code: int, *, oom: bool) -> None:
        if container.status is not ContainerStatus.RUNNING:
            return
        container.status = ContainerStatus.EXITED
        container.exit_code = code
        container.oom_killed = oom
        container.finished_at = self.clock.now()
        container.process = None
        self._host_ports.release(container.ports)
        if container.netns is not None and container.sandbox_spec is None:
            for port, (owner, _) in list(container.netns.listeners.items()):
                if owner == container.id:
                    del container.netns.listeners[port]
        container.tmpfs = {}
        container.stdin = None
        container.detach_all()
        if oom:
            self._emit(EventKind.OOM, container)
        self._emit(EventKind.DIED, container, code)
        container.exited.set()
        container.notify()

    async def _kill(self, container: Container) -> None:
        if container.status is not ContainerStatus.RUNNING or container.task is None:
            return
        container.killing = True
        container.task.cancel()
        await container.exited.wait()

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        container = self._get(container_id)
        if container.status is not ContainerStatus.RUNNING:
            return
        if container.process is not None:
            container.process.deliver_sigterm()
        exited = asyncio.ensure_future(container.exited.wait())
        grace = asyncio.ensure_future(self.clock.sleep(max(0.0, timeout_s)))
        try:
            await asyncio.wait({exited, grace}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            grace.cancel()
        await self._kill(container)

    async def remove_container(self, container_id: str) -> None:
        try:
            container = self._get(container_id)
        except ContainerNotFoundError:
            return
        await self._kill(container)
        if self._containers.pop(container.id, None) is None:
            return
        self._usage.pop(container.id, None)
        self._by_name.pop(container.name, None)
        pod_uid = container.labels.get(POD_UID_LABEL, "")
        siblings = self._by_pod.get(pod_uid)
        if siblings is not None:
            siblings.pop(container.id, None)
            if not siblings:
                del self._by_pod[pod_uid]
        container.notify()
        self._emit(EventKind.REMOVED, container)

    async def list_containers(
        self, label_selector: Mapping[str, str] | None = None
    ) -> list[ContainerState]:
        wanted = dict(label_selector or {})
        wanted[MANAGED_LABEL] = "true"
        items = wanted.items()
        pod_uid = wanted.get(POD_UID_LABEL)
        # Labels never change after creation, so the index holds exactly the containers
        # whose pod-uid label has that value, in creation order, as the scan finds them.
        candidates = (
            self._containers.values() if pod_uid is None else self._by_pod.get(pod_uid, {}).values()
        )
        return [self._state(c) for c in candidates if all(c.labels.get(k) == v for k, v in items)]

    def _state(self, container: Container) -> ContainerState:
        spec = container.spec
        mounts: list[MountInfo] = []
        for mount in spec.mounts if spec is not None else ():
            if isinstance(mount, BindMount):
                mounts.append(MountInfo("bind", mount.source, mount.target, mount.read_only))
            elif isinstance(mount, VolumeMount):
                mounts.append(MountInfo("volume", mount.volume, mount.target, mount.read_only))
            else:
                mounts.append(MountInfo("tmpfs", "", mount.target, False))
        return ContainerState(
            id=container.id,
            name=container.name,
            image=container.image,
            # A read-only view, not a copy: labels never change after creation, and the
            # node agent keeps a state of each container (0.15 MB of copies for 333 pods).
            labels=MappingProxyType(container.labels),
            status=container.status,
            exit_code=container.exit_code,
            created_at=container.created_at,
            started_at=container.started_at,
            finished_at=container.finished_at,
            oom_killed=container.oom_killed,
            image_id=image.id if (image := self.images.get(container.image)) else "",
            ip_address=container.ip_address,
            ports=container.ports if container.status is ContainerStatus.RUNNING else (),
            memory_bytes=spec.memory_bytes if spec is not None else None,
            nano_cpus=spec.nano_cpus if spec is not None else None,
            cpu_shares=spec.cpu_shares if spec is not None else None,
            mounts=tuple(mounts),
            pid_of=_pid_of(spec),
        )

    async def inspect(self, container_id: str) -> ContainerState:
        return self._state(self._get(container_id))

    async def update_resources(
        self,
        container_id: str,
        *,
        nano_cpus: int | None,
        memory_bytes: int | None,
        cpu_shares: int | None,
    ) -> None:
        container = self._get(container_id)
        spec = container.spec
        assert spec is not None
        container.spec = dataclasses.replace(
            spec,
            nano_cpus=spec.nano_cpus if nano_cpus is None else nano_cpus,
            memory_bytes=spec.memory_bytes if memory_bytes is None else memory_bytes,
            cpu_shares=spec.cpu_shares if cpu_shares is None else cpu_shares,
        )

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: datetime | None = None,
        follow: bool = False,
        timestamps: bool = False,
    ) -> AsyncGenerator[bytes, None]:
        container = self._get(container_id)

        def render(line: LogLine) -> bytes:
            if not timestamps:
                return line.data
            stamp = line.time.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z "
            return stamp.encode() + line.data

        seen = len(container.logs)
        lines = [line for line in container.logs[:seen] if since is None or line.time >= since]
        if tail is not None:
            lines = lines[len(lines) - tail :] if tail > 0 else []
        for line in lines:
            yield render(line)
        if not follow:
            return
        while True:
            if seen < len(container.logs):
                for line in container.logs[seen:]:
                    if since is None or line.time >= since:
                        yield render(line)
                seen = len(container.logs)
                continue
            if container.status is not ContainerStatus.RUNNING:
                return
            if container.id not in self._containers:
                return
            await container.changed.wait()

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
    ) -> MemoryExecSession:
        container = self._get(container_id)
        if container.status is not ContainerStatus.RUNNING or container.process is None:
            raise ContainerNotRunningError(
                f"exec in container {container.name}: container {container.id} is not running"
            )
        running = container.process
        session = MemoryExecSession(tty, asyncio.Queue() if stdin else None)
        process = FakeProcess(
            container_id=container.id,
            spec=running.spec,
            clock=self.clock,
            files=running.files,
            netns=running.netns,
            resolve=running.resolve,
            sink=session.sink,
            argv=list(cmd),
            stdin=session.stdin,
        )
        session.start(self._exec_program, process)
        return session

    async def attach(self, container_id: str, *, stdin: bool = False) -> MemoryAttachSession:
        container = self._get(container_id)
        spec = container.spec
        if container.status is not ContainerStatus.RUNNING or spec is None:
            raise ContainerNotRunningError(
                f"attach to container {container.name}: container {container.id} is not running"
            )
        session = MemoryAttachSession(
            container,
            stdin=container.stdin if stdin else None,
            stdin_once=spec.stdin_once,
            tty=spec.tty,
        )
        if container.attached is None:
            container.attached = []
        container.attached.append(session)
        return session

    def set_usage(self, container_id: str, usage: ResourceUsage) -> None:
        """What `usage` reports for a running container from now on (tests; the default
        is none used at all)."""
        self._get(container_id)
        self._usage[container_id] = usage

    async def usage(self, container_id: str) -> ResourceUsage | None:
        container = self._containers.get(container_id)
        if container is None or container.status is not ContainerStatus.RUNNING:
            return None
        return self._usage.get(container_id, ResourceUsage(0, 0))

    async def network_namespace(self, container_id: str) -> str:
        self._get(container_id)
        raise ContainerRuntimeError(
            f"container {container_id} has no kernel network namespace: the in-memory runtime "
            "cannot port-forward (run recon serve --runtime docker)"
        )

    async def wait(self, container_id: str) -> int:
        container = self._get(container_id)
        if container.status is ContainerStatus.RUNNING:
            await container.exited.wait()
        return container.exit_code if container.exit_code is not None else 0

    # -- networks, volumes, memory dirs ------------------------------------------------------

    async def ensure_network(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        config: NetworkConfig | None = None,
    ) -> None:
        if name not in self._networks:
            self._networks[name] = Network(managed_labels(labels), config=config)

    def _check_attachments(self, name: str, attachments: Sequence[NetworkAttachment]) -> None:
        """What the engine refuses: a missing network, a fixed address outside its subnet or
        already held by another container."""
        for attachment in attachments:
            network = self._networks.get(attachment.network)
            if network is None:
                raise NetworkNotFoundError(
                    f"create container {name}: network {attachment.network} not found"
                )
            ip = attachment.ip_address
            if ip is None:
                continue
            if network.config is None or ipaddress.IPv4Address(ip) not in ipaddress.IPv4Network(
                network.config.subnet
            ):
                raise InvalidSpecError(
                    f"create container {name}: address {ip} is not in the subnet of network "
                    f"{attachment.network}"
                )
            for other in self._containers.values():
                if _fixed_address(other, attachment.network) == ip:
                    raise InvalidSpecError(
                        f"create container {name}: address {ip} is already in use on network "
                        f"{attachment.network}"
                    )

    async def remove_network(self, name: str) -> None:
        if name not in self._networks:
            return
        for container in self._containers.values():
            spec = container.sandbox_spec
            if (
                spec is not None
                and spec.network == name
                and container.status is ContainerStatus.RUNNING
            ):
                raise ResourceInUseError(
                    f"network {name}: error while removing network: network {name} has "
                    f"active endpoints ({container.name})"
                )
        del self._networks[name]

    async def list_networks(self, label_selector: Mapping[str, str] | None = None) -> list[str]:
        wanted = (label_selector or {}).items()
        return sorted(
            name
            for name, record in self._networks.items()
            if all(record.labels.get(k) == v for k, v in wanted)
        )

    async def ensure_volume(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        if name not in self._volumes:
            self._volumes[name] = Volume(managed_labels(labels))

    async def remove_volume(self, name: str) -> None:
        if name not in self._volumes:
            return
        for container in self._containers.values():
            mounts = container.spec.mounts if container.spec is not None else ()
            if any(isinstance(m, VolumeMount) and m.volume == name for m in mounts):
                raise ResourceInUseError(
                    f"volume {name}: remove {name}: volume is in use - [{container.id}]"
                )
        del self._volumes[name]

    async def list_volumes(self, label_selector: Mapping[str, str] | None = None) -> list[str]:
        wanted = (label_selector or {}).items()
        return sorted(
            name
            for name, record in self._volumes.items()
            if all(record.labels.get(k) == v for k, v in wanted)
        )

    async def ensure_memory_dir(self, pod_uid: str, name: str) -> str:
        return str(self._memory_dirs.ensure(pod_uid, name))

    async def remove_memory_dirs(self, pod_uid: str) -> None:
        self._memory_dirs.remove(pod_uid)

    async def list_memory_dir_pods(self) -> set[str]:
        return self._memory_dirs.pods()

    # -- events and shutdown -------------------------------------------------------------

    async def events(self) -> MemoryEventStream:
        stream = MemoryEventStream(self._subscribers.discard)
        self._subscribers.add(stream)
        return stream

    async def close(self) -> None:
        for container in list(self._containers.values()):
            if container.task is not None and not container.task.done():
                container.killing = True
                container.task.cancel()
        for subscriber in list(self._subscribers):
            await subscriber.aclose()
        if self._owns_memory_root:
            self._memory_dirs.remove_root()


class _ProcessLinks:
    """What a started container's process and task call back into the runtime for: its
    logs, the names it resolves, the end of its task. One small object per start rather
    than three closures and a set of network names (≈0.8 KB per container, 0.5 MB for a
    benchmark's 333 pods); the networks are read from the specs when a name is resolved,
    which is rare, and are the same then as at the start (specs never change)."""

    __slots__ = ("_container", "_on_networks_of", "_runtime")

    def __init__(
        self, runtime: MemoryRuntime, container: Container, on_networks_of: Container
    ) -> None:
        self._runtime = runtime
        self._container = container
        self._on_networks_of = on_networks_of

    def sink(self, stream: Stream, data: bytes) -> None:
        self._runtime._append_log(self._container, stream, data)
        self._container.output(stream, data)

    def resolve(self, host: str) -> FakeNetns | None:
        return self._runtime._resolve(host, _names_by_network(self._on_networks_of))

    def reap(self, done: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never runs `_run`'s handlers.
        if self._container.task is done:
            self._runtime._exited(self._container, SIGKILL_EXIT, oom=False)


def _pid_of(spec: ContainerSpec | None) -> str | None:
    if spec is None:
        return None
    return spec.sandbox if spec.share_pid else spec.pid_of


_NO_SANDBOX = SandboxSpec(pod_uid="", name="", namespace="", image="", network="")


def _fixed_address(container: Container, network: str) -> str | None:
    spec = container.spec
    if spec is None:
        return None
    if spec.network == network and spec.ip_address is not None:
        return spec.ip_address
    attached = [*spec.extra_networks, *(container.sandbox_spec or _NO_SANDBOX).extra_networks]
    for attachment in attached:
        if attachment.network == network:
            return attachment.ip_address
    return None


def _names_by_network(container: Container) -> dict[str, set[str]]:
    """Network -> what finds this container there (name, aliases, addresses)."""
    spec, sandbox = container.spec, container.sandbox_spec
    found: dict[str, set[str]] = {}
    if sandbox is not None:
        found[sandbox.network] = {container.name, *sandbox.dns_aliases}
        if container.ip_address:
            found[sandbox.network].add(container.ip_address)
        attachments: Sequence[NetworkAttachment] = sandbox.extra_networks
    elif spec is not None and spec.sandbox is None and spec.network is not None:
        found[spec.network] = {container.name, *spec.network_aliases}
        if spec.ip_address:
            found[spec.network].add(spec.ip_address)
        attachments = spec.extra_networks
    else:
        attachments = spec.extra_networks if spec is not None else ()
    for attachment in attachments:
        names = {container.name, *attachment.aliases}
        if attachment.ip_address:
            names.add(attachment.ip_address)
        found[attachment.network] = names
    return found
