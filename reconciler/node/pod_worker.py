"""One pod's life on this node: a level-triggered loop, like the kubelet's pod worker.

Each pass (`_sync`) reads what the engine has for the pod (containers found by their pod-uid
label, so a restarted agent picks up where the last one stopped) and takes the next steps
toward the spec: a sandbox, volumes, init containers one at a time, app containers, restarts
with back-off, probes, ephemeral containers (`ephemeral.py`: started once, never
restarted); then it writes the pod status if it changed. Passes are triggered by
pod updates, engine events for the pod, probe results and timers (back-off ends); nothing
polls. Deletion runs preStop hooks, stops containers within the grace period, removes
everything the pod had on the engine, then completes the API deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from reconciler.client.errors import ClientError, ConflictError, NotFoundError
from reconciler.clock import parse_rfc3339, rfc3339
from reconciler.node.containers import (
    AGENT_LABEL,
    CONTAINER_NAME_LABEL,
    INIT_LABEL,
    RESTART_COUNT_LABEL,
    PreparedVolume,
    build_container_spec,
    definition_changed,
)
from reconciler.node.context import NodeContext
from reconciler.node.env import ConfigError, container_env
from reconciler.node.ephemeral import never_started, target_id
from reconciler.node.hooks import run_hook
from reconciler.node.images import pull_policy, registry_auth
from reconciler.node.pod_sandbox import (
    PUBLISHED_PORTS_ANNOTATION,
    SANDBOX_ATTEMPT_LABEL,
    on_host_network,
    published_port_keys,
    published_ports,
    sandbox_spec,
)
from reconciler.node.probes import ContainerProbes
from reconciler.node.resize import resize_action, resize_fit
from reconciler.node.services_network import ServicesNetwork
from reconciler.node.status import ContainerView, PodView, pod_status
from reconciler.node.termination import (
    MESSAGE_DIR,
    fallback_from_logs,
    message_file,
    read_message,
    wants_logs,
)
from reconciler.node.volume_files import TokenSource
from reconciler.node.volumes import (
    ClaimNotBoundError,
    VolumeSourceError,
    prepare_volumes,
    refresh_file_volumes,
)
from reconciler.runtime.base import (
    POD_UID_LABEL,
    ROLE_LABEL,
    SANDBOX_ID_LABEL,
    BindMount,
    ContainerState,
    ContainerStatus,
    NetworkAttachment,
    PullPolicy,
    SandboxSpec,
)
from reconciler.runtime.errors import (
    ContainerNotFoundError,
    ContainerRuntimeError,
    ImageError,
    ImageNeverPullError,
    RuntimeUnavailableError,
)

__all__ = ["PodWorker"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

_RETRY_S = 10.0
_ERR_IMAGE_PULL_SHOWN_S = 2.0
_SANDBOX_BACKOFF_CAP_S = 60.0
_DONE = -1.0
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EVICTED = "Evicted"
_TERMINAL = ("Succeeded", "Failed")


def _restart_count(record: ContainerState) -> int:
    try:
        return int(record.labels.get(RESTART_COUNT_LABEL, "0"))
    except ValueError:
        return 0


def _ran_for(record: ContainerState) -> float | None:
    if record.started_at and record.finished_at:
        return max(0.0, (record.finished_at - record.started_at).total_seconds())
    return None


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: JSONDict) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod.get("metadata") or {}
        self.uid = str(meta.get("uid") or "")
        self.namespace = str(meta.get("namespace") or "default")
        self.name = str(meta.get("name") or "")
        self.gone = False
        self.done = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probes: dict[str, ContainerProbes] = {}
        self._waiting: dict[str, tuple[str, str]] = {}
        self._volumes: dict[str, PreparedVolume] | None = None
        self._volumes_for = ""
        self._files_dirty = False
        self._written_status = ""
        """The last status written or found, as sorted JSON (a few hundred bytes, where the
        dict was ≈3 KB per pod)."""
        self._written_ports = ""
        self._host_ports: dict[int, int] = {}
        self._published: dict[str, int] = {}  # the published-ports annotation, TCP and UDP
        self._killing: set[str] = set()
        # Container name -> the engine's last refusal of a resize (reported once).
        self._resize_refused: dict[str, str] = {}
        # (reason, message) while the node cannot take the pod's resize (`resize_fit`).
        self._resize_pending: tuple[str, str] | None = None
        # Container id -> its termination message, once it exited (`termination.py`).
        self._messages: dict[str, str] = {}
        self._pull_failed_at: dict[str, float] = {}
        self._sandbox_delay = 0.0
        self._sandbox_retry_at = 0.0
        self._start_time = None if not (pod.get("status") or {}).get("startTime") else True
        self._eviction: tuple[str, float] | None = None
        """(message, grace period) once the node's eviction manager chose this pod."""
        self._cleaned = False

    # -- driving -------------------------------------------------------------------------

    def start(self, on_done: Callable[[], None] | None = None) -> None:
        """Run the loop; `on_done` is called when it has ended (a callback, not a task
        waiting for it: one task fewer per pod)."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"pod-{self.namespace}/{self.name}"
        )
        if on_done is not None:
            self._task.add_done_callback(lambda _task: on_done())

    def update(self, pod: JSONDict | None) -> None:
        """A new version of the pod (None: it is gone from the API)."""
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self._wake.set()

    def poke(self, files_changed: bool = False) -> None:
        self._files_dirty = self._files_dirty or files_changed
        self._wake.set()

    def evict(self, message: str, grace: float) -> bool:
        """Fail the pod to reclaim a resource the node is low on (the eviction manager's
        choice); False when it is already ending."""
        phase = (self.pod.get("status") or {}).get("phase")
        if self._eviction is not None or self.gone or phase in _TERMINAL:
            return False
        if (self.pod.get("metadata") or {}).get("deletionTimestamp"):
            return False
        self._eviction = (message, grace)
        self._wake.set()
        return True

    @property
    def evicting(self) -> bool:
        """Whether the eviction manager has handed this pod an eviction."""
        return self._eviction is not None

    @property
    def finished(self) -> bool:
        """Whether none of the pod's containers runs any more (an evicted pod is cleaned up)."""
        return self._cleaned

    async def stop(self) -> None:
        """Stop managing the pod, leaving its containers running (agent shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stop_probes(set())

    async def _run(self) -> None:
        try:
            while True:
                self._wake.clear()
                began = self.ctx.clock.monotonic()
                try:
                    delay: float | None = await self._sync()
                except asyncio.CancelledError:
                    raise
                except RuntimeUnavailableError as exc:
                    log.warning("pod %s/%s: container engine unavailable: %s", *self._key, exc)
                    delay = 2.0
                except ClientError as exc:
                    log.info("pod %s/%s: API: %s", *self._key, exc)
                    delay = 1.0
                except Exception:
                    log.exception("pod %s/%s: sync failed", *self._key)
                    delay = 5.0
                if delay == _DONE:
                    return
                if delay is not None:
                    # Delays are reckoned from the pass's start: time spent since counts.
                    delay = max(0.0, delay - (self.ctx.clock.monotonic() - began))
                await self._sleep(delay)
        finally:
            self.done.set()

    async def _sleep(self, delay: float | None) -> None:
        if self._wake.is_set():
            return
        if delay is None:
            await self._wake.wait()
            return
        waker = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(self.ctx.clock.sleep(max(delay, 0.0)))
        try:
            await asyncio.wait({waker, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waker, timer):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    @property
    def _key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def _event(self, event_type: str, reason: str, message: str) -> None:
        self.ctx.recorder.record(self.pod, event_type, reason, message)

    # -- one pass ------------------------------------------------------------------------

    async def _sync(self) -> float | None:
        pod = self.pod
        records = await self.ctx.runtime.list_containers({POD_UID_LABEL: self.uid})
        meta = pod.get("metadata") or {}
        if self.gone or meta.get("deletionTimestamp"):
            given = meta.get("deletionGracePeriodSeconds")
            grace = float(given) if given is not None else self._grace()
            await self._terminate(records, grace)
            if not self.gone:
                with contextlib.suppress(NotFoundError):
                    await self.ctx.client.delete(
                        "v1", "Pod", self.name, self.namespace, grace_period=0
                    )
            return _DONE
        if (pod.get("status") or {}).get("phase") in _TERMINAL:
            await self._stop_running(records, include_sandbox=True)
            await self._stop_probes(set())
            self._cleaned = True
            return None
        if not records and not (pod.get("status") or {}).get("startTime"):
            refusal = self.ctx.admit(pod)
            if refusal is not None:
                await self._reject(refusal)
                return None
        if self._eviction is not None:
            message, grace = self._eviction
            condition = {
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(self.ctx.clock.now()),
                "reason": "TerminationByKubelet",
                "message": message,
            }
            await self._fail(records, EVICTED, message, grace, condition)
            return None
        left = self._deadline_left()
        if left is not None and left <= 0:
            await self._fail(records, "DeadlineExceeded", DEADLINE_MESSAGE)
            return None
        now = self.ctx.clock.monotonic()
        if now < self._sandbox_retry_at:
            return self._sandbox_retry_at - now  # a failed sandbox is retried with back-off
        sandbox = await self._ensure_sandbox(records)
        if sandbox is None:
            self._sandbox_delay = min(max(self._sandbox_delay * 2, 1.0), _SANDBOX_BACKOFF_CAP_S)
            self._sandbox_retry_at = self.ctx.clock.monotonic() + self._sandbox_delay
            return self._sandbox_delay
        self._sandbox_delay = 0.0
        containers = [r for r in records if r.labels.get(ROLE_LABEL) != "sandbox"]
        if sandbox.id != self._volumes_for and containers:
            # A new sandbox stopped the old one's containers: read their states again
            # (with none, as for a pod just created, there is nothing to read).
            records = await self.ctx.runtime.list_containers({POD_UID_LABEL: self.uid})
            containers = [r for r in records if r.labels.get(ROLE_LABEL) != "sandbox"]
        by_name: dict[str, list[ContainerState]] = {}
        for record in sorted(containers, key=_restart_count):
            by_name.setdefault(record.labels.get(CONTAINER_NAME_LABEL, ""), []).append(record)
        next_wake: float | None = None

        def sooner(delay: float | None) -> None:
            nonlocal next_wake
            if delay is not None:
                next_wake = delay if next_wake is None else min(next_wake, delay)

        volumes_ok = await self._ensure_volumes(sandbox)
        initialized = failed_init = False
        if volumes_ok:
            initialized, failed_init, delay = await self._run_init(sandbox, by_name)
            sooner(delay)
            if initialized and not failed_init:
                sooner(await self._run_app(sandbox, by_name))
            sooner(await self._run_ephemeral(sandbox, by_name))
        else:
            sooner(_RETRY_S)
        records = await self.ctx.runtime.list_containers({POD_UID_LABEL: self.uid})
        self._probe_started(sandbox, records)
        await self._garbage(records)
        await self._write_status(sandbox, records, initialized, failed_init)
        sooner(self._deadline_left())
        return next_wake

    def _deadline_left(self) -> float | None:
        """Seconds left of the pod's `activeDeadlineSeconds`, counted from its start (None:
        no deadline, or not started)."""
        spec = self.pod.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        started = (self.pod.get("status") or {}).get("startTime")
        if deadline is None or not started:
            return None
        ends = parse_rfc3339(str(started)) + timedelta(seconds=int(deadline))
        return (ends - self.ctx.clock.now()).total_seconds()

    async def _fail(
        self,
        records: list[ContainerState],
        reason: str,
        message: str,
        grace: float | None = None,
        condition: JSONDict | None = None,
    ) -> None:
        """The node fails the pod (its active deadline passed, or it is evicted): every
        container is stopped (within `grace`, the pod's own when None), the status says
        why, and `condition` (DisruptionTarget) is added to it."""
        self._event("Warning", reason, message)
        await self._stop_running(records, include_sandbox=False, grace=grace)
        await self._stop_probes(set())
        records = await self.ctx.runtime.list_containers({POD_UID_LABEL: self.uid})
        sandbox = next((r for r in records if r.labels.get(ROLE_LABEL) == "sandbox"), None)
        await self._write_status(
            sandbox, records, True, False, failure=(reason, message), condition=condition
        )
        await self._stop_running(records, include_sandbox=True)
        self._cleaned = True

    async def _reject(self, refusal: str) -> None:
        """The kubelet's admission refused the pod (the node is under pressure): it fails
        before anything of it runs, as `Pod was rejected: ...`."""
        message = f"Pod was rejected: {refusal}"
        self._event("Warning", EVICTED, message)
        old = self.pod.get("status") or {}
        patch: JSONDict = {k: None for k in old if k not in ("conditions", "qosClass")}
        patch.update({"phase": "Failed", "reason": EVICTED, "message": message})
        self.pod = await self.ctx.client.patch(
            "v1",
            "Pod",
            self.name,
            {"status": patch},
            namespace=self.namespace,
            subresource="status",
        )
        self._cleaned = True

    # -- sandbox -------------------------------------------------------------------------

    async def _ensure_sandbox(self, records: list[ContainerState]) -> ContainerState | None:
        sandboxes = [r for r in records if r.labels.get(ROLE_LABEL) == "sandbox"]
        running = [s for s in sandboxes if s.status == ContainerStatus.RUNNING]
        if running:
            sandbox = max(running, key=lambda s: int(s.labels.get(SANDBOX_ATTEMPT_LABEL, "0")))
            self._host_ports = published_ports(sandbox, self.pod)
            self._published = published_port_keys(sandbox, self.pod)
            await self._write_ports_annotation()  # a no-op unless it lacks a port (UDP)
            return sandbox
        runtime = self.ctx.runtime
        attempt = 1 + max(
            (int(s.labels.get(SANDBOX_ATTEMPT_LABEL, "0")) for s in sandboxes), default=-1
        )
        if sandboxes:
            # The sandbox died (engine restart, kill): its containers lost their network.
            self._event(
                "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created."
            )
            await self._stop_running(records, include_sandbox=False)
            await self._stop_probes(set())
            for old in sandboxes:
                with contextlib.suppress(ContainerNotFoundError):
                    await runtime.remove_container(old.id)
        network = self.ctx.network_for(self.namespace)
        if network not in self.ctx.networks and not on_host_network(self.pod):
            await runtime.ensure_network(network, {"recon.dev/namespace": self.namespace})
            self.ctx.networks.add(network)
        image = self.ctx.settings.pause_image
        try:
            if image not in self.ctx.images_present:
                await runtime.ensure_image(image, PullPolicy.IF_NOT_PRESENT)
                self.ctx.images_present.add(image)
        except ImageError as exc:
            self._waiting_all("ContainerCreating", f"pause image: {exc}")
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            await self._write_status(None, records, False, False)
            return None
        spec = sandbox_spec(self.pod, network, image, attempt)
        spec = dataclasses.replace(spec, labels={**spec.labels, AGENT_LABEL: self.ctx.agent_id})
        if self.ctx.services_network is not None and not on_host_network(self.pod):
            spec = await self._with_services_network(spec, self.ctx.services_network)
        try:
            state = await runtime.run_sandbox(spec)
        except ContainerRuntimeError as exc:
            if isinstance(exc, RuntimeUnavailableError):
                raise
            self.ctx.networks.discard(network)  # ensured again next time (it may be gone)
            if self.ctx.services_network is not None:
                self.ctx.services_network.forget()
            self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._waiting_all("ContainerCreating", str(exc))
            await self._write_status(None, records, False, False)
            return None
        self._host_ports = published_ports(state, self.pod)
        self._published = published_port_keys(state, self.pod)
        await self._write_ports_annotation()
        return state

    async def _with_services_network(
        self, spec: SandboxSpec, shared: ServicesNetwork
    ) -> SandboxSpec:
        """Join the services network: cluster IPs, and the cluster DNS at the bridge."""
        network = await shared.ensure()
        return dataclasses.replace(
            spec, extra_networks=(NetworkAttachment(network),) if network else ()
        )

    def _pod_ip(self, sandbox: ContainerState | None, old: JSONDict) -> str | None:
        """The sandbox's address on its namespace network; on the host's network the
        node's address, as the kubelet reports it."""
        if on_host_network(self.pod):
            return self.ctx.settings.host_ip
        return sandbox.ip_address if sandbox is not None else old.get("podIP")

    async def _write_ports_annotation(self) -> None:
        value = json.dumps(self._published, separators=(",", ":"))
        annotations = (self.pod.get("metadata") or {}).get("annotations") or {}
        if value == self._written_ports or annotations.get(PUBLISHED_PORTS_ANNOTATION) == value:
            self._written_ports = value
            return
        await self.ctx.client.patch(
            "v1",
            "Pod",
            self.name,
            {"metadata": {"annotations": {PUBLISHED_PORTS_ANNOTATION: value}}},
            namespace=self.namespace,
        )
        self._written_ports = value

    def _waiting_all(self, reason: str, message: str) -> None:
        spec = self.pod.get("spec") or {}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            self._waiting[str(container.get("name"))] = (reason, message)

    # -- volumes -------------------------------------------------------------------------

    async def _ensure_volumes(self, sandbox: ContainerState) -> bool:
        ctx = self.ctx
        if self._volumes is not None and self._volumes_for == sandbox.id:
            if self._files_dirty:
                self._files_dirty = False
                await refresh_file_volumes(
                    self.pod, ctx.runtime, ctx.lookup, ctx.allocatable, self._token_source()
                )
            return True
        claims: dict[str, JSONDict | None] = {}
        bound: dict[str, JSONDict | None] = {}
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            source = volume.get("persistentVolumeClaim")
            if isinstance(source, dict):
                claim_name = str(source.get("claimName") or "")
                claim = ctx.claim(self.namespace, claim_name)
                claims[claim_name] = claim
                volume_name = ((claim or {}).get("spec") or {}).get("volumeName")
                bound[claim_name] = ctx.volume(str(volume_name)) if volume_name else None
        try:
            self._volumes = await prepare_volumes(
                self.pod,
                ctx.runtime,
                ctx.lookup,
                ctx.allocatable,
                claims,
                ctx.agent_id,
                self._token_source(),
                bound,
            )
        except ClaimNotBoundError:
            # Its volume is being bound or provisioned (controllers/persistentvolume.py):
            # the claim's update pokes this worker again.
            self._waiting_all("ContainerCreating", "")
            return False
        except VolumeSourceError as exc:
            self._event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
            self._waiting_all("ContainerCreating", "")
            return False
        self._volumes_for = sandbox.id
        self._files_dirty = False
        return True

    def _token_source(self) -> TokenSource | None:
        tokens = self.ctx.tokens
        return tokens.token if tokens is not None else None

    # -- containers ----------------------------------------------------------------------

    def _current(
        self, records: list[ContainerState] | None, sandbox: ContainerState
    ) -> tuple[ContainerState | None, ContainerState | None]:
        """(the newest record, that record if it belongs to the current sandbox)."""
        latest = records[-1] if records else None
        if latest is not None and latest.labels.get(SANDBOX_ID_LABEL) == sandbox.id:
            return latest, latest
        return latest, None

    async def _run_init(
        self, sandbox: ContainerState, by_name: Mapping[str, list[ContainerState]]
    ) -> tuple[bool, bool, float | None]:
        """(initialized, failed, next wake)."""
        spec = self.pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        for container in spec.get("initContainers") or []:
            name = str(container.get("name"))
            latest, current = self._current(by_name.get(name), sandbox)
            if current is not None and current.status == ContainerStatus.EXITED:
                if current.exit_code == 0:
                    self._waiting.pop(name, None)
                    continue
                if policy == "Never":
                    self._waiting.pop(name, None)
                    return False, True, None
                delay = self._backoff_due(name, current)
                if delay is not None:
                    return False, False, delay
            elif current is not None:
                return False, False, None  # running (or being created): wait for its exit
            count = _restart_count(latest) + 1 if latest is not None else 0
            return False, False, await self._start(container, sandbox, count, init=True)
        return True, False, None

    def _backoff_due(self, name: str, exited: ContainerState) -> float | None:
        """Seconds until `name` may restart (CrashLoopBackOff), or None to restart now."""
        now = self.ctx.clock.monotonic()
        key = f"{self.uid}/{name}"
        due = self.ctx.crash_backoff.wait_until(key, now, _ran_for(exited))
        if due is None:
            return None
        delay = self.ctx.crash_backoff.delay(key)
        message = (
            f"back-off {delay:g}s restarting failed container={name} "
            f"pod={self.name}_{self.namespace}({self.uid})"
        )
        if self._waiting.get(name, ("", ""))[0] != "CrashLoopBackOff":
            self._event(
                "Warning",
                "BackOff",
                "Back-off restarting failed container "
                f"{name} in pod {self.name}_{self.namespace}({self.uid})",
            )
        self._waiting[name] = ("CrashLoopBackOff", message)
        return max(due - now, 0.0)

    async def _run_app(
        self, sandbox: ContainerState, by_name: Mapping[str, list[ContainerState]]
    ) -> float | None:
        spec = self.pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        next_wake: float | None = None
        live: set[str] = set()
        resizing = self._resize_check(spec, by_name, sandbox)
        if self._resize_pending is not None and self._resize_pending[0] == "Deferred":
            next_wake = _RETRY_S  # room may be made meanwhile: look again
        for container in spec.get("containers") or []:
            name = str(container.get("name"))
            latest, current = self._current(by_name.get(name), sandbox)
            delay: float | None = None
            if current is not None and current.status != ContainerStatus.EXITED:
                self._waiting.pop(name, None)
                if definition_changed(container, current.labels):
                    if current.id not in self._killing:
                        self._event(
                            "Normal",
                            "Killing",
                            f"Container {name} definition changed, will be restarted",
                        )
                        await self._kill_container(container, current, "definition changed")
                    continue
                if resizing and await self._resize(container, current):
                    continue
                live.add(current.id)
                self._ensure_probes(container, current)
                continue
            if current is not None:
                code = current.exit_code or 0
                if policy == "Never" or (policy == "OnFailure" and code == 0):
                    self._waiting.pop(name, None)
                    continue
                delay = self._backoff_due(name, current)
                if delay is not None:
                    next_wake = delay if next_wake is None else min(next_wake, delay)
                    continue
            count = _restart_count(latest) + 1 if latest is not None else 0
            delay = await self._start(container, sandbox, count, init=False)
            if delay is not None:
                next_wake = delay if next_wake is None else min(next_wake, delay)
        await self._stop_probes(live)
        return next_wake

    def _resize_check(
        self,
        spec: JSONDict,
        by_name: Mapping[str, list[ContainerState]],
        sandbox: ContainerState,
    ) -> bool:
        """Whether the resizes the running containers want may be applied: the pod with its
        new requests fits the node (`resize_fit`); otherwise it is pending, and says why."""
        wanted = False
        for container in spec.get("containers") or []:
            _, current = self._current(by_name.get(str(container.get("name"))), sandbox)
            if current is None or current.status != ContainerStatus.RUNNING:
                continue
            with contextlib.suppress(ConfigError):
                wanted = wanted or resize_action(container, current)[0] != "none"
        self._resize_pending = None
        if wanted:
            others = self.ctx.node_requests(self.uid)
            self._resize_pending = resize_fit(spec, self.ctx.allocatable, others)
        return self._resize_pending is None

    async def _resize(self, container: JSONDict, current: ContainerState) -> bool:
        """Apply an in-place resize to a running container (`resize.py`); True when it is
        being restarted for it instead."""
        if current.status != ContainerStatus.RUNNING or current.id in self._killing:
            return False
        name = str(container.get("name"))
        try:
            action, (nanos, memory, shares) = resize_action(container, current)
        except ConfigError:
            return False  # the API validated the quantities; nothing the engine could take
        if action == "restart":
            self._event("Normal", "Killing", f"Container {name} resize requires a restart")
            await self._kill_container(container, current, "resized")
            return True
        if action == "update":
            try:
                await self.ctx.runtime.update_resources(
                    current.id, nano_cpus=nanos, memory_bytes=memory, cpu_shares=shares
                )
            except ContainerRuntimeError as exc:
                if self._resize_refused.get(name) != str(exc):
                    self._resize_refused[name] = str(exc)
                    self._event("Warning", "ResizeFailed", f"Container {name}: {exc}")
            else:
                self._resize_refused.pop(name, None)
        return False

    async def _run_ephemeral(
        self, sandbox: ContainerState, by_name: Mapping[str, list[ContainerState]]
    ) -> float | None:
        """Start the ephemeral containers that never ran (`ephemeral.py`)."""
        next_wake: float | None = None
        for container in never_started(self.pod, by_name):
            name = str(container.get("name"))
            try:
                target = target_id(self.pod, container, by_name, sandbox.id)
            except ConfigError as exc:
                self._waiting[name] = ("CreateContainerConfigError", str(exc))
                self._event("Warning", "Failed", f"Error: {exc}")
                delay: float | None = _RETRY_S
            else:
                delay = await self._start(
                    container, sandbox, 0, init=False, ephemeral=True, pid_of=target
                )
            if delay is not None:
                next_wake = delay if next_wake is None else min(next_wake, delay)
        return next_wake

    async def _pull(self, container: JSONDict) -> float | None:
        """Make the image present; on failure record ErrImagePull / ImagePullBackOff and
        return when to try again."""
        ctx = self.ctx
        name = str(container.get("name"))
        image = str(container.get("image") or "")
        policy = pull_policy(container)
        key = f"{self.uid}/{name}/image"
        now = ctx.clock.monotonic()
        if self._waiting.get(name, ("", ""))[0] in ("ErrImagePull", "ImagePullBackOff"):
            due = ctx.pull_backoff.wait_until(key, now)
            if due is not None:
                # Like the kubelet's next sync: the failure shows as ErrImagePull for a
                # moment, then as ImagePullBackOff until the next attempt.
                shown_until = self._pull_failed_at.get(name, now) + _ERR_IMAGE_PULL_SHOWN_S
                if now < shown_until:
                    return min(due, shown_until) - now
                self._waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
                return max(due - now, 0.0)
        present = await ctx.runtime.inspect_image(image)
        if present is not None and policy != PullPolicy.ALWAYS:
            ctx.pull_backoff.forget(key)
            self._event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        if policy != PullPolicy.NEVER:
            self._event("Normal", "Pulling", f'Pulling image "{image}"')
        try:
            await ctx.runtime.ensure_image(
                image, policy, registry_auth(self.pod, image, ctx.lookup)
            )
        except ImageNeverPullError:
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._waiting[name] = ("ErrImageNeverPull", message)
            self._event("Warning", "ErrImageNeverPull", message)
            return _RETRY_S
        except ImageError as exc:
            if self._waiting.get(name, ("", ""))[0] not in ("ErrImagePull", "ImagePullBackOff"):
                ctx.pull_backoff.wait_until(key, now)
            self._waiting[name] = ("ErrImagePull", str(exc))
            self._pull_failed_at[name] = now
            self._event("Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            return max(ctx.pull_backoff.delay(key), 1.0)
        ctx.pull_backoff.forget(key)
        if policy == PullPolicy.ALWAYS or present is None:
            self._event("Normal", "Pulled", f'Successfully pulled image "{image}"')
        return None

    async def _start(
        self,
        container: JSONDict,
        sandbox: ContainerState,
        restart_count: int,
        *,
        init: bool,
        ephemeral: bool = False,
        pid_of: str | None = None,
    ) -> float | None:
        ctx = self.ctx
        name = str(container.get("name"))
        delay = await self._pull(container)
        if delay is not None:
            return delay
        try:
            env = container_env(
                self.pod, container, ctx.lookup, ctx.service_env(self.pod), ctx.allocatable
            )
            spec = build_container_spec(
                self.pod,
                container,
                env=env,
                volumes=self._volumes or {},
                sandbox_id=sandbox.id,
                restart_count=restart_count,
                init=init,
                allow_privileged=ctx.settings.allow_privileged,
                ephemeral=ephemeral,
                pid_of=pid_of,
            )
        except ConfigError as exc:
            self._waiting[name] = ("CreateContainerConfigError", str(exc))
            self._event("Warning", "Failed", f"Error: {exc}")
            return _RETRY_S
        self._waiting.pop(name, None)
        message_path = str(container.get("terminationMessagePath") or "/dev/termination-log")
        message_file = await self._termination_file(name, restart_count)
        spec = dataclasses.replace(
            spec,
            labels={**spec.labels, AGENT_LABEL: ctx.agent_id},
            mounts=(*spec.mounts, BindMount(str(message_file), message_path)),
        )
        try:
            container_id = await ctx.runtime.create_container(spec)
        except ContainerRuntimeError as exc:
            if isinstance(exc, RuntimeUnavailableError):
                raise
            self._waiting[name] = ("CreateContainerError", str(exc))
            self._event("Warning", "Failed", f"Error: {exc}")
            return _RETRY_S
        self._event("Normal", "Created", f"Created container {name}")
        try:
            await ctx.runtime.start_container(container_id)
        except ContainerRuntimeError as exc:
            if isinstance(exc, RuntimeUnavailableError):
                raise
            self._event("Warning", "Failed", f"Error: {exc}")
            return None  # the record shows it exited; the next pass applies the back-off
        self._event("Normal", "Started", f"Started container {name}")
        hook = (container.get("lifecycle") or {}).get("postStart")
        if isinstance(hook, dict):
            problem = await run_hook(
                hook,
                container,
                container_id,
                self._host_ports,
                ctx.runtime,
                ctx.prober,
                ctx.clock,
                float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)),
            )
            if problem is not None:
                self._event("Warning", "FailedPostStartHook", problem)
                state = await ctx.runtime.inspect(container_id)
                await self._kill_container(container, state, "FailedPostStartHook")
        return None

    # -- probes --------------------------------------------------------------------------

    def _ensure_probes(self, container: JSONDict, state: ContainerState) -> None:
        if state.id in self._probes or state.status != ContainerStatus.RUNNING:
            return
        name = str(container.get("name"))

        async def failed(kind: str, message: str) -> None:
            self._event(
                "Normal",
                "Killing",
                f"Container {name} failed {kind.lower()} probe, will be restarted",
            )
            await self._kill_container(container, state, f"{kind} probe failed")

        probes = ContainerProbes(
            container,
            state.id,
            self._host_ports,
            self.ctx.runtime,
            self.ctx.prober,
            self.ctx.clock,
            on_change=self._wake.set,
            on_failure=failed,
            on_event=lambda reason, message: self._event("Warning", reason, message),
        )
        self._probes[state.id] = probes
        probes.start()

    def _probe_started(self, sandbox: ContainerState, records: list[ContainerState]) -> None:
        """Probe the app containers that started in this pass at once, so the status
        written next already says whether they are ready (no extra round trip)."""
        running = {
            r.labels.get(CONTAINER_NAME_LABEL, ""): r
            for r in records
            if r.status == ContainerStatus.RUNNING
            and r.labels.get(SANDBOX_ID_LABEL) == sandbox.id
            and r.labels.get(INIT_LABEL) != "true"
            and r.id not in self._killing
        }
        for container in (self.pod.get("spec") or {}).get("containers") or []:
            state = running.get(str(container.get("name")))
            if state is not None and not definition_changed(container, state.labels):
                self._ensure_probes(container, state)

    async def _stop_probes(self, keep: set[str]) -> None:
        for container_id in [c for c in self._probes if c not in keep]:
            await self._probes.pop(container_id).stop()

    def _ready(self, state: ContainerState | None) -> tuple[bool, bool]:
        """(ready, started) of a container record."""
        if state is None or state.status != ContainerStatus.RUNNING:
            return False, False
        probes = self._probes.get(state.id)
        if probes is None:
            return False, False
        return probes.ready and probes.started, probes.started

    # -- stopping ------------------------------------------------------------------------

    def _grace(self) -> float:
        return float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    async def _kill_container(
        self, container: JSONDict, state: ContainerState, why: str, grace: float | None = None
    ) -> None:
        """preStop, then SIGTERM and SIGKILL when the grace period runs out."""
        if state.id in self._killing:
            return
        self._killing.add(state.id)
        try:
            budget = self._grace() if grace is None else grace
            started = self.ctx.clock.monotonic()
            hook = (container.get("lifecycle") or {}).get("preStop")
            if isinstance(hook, dict) and state.status == ContainerStatus.RUNNING:
                problem = await run_hook(
                    hook,
                    container,
                    state.id,
                    self._host_ports,
                    self.ctx.runtime,
                    self.ctx.prober,
                    self.ctx.clock,
                    budget,
                )
                if problem is not None:
                    self._event("Warning", "FailedPreStopHook", problem)
            left = max(0.0, budget - (self.ctx.clock.monotonic() - started))
            with contextlib.suppress(ContainerNotFoundError):
                await self.ctx.runtime.stop_container(state.id, left)
            log.debug("pod %s/%s: stopped %s (%s)", *self._key, container.get("name"), why)
        finally:
            self._killing.discard(state.id)
            self._wake.set()

    async def _stop_running(
        self, records: list[ContainerState], *, include_sandbox: bool, grace: float | None = None
    ) -> None:
        spec = self.pod.get("spec") or {}
        by_name = {
            str(c.get("name")): c
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        }
        running = [
            r
            for r in records
            if r.status == ContainerStatus.RUNNING and r.labels.get(ROLE_LABEL) != "sandbox"
        ]
        await asyncio.gather(
            *(
                self._kill_container(
                    by_name.get(r.labels.get(CONTAINER_NAME_LABEL, ""), {}),
                    r,
                    "pod stopping",
                    grace,
                )
                for r in running
            )
        )
        if include_sandbox:
            for record in records:
                if (
                    record.labels.get(ROLE_LABEL) == "sandbox"
                    and record.status == ContainerStatus.RUNNING
                ):
                    with contextlib.suppress(ContainerNotFoundError):
                        await self.ctx.runtime.stop_container(record.id, 0)

    async def _terminate(self, records: list[ContainerState], grace: float) -> None:
        await self._stop_probes(set())
        spec = self.pod.get("spec") or {}
        by_name = {str(c.get("name")): c for c in spec.get("containers") or []}
        running = [
            r
            for r in records
            if r.status == ContainerStatus.RUNNING and r.labels.get(ROLE_LABEL) != "sandbox"
        ]
        for record in running:
            name = record.labels.get(CONTAINER_NAME_LABEL, "")
            self._event("Normal", "Killing", f"Stopping container {name}")
        await asyncio.gather(
            *(
                self._kill_container(
                    by_name.get(r.labels.get(CONTAINER_NAME_LABEL, ""), {}), r, "deleted", grace
                )
                for r in running
            )
        )
        await remove_pod_resources(self.ctx, self.uid, records)
        self.ctx.crash_backoff.forget_prefix(f"{self.uid}/")
        self.ctx.pull_backoff.forget_prefix(f"{self.uid}/")

    async def _garbage(self, records: list[ContainerState]) -> None:
        """Keep the newest two records per container (the current and `--previous`)."""
        by_name: dict[str, list[ContainerState]] = {}
        for record in records:
            if record.labels.get(ROLE_LABEL) != "sandbox":
                by_name.setdefault(record.labels.get(CONTAINER_NAME_LABEL, ""), []).append(record)
        for group in by_name.values():
            group.sort(key=_restart_count)
            for old in group[:-2]:
                if old.status == ContainerStatus.EXITED:
                    with contextlib.suppress(ContainerNotFoundError):
                        await self.ctx.runtime.remove_container(old.id)

    # -- status --------------------------------------------------------------------------

    def _views(
        self, specs: list[JSONDict], by_name: Mapping[str, list[ContainerState]], init: bool
    ) -> list[ContainerView]:
        views = []
        for container in specs:
            name = str(container.get("name"))
            group = by_name.get(name, [])
            latest = group[-1] if group else None
            before = group[-2] if len(group) > 1 else None
            waiting = self._waiting.get(name)
            if latest is not None and latest.status != ContainerStatus.EXITED:
                waiting = None
            if waiting is not None:
                current = None
                previous = latest if latest is not None else before
            else:
                current, previous = latest, before
            ready, started = (False, False) if init else self._ready(current)
            applied = None if init else _applied_resources(container, current)
            if init and current is not None:
                started = current.status == ContainerStatus.RUNNING
            views.append(
                ContainerView(
                    name=name,
                    image=str(container.get("image") or ""),
                    current=current,
                    previous=previous,
                    restart_count=_restart_count(latest) if latest is not None else 0,
                    waiting_reason=waiting[0] if waiting else None,
                    waiting_message=waiting[1] if waiting else "",
                    ready=ready,
                    started=started,
                    resources=applied,
                    messages=self._messages,
                    resize_error="" if init else self._resize_refused.get(name, ""),
                )
            )
        return views

    async def _termination_file(self, name: str, restart_count: int) -> Path:
        """A fresh, empty file for this container instance's termination message
        (`termination.py`), writable by whatever user the container runs as."""
        directory = await self.ctx.runtime.ensure_memory_dir(self.uid, MESSAGE_DIR)
        path = message_file(directory, name, restart_count)
        path.write_bytes(b"")
        path.chmod(0o666)
        return path

    async def _collect_messages(self, records: list[ContainerState]) -> None:
        """The termination message of each container instance that has exited, read once
        (it does not change after the exit); forgotten with the instance."""
        present = {r.id for r in records}
        for known in [k for k in self._messages if k not in present]:
            del self._messages[known]
        spec = self.pod.get("spec") or {}
        by_name = {
            str(c.get("name")): c
            for group in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(group) or []
        }
        exited = [
            r
            for r in records
            if r.status == ContainerStatus.EXITED
            and r.id not in self._messages
            and r.labels.get(ROLE_LABEL) != "sandbox"
        ]
        if not exited:
            return
        directory = await self.ctx.runtime.ensure_memory_dir(self.uid, MESSAGE_DIR)
        for record in exited:
            name = record.labels.get(CONTAINER_NAME_LABEL, "")
            message = read_message(message_file(directory, name, _restart_count(record)))
            if wants_logs(by_name.get(name) or {}, message, record.exit_code):
                try:
                    chunks = [c async for c in self.ctx.runtime.logs(record.id, tail=80)]
                except ContainerRuntimeError:
                    chunks = []
                message = fallback_from_logs(b"".join(chunks))
            self._messages[record.id] = message

    async def _write_status(
        self,
        sandbox: ContainerState | None,
        records: list[ContainerState],
        initialized: bool,
        failed_init: bool,
        failure: tuple[str, str] | None = None,
        condition: JSONDict | None = None,
    ) -> None:
        """`failure`: (reason, message) of a pod the node failed (its active deadline, an
        eviction); `condition`: one more condition to set (DisruptionTarget)."""
        await self._collect_messages(records)
        spec = self.pod.get("spec") or {}
        by_name: dict[str, list[ContainerState]] = {}
        for record in sorted(records, key=_restart_count):
            if record.labels.get(ROLE_LABEL) != "sandbox":
                by_name.setdefault(record.labels.get(CONTAINER_NAME_LABEL, ""), []).append(record)
        old = self.pod.get("status") or {}
        start = old.get("startTime")
        now = self.ctx.clock.now()
        view = PodView(
            init=self._views(spec.get("initContainers") or [], by_name, True),
            app=self._views(spec.get("containers") or [], by_name, False),
            ephemeral=self._views(spec.get("ephemeralContainers") or [], by_name, True),
            pod_ip=self._pod_ip(sandbox, old),
            host_ip=self.ctx.settings.host_ip,
            start_time=None,
            initialized=initialized,
            failed_init=failed_init,
            sandbox_ready=sandbox is not None and sandbox.status == ContainerStatus.RUNNING,
            runtime=self.ctx.runtime.name,
            resize_pending=self._resize_pending,
        )
        status = pod_status(self.pod, view, now)
        status["startTime"] = start or status.get("startTime") or now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if failure is not None:
            status["phase"] = "Failed"
            status["reason"], status["message"] = failure
        if condition is not None:
            kept = [c for c in status["conditions"] if c.get("type") != condition["type"]]
            status["conditions"] = [*kept, condition]
        written = json.dumps(status, sort_keys=True, separators=(",", ":"))
        if written == self._written_status:
            return
        if status == old:
            self._written_status = written
            return
        if status["phase"] in _TERMINAL and old.get("phase") not in _TERMINAL:
            await self._stop_probes(set())
        # A JSON merge patch: lists are replaced whole; keys that left the status (a
        # `reason` once the pod runs again) are removed explicitly. The conditions list
        # carries those others set (a readiness gate's, DisruptionTarget) as this copy of
        # the pod has them, so the write is conditional on it being current: one written
        # meanwhile is not dropped; the pass is made again on the fresh pod.
        patch: JSONDict = {k: None for k in old if k not in status}
        patch.update(status)
        version = (self.pod.get("metadata") or {}).get("resourceVersion")
        body: JSONDict = {"status": patch}
        if version:
            body["metadata"] = {"resourceVersion": version}
        try:
            updated = await self.ctx.client.patch(
                "v1", "Pod", self.name, body, namespace=self.namespace, subresource="status"
            )
        except ConflictError:
            self.pod = await self.ctx.client.get("v1", "Pod", self.name, self.namespace)
            self._wake.set()
            return
        self._written_status = written
        self.pod = updated


async def remove_pod_resources(ctx: NodeContext, uid: str, records: list[ContainerState]) -> None:
    """Everything the pod had on the engine: containers, sandbox, memory dirs, emptyDirs."""
    runtime = ctx.runtime
    for record in sorted(records, key=lambda r: r.labels.get(ROLE_LABEL) == "sandbox"):
        with contextlib.suppress(ContainerNotFoundError):
            await runtime.remove_container(record.id)
    await runtime.remove_memory_dirs(uid)
    for volume in await runtime.list_volumes({POD_UID_LABEL: uid}):
        with contextlib.suppress(ContainerRuntimeError):
            await runtime.remove_volume(volume)


def _applied_resources(container: JSONDict, state: ContainerState | None) -> JSONDict | None:
    """The container's requests and limits when the running container has them (no resize
    outstanding), for its status; None otherwise or when it sets none."""
    resources = container.get("resources") or {}
    if state is None or state.status != ContainerStatus.RUNNING or not resources:
        return None
    try:
        if resize_action(container, state)[0] != "none":
            return None
    except ConfigError:
        return None
    kept = {k: resources[k] for k in ("requests", "limits") if resources.get(k)}
    return kept or None
