"""The real container runtime: pods as Docker containers, through the docker SDK.

Where it sits: the node agent calls it (`node -> runtime`); it calls dockerd. Every SDK call
blocks, so each runs in a thread (`_threads.py`), never on the loop: short calls in a private
pool, calls that last as long as a container (events, `logs -f`, exec output, `wait`) in a
thread of their own. SDK errors become `errors.py`'s in `_docker_errors.py`; JSON becomes
values in `_docker_convert.py`.

A pod is a sandbox plus containers:
- the sandbox is one container from the pause image, run with the image's own entrypoint,
  on the pod's user-defined bridge network (so other pods find it by its DNS aliases), with
  its ports published on 127.0.0.1 only and a shareable IPC namespace;
- each app container joins it (`network_mode=container:<sandbox>`, and IPC / PID when asked),
  so the containers of a pod reach each other on localhost.

Secret and memory-backed volumes are host directories on tmpfs (`memdir.py` explains why),
bound into the containers. Everything created is labelled `recon.dev/managed=true` plus the
caller's labels; listing and cleanup go by label. The low-level `APIClient` is used (not the
object API, which re-inspects after every call) and is typed `Any`: the engine's JSON is
parsed at this edge into frozen dataclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped, unused-ignore]
import docker.errors  # type: ignore[import-untyped, unused-ignore]
import docker.types  # type: ignore[import-untyped, unused-ignore]
import docker.utils  # type: ignore[import-untyped, unused-ignore]

from reconciler.runtime._docker_attach import DockerAttachSession, open_attach
from reconciler.runtime._docker_convert import (
    CreateArgs,
    container_create_args,
    event_from_raw,
    image_info,
    sandbox_create_args,
    state_from_inspect,
    update_body,
)
from reconciler.runtime._docker_errors import Op, pull_failure, translate
from reconciler.runtime._docker_exec import DockerExecSession, open_exec
from reconciler.runtime._threads import BlockingCalls, ThreadStream, run_in_own_thread
from reconciler.runtime.base import (
    MANAGED_LABEL,
    ContainerId,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    ImageInfo,
    NetworkConfig,
    PullPolicy,
    RegistryAuth,
    ResourceUsage,
    RuntimeEvent,
    SandboxSpec,
    VolumeMount,
    managed_labels,
    validate_container_spec,
    validate_sandbox_spec,
)
from reconciler.runtime.cgroup_usage import read_usage
from reconciler.runtime.errors import (
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    ImageNeverPullError,
    RuntimeUnavailableError,
    VolumeNotFoundError,
)
from reconciler.runtime.memdir import DEFAULT_MEMORY_DIR_ROOT, MemoryDirs

__all__ = ["DockerEventStream", "DockerRuntime"]

_EVENT_ACTIONS = ["create", "start", "die", "oom", "destroy"]


def _close_stream(stream: Any) -> None:
    stream.close()  # the SDK's CancellableStream: shuts the socket, unblocking its reader


def _label_filters(selector: Mapping[str, str] | None) -> dict[str, list[str]]:
    wanted = {MANAGED_LABEL: "true", **(selector or {})}
    return {"label": [f"{key}={value}" for key, value in wanted.items()]}


class DockerEventStream:
    """Managed containers' events, subscribed before `DockerRuntime.events()` returns."""

    def __init__(self, stream: ThreadStream[Mapping[str, Any]]) -> None:
        self._stream = stream

    def __aiter__(self) -> DockerEventStream:
        return self

    async def __anext__(self) -> RuntimeEvent:
        while True:
            try:
                raw = await self._stream.__anext__()
            except StopAsyncIteration:
                if self._stream.closed_by_us:
                    raise
                raise RuntimeUnavailableError(
                    "the Docker event stream ended: the engine restarted or went away; "
                    "subscribe again and re-list the containers"
                ) from None
            except Exception as exc:
                if self._stream.closed_by_us:
                    raise StopAsyncIteration from None
                raise translate(exc, Op.CONTAINER, "events") from exc
            event = event_from_raw(raw)
            if event is not None:
                return event

    async def aclose(self) -> None:
        await self._stream.aclose()


class DockerRuntime:
    """`ContainerRuntime` on a Docker engine. Build it with `await DockerRuntime.connect()`."""

    def __init__(
        self,
        api: Any,
        *,
        memory_dirs: MemoryDirs,
        max_workers: int = 32,
    ) -> None:
        self._api = api
        self._calls = BlockingCalls(max_workers, "recon-docker")
        self._memory_dirs = memory_dirs
        self._closed = False
        self._network_lock = threading.Lock()
        self._pids: dict[str, int] = {}  # container id -> main PID, for `usage`

    @classmethod
    async def connect(
        cls,
        *,
        base_url: str | None = None,
        memory_dir_root: Path = DEFAULT_MEMORY_DIR_ROOT,
        timeout_s: int = 60,
        max_workers: int = 32,
    ) -> DockerRuntime:
        """Connect to the engine at `base_url` (default: `DOCKER_HOST` or the local socket),
        negotiating the API version; raise RuntimeUnavailableError when it does not answer."""

        def make() -> Any:
            options: dict[str, Any] = dict(docker.utils.kwargs_from_env())
            if base_url is not None:
                options["base_url"] = base_url
            api = docker.APIClient(
                version="auto",
                timeout=timeout_s,
                max_pool_size=max_workers * 2,
                **options,
            )
            api.ping()
            return api

        try:
            api = await asyncio.to_thread(make)
        except Exception as exc:
            raise translate(exc, Op.CONTAINER, "(connect)") from exc
        return cls(api, memory_dirs=MemoryDirs(memory_dir_root), max_workers=max_workers)

    @property
    def name(self) -> str:
        return "docker"

    async def _run(self, op: Op, subject: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._calls.run(fn, *args, **kwargs)
        except Exception as exc:
            raise translate(exc, op, subject) from exc

    # -- engine and images -----------------------------------------------------------------

    async def engine_info(self) -> EngineInfo:
        info = await self._run(Op.CONTAINER, "(info)", self._api.info)
        return EngineInfo(
            name="docker",
            version=str(info.get("ServerVersion", "")),
            engine_id=str(info.get("ID", "")),
            cpus=int(info.get("NCPU") or 0),
            memory_bytes=int(info.get("MemTotal") or 0),
            os=str(info.get("OSType", "")),
            kernel=str(info.get("KernelVersion", "")),
            root_dir=str(info.get("DockerRootDir") or ""),
        )

    async def inspect_image(self, ref: str) -> ImageInfo | None:
        try:
            raw = await self._run(Op.IMAGE, ref, self._api.inspect_image, ref)
        except ContainerRuntimeError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        return image_info(raw, ref)

    def _pull(self, ref: str, auth: RegistryAuth | None) -> None:
        repository, tag = docker.utils.parse_repository_tag(ref)
        auth_config: dict[str, str] | None = None
        if auth is not None:
            auth_config = {"username": auth.username, "password": auth.password}
            if auth.server:
                auth_config["serveraddress"] = auth.server
        try:
            progress = self._api.pull(
                repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth_config
            )
            for line in progress:
                if isinstance(line, dict) and line.get("error"):
                    raise pull_failure(ref, str(line["error"]))
        except docker.errors.APIError as exc:
            raise pull_failure(ref, str(exc.explanation or exc), exc.status_code) from exc

    async def ensure_image(
        self, ref: str, policy: PullPolicy, auth: RegistryAuth | None = None
    ) -> ImageInfo:
        if policy is not PullPolicy.ALWAYS:
            present = await self.inspect_image(ref)
            if present is not None:
                return present
            if policy is PullPolicy.NEVER:
                raise ImageNeverPullError(
                    ref,
                    f"image {ref} is not present on this host and the pull policy is Never: "
                    "load or build it here, or change imagePullPolicy",
                )
        try:  # a pull can take minutes: not in the pool
            await run_in_own_thread(lambda: self._pull(ref, auth), "recon-pull")
        except Exception as exc:
            raise translate(exc, Op.PULL, ref) from exc
        pulled = await self.inspect_image(ref)
        if pulled is None:
            raise pull_failure(ref, "the engine reported success but the image is not there")
        return pulled

    # -- containers ----------------------------------------------------------------------

    def _create(self, args: CreateArgs) -> str:
        host_config = self._api.create_host_config(**args.host_config)
        networking = None
        if args.network is not None:
            endpoint = self._api.create_endpoint_config(
                aliases=list(args.aliases) or None, ipv4_address=args.ip_address
            )
            networking = self._api.create_networking_config({args.network: endpoint})
        if args.stdin_once:
            # The SDK sets StdinOnce only on containers it attaches to itself (not detached).
            config = self._api.create_container_config(
                host_config=host_config, networking_config=networking, **args.container
            )
            config["StdinOnce"] = True
            created = self._api.create_container_from_config(config, args.name)
        else:
            created = self._api.create_container(
                name=args.name,
                host_config=host_config,
                networking_config=networking,
                **args.container,
            )
        container_id = str(created["Id"])
        try:
            for attachment in args.attachments:
                self._api.connect_container_to_network(
                    container_id,
                    attachment.network,
                    aliases=list(attachment.aliases) or None,
                    ipv4_address=attachment.ip_address,
                )
        except BaseException:
            self._remove_quietly(container_id)
            raise
        return container_id

    def _remove_quietly(self, container_id: str) -> None:
        with contextlib.suppress(Exception):
            self._api.remove_container(container_id, force=True, v=True)

    async def run_sandbox(self, spec: SandboxSpec) -> ContainerState:
        validate_sandbox_spec(spec)
        args = sandbox_create_args(spec)
        container_id = await self._run(Op.CREATE, args.name, self._create, args)
        try:
            await self._run(Op.START, args.name, self._api.start, container_id)
            return await self.inspect(container_id)
        except BaseException:
            await asyncio.shield(self._calls.run(self._remove_quietly, container_id))
            raise

    async def create_container(self, spec: ContainerSpec) -> ContainerId:
        validate_container_spec(spec)
        for mount in spec.mounts:
            if isinstance(mount, VolumeMount) and not await self._volume_exists(mount.volume):
                # The engine would create it, unlabelled, where no cleanup finds it.
                raise VolumeNotFoundError(
                    f"container {spec.name} mounts volume {mount.volume}, which does not "
                    "exist: ensure_volume it first"
                )
        args = container_create_args(spec)
        return ContainerId(await self._run(Op.CREATE, spec.name, self._create, args))

    async def start_container(self, container_id: str) -> None:
        await self._run(Op.START, container_id, self._api.start, container_id)

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        # The engine counts whole seconds; round up so a grace period is never cut short.
        # It blocks for up to the grace period: a thread of its own, so fifty pods deleted
        # at once do not hold the pool that every other call needs.
        seconds = max(0, math.ceil(timeout_s))
        try:
            await run_in_own_thread(
                lambda: self._api.stop(container_id, timeout=seconds),
                f"recon-stop-{container_id[:12]}",
            )
        except Exception as exc:
            raise translate(exc, Op.CONTAINER, container_id) from exc

    async def remove_container(self, container_id: str) -> None:
        try:
            await self._run(
                Op.CONTAINER,
                container_id,
                self._api.remove_container,
                container_id,
                force=True,
                v=True,
            )
        except ContainerRuntimeError as exc:
            if not isinstance(exc.__cause__, docker.errors.NotFound):
                raise

    def _list(self, selector: Mapping[str, str] | None) -> list[ContainerState]:
        states: list[ContainerState] = []
        for summary in self._api.containers(all=True, filters=_label_filters(selector)):
            try:
                states.append(state_from_inspect(self._api.inspect_container(summary["Id"])))
            except docker.errors.NotFound:
                continue  # removed between the list and the inspect
        return states

    async def list_containers(
        self, label_selector: Mapping[str, str] | None = None
    ) -> list[ContainerState]:
        result: list[ContainerState] = await self._run(
            Op.CONTAINER, "(list)", self._list, label_selector
        )
        return result

    async def inspect(self, container_id: str) -> ContainerState:
        raw = await self._run(Op.CONTAINER, container_id, self._api.inspect_container, container_id)
        return state_from_inspect(raw)

    def _update(self, container_id: str, body: dict[str, int]) -> None:
        # The SDK's update_container has no NanoCpus (the containers are created with it, and
        # the engine refuses a CPU quota next to it), so the engine's endpoint is called.
        response = self._api._post_json(
            self._api._url("/containers/{0}/update", container_id), data=body
        )
        self._api._raise_for_status(response)

    async def update_resources(
        self,
        container_id: str,
        *,
        nano_cpus: int | None,
        memory_bytes: int | None,
        cpu_shares: int | None,
    ) -> None:
        body = update_body(nano_cpus, memory_bytes, cpu_shares)
        if body:
            await self._run(Op.CONTAINER, container_id, self._update, container_id, body)

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: datetime | None = None,
        follow: bool = False,
        timestamps: bool = False,
    ) -> AsyncGenerator[bytes, None]:
        def open_stream() -> Any:
            return self._api.logs(
                container_id,
                stream=True,
                follow=follow,
                timestamps=timestamps,
                tail="all" if tail is None else tail,
                since=since.timestamp() if since is not None else None,
            )

        stream: ThreadStream[bytes] = ThreadStream(
            open_stream, _close_stream, name=f"recon-logs-{container_id[:12]}"
        )
        try:
            async for chunk in stream:
                yield chunk
        except Exception as exc:
            raise translate(exc, Op.CONTAINER, container_id) from exc
        finally:
            await stream.aclose()

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
    ) -> DockerExecSession:
        return await open_exec(
            self._calls,
            self._api,
            container_id,
            cmd,
            stdin=stdin,
            tty=tty,
            env=env,
            user=user,
            workdir=workdir,
        )

    async def attach(self, container_id: str, *, stdin: bool = False) -> DockerAttachSession:
        return await open_attach(self._calls, self._api, container_id, stdin=stdin)

    async def network_namespace(self, container_id: str) -> str:
        """From the container's main process (the engine's `State.Pid`): valid for a server
        that shares the host's PID namespace with dockerd, as `recon serve` does."""
        raw = await self._run(Op.CONTAINER, container_id, self._api.inspect_container, container_id)
        state = raw.get("State") or {}
        pid = int(state.get("Pid") or 0)
        if not state.get("Running") or pid <= 0:
            raise ContainerNotRunningError(
                f"network namespace of container {container_id}: it is not running"
            )
        return f"/proc/{pid}/ns/net"

    async def usage(self, container_id: str) -> ResourceUsage | None:
        """From the container's cgroup (`cgroup_usage.py`): Docker's stats endpoint takes a
        second per call. The main process's PID is cached while it answers."""
        pid = self._pids.get(container_id)
        if pid is not None:
            found = read_usage(pid)
            if found is not None:
                return found
            del self._pids[container_id]
        try:
            raw = await self._run(
                Op.CONTAINER, container_id, self._api.inspect_container, container_id
            )
        except ContainerNotFoundError:
            return None
        state = raw.get("State") or {}
        pid = int(state.get("Pid") or 0)
        if not state.get("Running") or pid <= 0:
            return None
        found = read_usage(pid)
        if found is not None:
            if len(self._pids) > 4096:
                self._pids.clear()
            self._pids[container_id] = pid
        return found

    async def wait(self, container_id: str) -> int:
        def wait() -> int:
            return int(self._api.wait(container_id, timeout=None)["StatusCode"])

        try:
            return await run_in_own_thread(wait, f"recon-wait-{container_id[:12]}")
        except Exception as exc:
            raise translate(exc, Op.CONTAINER, container_id) from exc

    # -- networks, volumes, memory dirs ------------------------------------------------------

    def _ensure_network(
        self, name: str, labels: dict[str, str], config: NetworkConfig | None
    ) -> None:
        # Docker accepts two networks of one name (check_duplicate is best effort), and a
        # name that matches two is unusable ("ambiguous"): create under a lock, and repair
        # duplicates left by an earlier race by keeping the oldest.
        with self._network_lock:
            same = [n for n in self._api.networks(names=[name]) if n.get("Name") == name]
            if same:
                same.sort(key=lambda n: str(n.get("Created", "")))
                for extra in same[1:]:
                    with contextlib.suppress(docker.errors.APIError):
                        self._api.remove_network(extra["Id"])
                return
            ipam = None
            if config is not None:
                pool = docker.types.IPAMPool(
                    subnet=config.subnet, iprange=config.ip_range, gateway=config.gateway
                )
                ipam = docker.types.IPAMConfig(pool_configs=[pool])
            try:
                self._api.create_network(
                    name, driver="bridge", labels=labels, check_duplicate=True, ipam=ipam
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # created meanwhile by someone else: fine
                    raise

    async def ensure_network(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        config: NetworkConfig | None = None,
    ) -> None:
        await self._run(
            Op.NETWORK, name, self._ensure_network, name, managed_labels(labels), config
        )

    async def remove_network(self, name: str) -> None:
        try:
            await self._run(Op.NETWORK, name, self._api.remove_network, name)
        except ContainerRuntimeError as exc:
            if not isinstance(exc.__cause__, docker.errors.NotFound):
                raise

    async def list_networks(self, label_selector: Mapping[str, str] | None = None) -> list[str]:
        found = await self._run(
            Op.NETWORK, "(list)", self._api.networks, filters=_label_filters(label_selector)
        )
        return sorted(str(n["Name"]) for n in found)

    async def _volume_exists(self, name: str) -> bool:
        try:
            await self._run(Op.VOLUME, name, self._api.inspect_volume, name)
        except ContainerRuntimeError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return False
            raise
        return True

    async def ensure_volume(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        if not await self._volume_exists(name):
            await self._run(
                Op.VOLUME,
                name,
                self._api.create_volume,
                name,
                driver="local",
                labels=managed_labels(labels),
            )

    async def remove_volume(self, name: str) -> None:
        try:
            await self._run(Op.VOLUME, name, self._api.remove_volume, name)
        except ContainerRuntimeError as exc:
            if not isinstance(exc.__cause__, docker.errors.NotFound):
                raise

    async def list_volumes(self, label_selector: Mapping[str, str] | None = None) -> list[str]:
        found = await self._run(
            Op.VOLUME, "(list)", self._api.volumes, filters=_label_filters(label_selector)
        )
        return sorted(str(v["Name"]) for v in found.get("Volumes") or ())

    async def ensure_memory_dir(self, pod_uid: str, name: str) -> str:
        return str(await self._calls.run(self._memory_dirs.ensure, pod_uid, name))

    async def remove_memory_dirs(self, pod_uid: str) -> None:
        await self._calls.run(self._memory_dirs.remove, pod_uid)

    async def list_memory_dir_pods(self) -> set[str]:
        return await self._calls.run(self._memory_dirs.pods)

    # -- events and shutdown -------------------------------------------------------------

    async def events(self) -> DockerEventStream:
        filters = {
            "type": ["container"],
            "event": _EVENT_ACTIONS,
            "label": [f"{MANAGED_LABEL}=true"],
        }
        # One second of replay covers the gap between the engine answering the request and
        # subscribing; a duplicate event is harmless to a level-triggered agent.
        since = int(time.time()) - 1

        def open_stream() -> Any:
            return self._api.events(since=since, filters=filters, decode=True)

        stream: ThreadStream[Mapping[str, Any]] = ThreadStream(
            open_stream, _close_stream, name="recon-docker-events"
        )
        try:
            await stream.started()
        except Exception as exc:
            await stream.aclose()
            raise translate(exc, Op.CONTAINER, "events") from exc
        return DockerEventStream(stream)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._calls.shutdown()
        await asyncio.to_thread(self._api.close)
