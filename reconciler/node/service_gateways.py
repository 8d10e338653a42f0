"""Service gateways: the containers that make Services reachable from inside pods.

`service_gateway_plan` decides what each gateway is; this loop converges the engine to it.
Level-triggered like the service proxy: any change of a Service or an Endpoints wakes one
loop that recomputes every plan, rewrites the backend files that changed (the gateway reads
them per connection, so an endpoint change never restarts it), and re-creates only the
gateways whose spec hash changed or whose container is not running (an engine restart, a
`docker rm`). A failure is logged, reported as a Warning Event on the Service
(`FailedServiceGateway`) and retried after `retry_interval` seconds, doubling to 5 min
(another `recon serve` on the engine may hold the cluster IP, e.g. the `kubernetes`
Service's 10.96.0.1).

Gateways carry the agent label, so `recon serve` restarted re-adopts them (same hash, still
running: kept) and two servers on one engine never touch each other's. Their files live in
`<state_dir>/<service uid>/`, bind-mounted read-only at /gw.

UDP ports are not the container's: after each sync the running gateways are handed to
`service_gateway_udp.GatewayUdp`, which relays them from sockets inside each gateway's
network namespace (they stop with `recon serve`, and start again with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from reconciler.client.base import Client
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, SystemClock
from reconciler.controllers.informer import Handlers, Informer, InformerFactory
from reconciler.node.atomic_writer import write_files
from reconciler.node.containers import AGENT_LABEL
from reconciler.node.engine_events import follow_engine_events
from reconciler.node.service_gateway_plan import (
    FORWARD_SCRIPT,
    RUN_SCRIPT,
    GatewayPlan,
    backends_text,
    plan_gateways,
)
from reconciler.node.service_gateway_udp import GatewayUdp, UdpOpener
from reconciler.node.services_network import ServicesNetwork
from reconciler.node.volume_files import FileContent
from reconciler.runtime.base import (
    BindMount,
    ContainerRuntime,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EventKind,
    EventStream,
    NetworkAttachment,
    PullPolicy,
    RuntimeEvent,
)
from reconciler.runtime.errors import ContainerRuntimeError, RuntimeUnavailableError

__all__ = ["COMPONENT_LABEL", "GATEWAY_HASH_LABEL", "SERVICE_UID_LABEL", "ServiceGateways"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

COMPONENT_LABEL = "recon.dev/component"
SERVICE_UID_LABEL = "recon.dev/service-uid"
GATEWAY_HASH_LABEL = "recon.dev/gateway-hash"
_COMPONENT = "service-gateway"
_RETRY_CAP_S = 300.0
_CONTAINER_ID = re.compile(r"\b[0-9a-f]{12,64}\b")  # engine messages name the container
_IMAGE_LABEL = "recon.dev/gateway-image"
_SHARED_LABEL = "recon.dev/gateway-services-network"  # "" when it could not be joined


def _files(plan: GatewayPlan) -> dict[str, FileContent]:
    files = {
        "run": FileContent(RUN_SCRIPT.encode(), 0o755),
        "forward": FileContent(FORWARD_SCRIPT.encode(), 0o755),
        "ports": FileContent("".join(f"{p}\n" for p in plan.ports).encode(), 0o644),
    }
    for port, backends in plan.backends.items():
        files[f"backends-{port}"] = FileContent(backends_text(backends).encode(), 0o644)
    return files


class ServiceGateways:
    """`await start()`, then `await stop()` (gateways stay on the engine across restarts)."""

    def __init__(
        self,
        client: Client,
        runtime: ContainerRuntime,
        *,
        agent_id: str,
        image: str,
        state_dir: Path,
        services_network: ServicesNetwork,
        network_prefix: str = "recon",
        clock: Clock | None = None,
        informers: InformerFactory | None = None,
        retry_interval: float = 10.0,
        udp_opener: UdpOpener | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.agent_id = agent_id
        self.image = image
        self.state_dir = state_dir
        self.services_network = services_network
        self.network_prefix = network_prefix
        self.clock = clock or SystemClock()
        self.retry_interval = retry_interval
        self._own_factory = informers is None
        self.factory = informers or InformerFactory(client, self.clock)
        self.recorder = EventRecorder(client, self.clock, "recon-service-gateways")
        self.services: Informer
        self.endpoints: Informer
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failed: dict[str, str] = {}  # service uid -> the error already reported
        # service uid -> (when to try again, the delay after that): a gateway that cannot
        # start (e.g. another server on the engine holds its cluster IP) is retried after
        # `retry_interval`, doubling to `_RETRY_CAP_S`, not on every event.
        self._backoff: dict[str, tuple[float, float]] = {}
        self._discarded: set[str] = set()  # ids of failed gateways this component removed
        self._image_present = False
        # UDP ports, relayed from inside the gateways' namespaces (`udp_opener`: tests).
        self.udp = GatewayUdp(runtime, self.clock, self._report_udp, opener=udp_opener)

    async def start(self) -> None:
        self.services = self.factory.informer("v1", "Service")
        self.endpoints = self.factory.informer("v1", "Endpoints")
        kick = Handlers(self._kicked, lambda _old, _new: self._wake.set(), self._kicked)
        self.services.add_handlers(kick)
        self.endpoints.add_handlers(kick)
        if self._own_factory:
            self.factory.start()
        stream = await self.runtime.events()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="service-gateways"),
            loop.create_task(self._engine_events(stream), name="service-gateway-events"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.udp.close()
        if self._own_factory:
            await self.factory.stop()
        await self.recorder.close()

    def _kicked(self, _obj: JSONDict) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait())
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                retry = await self.sync()
            except asyncio.CancelledError:
                raise
            except RuntimeUnavailableError as exc:
                log.info("service gateways: engine unavailable: %s", exc)
                retry = True
            except Exception:
                log.exception("service gateways: sync failed")
                retry = True
            if retry:
                asyncio.get_running_loop().call_later(self.retry_interval, self._wake.set)

    async def _engine_events(self, stream: EventStream) -> None:
        """A gateway that dies or is removed behind our back (`docker rm`, an engine
        restart) is made again; so is everything after a gap in the event stream."""

        def seen(event: RuntimeEvent) -> None:
            ours = event.labels.get(AGENT_LABEL) == self.agent_id
            gateway = event.labels.get(COMPONENT_LABEL) == _COMPONENT
            if event.container_id in self._discarded:
                if event.kind is EventKind.REMOVED:
                    self._discarded.discard(event.container_id)
                return  # a failed start of our own: retried on its back-off, not now
            if ours and gateway and event.kind in (EventKind.DIED, EventKind.REMOVED):
                self._wake.set()

        await follow_engine_events(
            self.runtime, self.clock, stream, seen, self._wake.set, "service gateways"
        )

    # -- converging --------------------------------------------------------------------------

    async def gateways(self) -> list[ContainerState]:
        return await self.runtime.list_containers(
            {AGENT_LABEL: self.agent_id, COMPONENT_LABEL: _COMPONENT}
        )

    async def sync(self) -> bool:
        """Converge once; returns whether something failed (and wants a retry)."""
        plans = plan_gateways(self.services.list(), self.endpoints.get)
        shared = await self.services_network.ensure() if plans else None
        running: dict[str, ContainerState] = {}
        for state in await self.gateways():
            uid = state.labels.get(SERVICE_UID_LABEL, "")
            plan = plans.get(uid)
            keep = (
                plan is not None
                and uid not in running
                and state.labels.get(GATEWAY_HASH_LABEL) == plan.spec_hash
                and state.labels.get(_IMAGE_LABEL) == self.image
                and state.labels.get(_SHARED_LABEL) == (shared or "")
                and state.status is ContainerStatus.RUNNING
            )
            if keep:
                running[uid] = state
            else:
                await self._remove(state)
        for uid in self._stale_dirs(set(plans)):
            await asyncio.to_thread(shutil.rmtree, self.state_dir / uid, True)
        failed = False
        live: dict[str, tuple[GatewayPlan, str]] = {}  # uid -> (plan, running container)
        for uid, plan in sorted(plans.items()):
            await asyncio.to_thread(write_files, self.state_dir / uid, _files(plan))
            if uid in running:
                live[uid] = (plan, running[uid].id)
                self._failed.pop(uid, None)
                self._backoff.pop(uid, None)
                continue
            due, delay = self._backoff.get(uid, (0.0, self.retry_interval))
            if self.clock.monotonic() < due:
                failed = True
                continue
            try:
                live[uid] = (plan, await self._create(plan, shared))
            except RuntimeUnavailableError:
                raise
            except ContainerRuntimeError as exc:
                failed = True
                self.services_network.forget()  # it may have been removed meanwhile
                self._report(plan, _CONTAINER_ID.sub("<id>", str(exc)))
                self._backoff[uid] = (
                    self.clock.monotonic() + delay,
                    min(delay * 2, _RETRY_CAP_S),
                )
            else:
                self._failed.pop(uid, None)
                self._backoff.pop(uid, None)
        for uid in set(self._failed) - set(plans):
            del self._failed[uid]
        for uid in set(self._backoff) - set(plans):
            del self._backoff[uid]
        await self.udp.converge(live)
        return failed

    def _stale_dirs(self, wanted: set[str]) -> list[str]:
        if not self.state_dir.is_dir():
            return []
        return [p.name for p in self.state_dir.iterdir() if p.is_dir() and p.name not in wanted]

    async def _remove(self, state: ContainerState) -> None:
        log.info("service gateways: removing %s", state.name)
        with contextlib.suppress(ContainerRuntimeError):
            await self.runtime.remove_container(state.id)

    async def _create(self, plan: GatewayPlan, shared: str | None) -> str:
        """Make and start the gateway; returns its container id."""
        if not self._image_present:
            await self.runtime.ensure_image(self.image, PullPolicy.IF_NOT_PRESENT)
            self._image_present = True
        local = f"{self.network_prefix}-{plan.namespace}"
        await self.runtime.ensure_network(local, {"recon.dev/namespace": plan.namespace})
        extra: tuple[NetworkAttachment, ...] = ()
        if shared is not None:
            extra = (NetworkAttachment(shared, plan.qualified_names, plan.cluster_ip),)
        spec = ContainerSpec(
            name=f"recon_svc_{plan.name}_{plan.namespace}_{plan.uid}_{plan.spec_hash[:8]}",
            image=self.image,
            command=("sh",),
            args=("/gw/run",),
            mounts=(BindMount(str(self.state_dir / plan.uid), "/gw", read_only=True),),
            labels={
                AGENT_LABEL: self.agent_id,
                COMPONENT_LABEL: _COMPONENT,
                SERVICE_UID_LABEL: plan.uid,
                GATEWAY_HASH_LABEL: plan.spec_hash,
                _IMAGE_LABEL: self.image,
                _SHARED_LABEL: shared or "",
                "recon.dev/service": f"{plan.namespace}.{plan.name}",
            },
            network=local,
            network_aliases=plan.local_names,
            extra_networks=extra,
            memory_bytes=32 * 1024 * 1024,
        )
        container_id = await self.runtime.create_container(spec)
        try:
            await self.runtime.start_container(container_id)
        except BaseException:
            self._discarded.add(container_id)
            with contextlib.suppress(ContainerRuntimeError):
                await self.runtime.remove_container(container_id)
            raise
        log.info(
            "service gateways: %s/%s at %s on ports %s",
            plan.namespace,
            plan.name,
            plan.cluster_ip or "(no cluster IP)",
            ",".join([*map(str, plan.ports), *(f"{p}/udp" for p in plan.udp_ports)]),
        )
        return container_id

    def _report(self, plan: GatewayPlan, reason: str) -> None:
        if self._failed.get(plan.uid) == reason:
            return
        self._failed[plan.uid] = reason
        self._warn(
            plan, f"cannot run the gateway of Service {plan.namespace}/{plan.name}: {reason}"
        )

    def _report_udp(self, plan: GatewayPlan, reason: str) -> None:
        """A UDP port that cannot be relayed (`GatewayUdp` reports each reason once)."""
        self._warn(plan, f"gateway of Service {plan.namespace}/{plan.name}: {reason}")

    def _warn(self, plan: GatewayPlan, message: str) -> None:
        log.warning("service gateways: %s", message)
        service = self.services.get(plan.namespace, plan.name)
        if service is not None:
            self.recorder.record(service, "Warning", "FailedServiceGateway", message)
