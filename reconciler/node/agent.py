"""The node agent (Recon's kubelet): runs the pods bound to this node on the container engine.

It owns one `PodWorker` per pod uid bound here and routes facts to them: a new version of
the pod (from the pod informer), a change to a ConfigMap or Secret the pod references (its
files are rewritten, a container stuck on a missing key retries), an engine event for one of
the pod's containers (it exited: restart policy and back-off decide the rest). Workers are
level-triggered, so a missed poke only delays, never breaks.

Restart safety: at start, after the caches are in sync, everything this agent left on the
engine (found by `AGENT_LABEL`) whose pod is no longer bound here is removed — containers,
emptyDir volumes, memory dirs, and the volumes of claims that are gone (`claim_volumes`) —
and the pods that are still here get workers that re-adopt their running containers by
label. When the engine goes away (dockerd restarts) the event subscription is renewed and
every worker resyncs: dead sandboxes are re-created, so pods come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.client.base import Client
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.controllers.informer import Handlers, Informer, InformerFactory
from reconciler.controllers.nodefit import NodeUsage, Requests, pod_requests
from reconciler.node.claim_volumes import ClaimReclaimer, claim_volume_name
from reconciler.node.containers import AGENT_LABEL
from reconciler.node.context import NodeContext, NodeSettings
from reconciler.node.engine_events import follow_engine_events
from reconciler.node.eviction_manager import EvictionManager
from reconciler.node.eviction_signals import Signals, measure
from reconciler.node.node_status import NodeRegistration, allocatable_of
from reconciler.node.pod_tokens import PodTokens, TokenIssuer
from reconciler.node.pod_worker import PodWorker, remove_pod_resources
from reconciler.node.prober import NetworkProber, Prober
from reconciler.node.service_env import ServiceEnvCache
from reconciler.node.services_network import ServicesNetwork
from reconciler.node.volume_files import has_token_volume
from reconciler.runtime.base import (
    POD_UID_LABEL,
    ContainerRuntime,
    ContainerState,
    EventStream,
    RuntimeEvent,
)
from reconciler.runtime.errors import ContainerRuntimeError, ResourceInUseError
from reconciler.storage_classes import ENGINE_PROVISIONER

__all__ = ["NodeAgent", "pod_references"]

JSONDict = dict[str, Any]
Ref = tuple[str, str, str]  # (kind, namespace, name)

log = logging.getLogger(__name__)

_TOKEN_REFRESH_S = 60.0


def _claim_names(pod: JSONDict) -> set[str]:
    """The PersistentVolumeClaims the pod mounts."""
    return {
        str(volume["persistentVolumeClaim"].get("claimName") or "")
        for volume in (pod.get("spec") or {}).get("volumes") or []
        if isinstance(volume.get("persistentVolumeClaim"), dict)
    }


def pod_references(pod: JSONDict) -> tuple[set[Ref], set[Ref]]:
    """(ConfigMaps/Secrets mounted as files, those read into env) the pod references."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    spec = pod.get("spec") or {}
    files: set[Ref] = set()
    env: set[Ref] = set()
    for volume in spec.get("volumes") or []:
        sources: list[JSONDict] = [volume]
        sources += [s for s in (volume.get("projected") or {}).get("sources") or []]
        for source in sources:
            if isinstance(source.get("configMap"), dict):
                files.add(("ConfigMap", namespace, str(source["configMap"].get("name") or "")))
            secret = source.get("secret")
            if isinstance(secret, dict):
                name = secret.get("secretName") or secret.get("name") or ""
                files.add(("Secret", namespace, str(name)))
    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    for container in containers:
        for entry in container.get("envFrom") or []:
            if isinstance(entry.get("configMapRef"), dict):
                env.add(("ConfigMap", namespace, str(entry["configMapRef"].get("name") or "")))
            if isinstance(entry.get("secretRef"), dict):
                env.add(("Secret", namespace, str(entry["secretRef"].get("name") or "")))
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if isinstance(source.get("configMapKeyRef"), dict):
                env.add(("ConfigMap", namespace, str(source["configMapKeyRef"].get("name") or "")))
            if isinstance(source.get("secretKeyRef"), dict):
                env.add(("Secret", namespace, str(source["secretKeyRef"].get("name") or "")))
    for secret_ref in spec.get("imagePullSecrets") or []:
        env.add(("Secret", namespace, str(secret_ref.get("name") or "")))
    return files, env


def _active(worker: PodWorker) -> bool:
    """Whether the worker's pod still runs here (not gone, deleted or finished)."""
    pod = worker.pod
    return (
        not worker.gone
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )


def _host_signals(data_dir: Path | None, engine_root: str) -> Signals:
    """This host's eviction signals: the data dir's filesystem (nodefs) when there is one,
    the engine's root (imagefs) when it is on this host."""
    image_dir = Path(engine_root) if engine_root and Path(engine_root).is_dir() else None
    return lambda: measure(data_dir, image_dir)


class _CachedObjects:
    """`ObjectLookup` served from the agent's informers (no API round trip per container)."""

    def __init__(self, configmaps: Informer, secrets: Informer) -> None:
        self._configmaps = configmaps
        self._secrets = secrets

    def configmap(self, namespace: str, name: str) -> JSONDict | None:
        return self._configmaps.get(namespace, name)

    def secret(self, namespace: str, name: str) -> JSONDict | None:
        return self._secrets.get(namespace, name)


class NodeAgent:
    def __init__(
        self,
        client: Client,
        runtime: ContainerRuntime,
        clock: Clock,
        settings: NodeSettings,
        prober: Prober | None = None,
        services_network: ServicesNetwork | None = None,
        token_issuer: TokenIssuer | None = None,
        signals: Signals | None = None,
    ) -> None:
        """`signals`: what node-pressure eviction measures (None: this host's)."""
        self.client = client
        self._signals = signals
        self.runtime = runtime
        self.clock = clock
        self.settings = settings
        self.factory = InformerFactory(client, clock)
        self.pods = self.factory.informer("v1", "Pod")
        self.configmaps = self.factory.informer("v1", "ConfigMap")
        self.secrets = self.factory.informer("v1", "Secret")
        self.claims = self.factory.informer("v1", "PersistentVolumeClaim")
        self.volumes = self.factory.informer("v1", "PersistentVolume")
        self.services = self.factory.informer("v1", "Service")
        self.namespaces = self.factory.informer("v1", "Namespace")
        self.recorder = EventRecorder(client, clock, "kubelet", settings.node_name)
        self.service_env = ServiceEnvCache(self.services.list, self._master_services)
        self.ctx = NodeContext(
            settings=settings,
            runtime=runtime,
            client=client,
            clock=clock,
            prober=prober or NetworkProber(),
            recorder=self.recorder,
            lookup=_CachedObjects(self.configmaps, self.secrets),
            claim=lambda ns, name: self.claims.get(ns, name),
            service_env=self.service_env.for_pod,
            services_network=services_network,
            tokens=PodTokens(token_issuer, clock) if token_issuer is not None else None,
            volume=lambda name: self.volumes.get("", name),
        )
        self.reclaimer = ClaimReclaimer(runtime, settings.agent_id, self._live_claim_uids)
        self.workers: dict[str, PodWorker] = {}
        self._refs: dict[str, tuple[set[Ref], set[Ref]]] = {}
        self._registration: NodeRegistration | None = None
        self.eviction: EvictionManager | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        info = await self.runtime.engine_info()
        self.ctx.allocatable = allocatable_of(info, self.settings.max_pods)
        signals = self._signals or _host_signals(self.settings.data_dir, info.root_dir)
        eviction = EvictionManager(
            self.settings.eviction,
            self.clock,
            signals,
            pods=self._running_pods,
            memory_use=self._memory_use,
            evict=self._evict,
            cleaned_up=self._cleaned_up,
            recorder=self.recorder,
            node=self._node_reference,
            conditions_changed=self._conditions_changed,
        )
        self.eviction = eviction
        self.ctx.admit = eviction.admit
        self.ctx.node_requests = self._requests_beside
        self._registration = NodeRegistration(
            self.client,
            self.clock,
            self.settings,
            info,
            self.runtime.name,
            pressure=lambda: eviction.conditions,
        )
        await self._registration.register()
        self.factory.start()
        await self.factory.wait_synced()
        stream = await self.runtime.events()  # subscribe before listing: nothing is lost
        await self.remove_orphans()
        changed = self.service_env.service_changed  # before any pod worker reads it
        self.services.add_handlers(
            Handlers(on_add=changed, on_update=lambda _old, new: changed(new), on_delete=changed)
        )
        self.pods.add_handlers(
            Handlers(
                on_add=self._pod_seen,
                on_update=lambda _old, new: self._pod_seen(new),
                on_delete=self._pod_deleted,
            )
        )
        referenced = Handlers(
            on_add=self._object_changed,
            on_update=lambda _old, new: self._object_changed(new),
            on_delete=self._object_changed,
        )
        self.configmaps.add_handlers(referenced)
        self.secrets.add_handlers(referenced)
        self.claims.add_handlers(
            Handlers(
                on_add=self._claim_changed,
                on_update=lambda _old, new: self._claim_changed(new),  # bound: pods may start
                on_delete=lambda _c: self.reclaimer.poke(),
            )
        )
        self.volumes.add_handlers(
            Handlers(
                on_add=self._volume_changed,
                on_update=lambda _old, new: self._volume_changed(new),
                on_delete=lambda _v: self.reclaimer.poke(),  # its engine volume may go now
            )
        )
        self.namespaces.add_handlers(Handlers(on_delete=self._namespace_deleted))
        if self.ctx.tokens is not None:
            # A pod made before its namespace's ServiceAccount waits for it (FailedMount of
            # its token volume): look again as soon as the account is there.
            accounts = self.factory.informer("v1", "ServiceAccount")
            accounts.add_handlers(Handlers(on_add=self._account_added))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._engine_events(stream), name="node-events"))
        self._tasks.append(loop.create_task(self.reclaimer.run(), name="node-reclaim"))
        if self.ctx.tokens is not None:
            self._tasks.append(loop.create_task(self._refresh_tokens(), name="node-tokens"))
        self._registration.start()
        eviction.start()

    async def stop(self) -> None:
        """Stop managing pods; their containers keep running for the next agent to adopt."""
        self._stopping = True
        if self.eviction is not None:
            await self.eviction.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())))
        self.workers.clear()
        if self._registration is not None:
            await self._registration.stop()
        await self.factory.stop()
        await self.recorder.flush()
        await self.recorder.close()

    # -- routing -------------------------------------------------------------------------

    def _bound_here(self, pod: JSONDict) -> bool:
        return (pod.get("spec") or {}).get("nodeName") == self.settings.node_name

    def _pod_seen(self, pod: JSONDict) -> None:
        if self._stopping or not self._bound_here(pod):
            return
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        self._refs[uid] = pod_references(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = PodWorker(self.ctx, pod)
        self.workers[uid] = worker
        worker.start(on_done=lambda: self._forget(uid, worker))

    async def _refresh_tokens(self) -> None:
        """Every minute, pods holding a ServiceAccount token past 80 % of its life rewrite
        their token files with a new one (`pod_tokens.py`), as the kubelet does; the others
        are left alone (a worker's pass asks the engine about its containers)."""
        tokens = self.ctx.tokens
        assert tokens is not None
        while True:
            await self.clock.sleep(_TOKEN_REFRESH_S)
            for uid, worker in list(self.workers.items()):
                if tokens.due(uid):
                    worker.poke(files_changed=True)

    def _forget(self, uid: str, worker: PodWorker) -> None:
        if self.workers.get(uid) is worker:
            del self.workers[uid]
            self._refs.pop(uid, None)
            if self.ctx.tokens is not None:
                self.ctx.tokens.forget(uid)
        if _claim_names(worker.pod):
            self.reclaimer.poke()  # a claim deleted before its pod was done can go now

    def _pod_deleted(self, pod: JSONDict) -> None:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(None)

    def _object_changed(self, obj: JSONDict) -> None:
        meta = obj.get("metadata") or {}
        ref = (str(obj.get("kind") or ""), str(meta.get("namespace")), str(meta.get("name")))
        for uid, (files, env) in self._refs.items():
            worker = self.workers.get(uid)
            if worker is not None and (ref in files or ref in env):
                worker.poke(files_changed=ref in files)

    def _claim_changed(self, claim: JSONDict) -> None:
        meta = claim.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        for worker in self.workers.values():
            if worker.namespace == namespace and name in _claim_names(worker.pod):
                worker.poke()

    def _volume_changed(self, volume: JSONDict) -> None:
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref:
            claim = self.claims.get(str(ref.get("namespace") or ""), str(ref.get("name") or ""))
            if claim is not None:
                self._claim_changed(claim)

    def _live_claim_uids(self) -> set[str]:
        """The claims whose engine volumes stay: those that exist, and those whose
        provisioned PersistentVolume is kept after them (reclaim policy Retain)."""
        live = {str((c.get("metadata") or {}).get("uid")) for c in self.claims.list()}
        prefix = claim_volume_name("")
        for volume in self.volumes.list():
            csi = (volume.get("spec") or {}).get("csi") or {}
            handle = str(csi.get("volumeHandle") or "")
            if csi.get("driver") == ENGINE_PROVISIONER and handle.startswith(prefix):
                live.add(handle[len(prefix) :])
        return live

    def _master_services(self) -> list[JSONDict]:
        master = self.services.get("default", "kubernetes")
        return [master] if master else []

    # -- the engine ----------------------------------------------------------------------

    async def _engine_events(self, stream: EventStream) -> None:
        def seen(event: RuntimeEvent) -> None:
            uid = event.labels.get(POD_UID_LABEL)
            worker = self.workers.get(uid) if uid else None
            if worker is not None:
                worker.poke()

        def resync() -> None:
            for worker in list(self.workers.values()):
                worker.poke()  # whatever happened while we were deaf, look again

        await follow_engine_events(self.runtime, self.clock, stream, seen, resync, "node agent")

    def _account_added(self, account: JSONDict) -> None:
        namespace = (account.get("metadata") or {}).get("namespace")
        for worker in list(self.workers.values()):
            if worker.namespace == namespace and has_token_volume(worker.pod):
                worker.poke(files_changed=True)

    def _namespace_deleted(self, namespace: JSONDict) -> None:
        name = str((namespace.get("metadata") or {}).get("name") or "")
        if name and not self._stopping:
            task = asyncio.get_running_loop().create_task(
                self._remove_namespace_network(name), name=f"node-network-{name}"
            )
            self._tasks.append(task)

    async def _remove_namespace_network(self, namespace: str) -> None:
        """A deleted namespace's Docker network goes once nothing uses it any more (its pods
        finish terminating, its Service gateways go); another server's containers on the
        same engine may still hold it, and then it stays."""
        network = self.ctx.network_for(namespace)
        for _ in range(120):
            if not any(w.namespace == namespace for w in self.workers.values()):
                try:
                    await self.runtime.remove_network(network)
                except ResourceInUseError:
                    pass  # a pod or gateway is still on its way out: look again
                except ContainerRuntimeError as exc:
                    log.info("cannot remove network %s: %s", network, exc)
                    return
                else:
                    self.ctx.networks.discard(network)
                    log.info("removed network %s of deleted namespace %s", network, namespace)
                    return
            await self.clock.sleep(1.0)

    async def remove_orphans(self) -> None:
        """Remove what this agent left on the engine for pods no longer bound here."""
        wanted = {
            str((p.get("metadata") or {}).get("uid"))
            for p in self.pods.list()
            if self._bound_here(p)
        }
        records = await self.runtime.list_containers({AGENT_LABEL: self.settings.agent_id})
        by_uid: dict[str, list[ContainerState]] = {}
        for record in records:
            uid = record.labels.get(POD_UID_LABEL)
            if uid:
                by_uid.setdefault(uid, []).append(record)
        stale = (set(by_uid) | await self.runtime.list_memory_dir_pods()) - wanted
        for uid in sorted(stale):
            log.info("removing containers of pod %s, which is no longer bound here", uid)
            await remove_pod_resources(self.ctx, uid, by_uid.get(uid, []))

    # -- node-pressure eviction -----------------------------------------------------------

    def _running_pods(self) -> list[JSONDict]:
        return [w.pod for w in self.workers.values() if _active(w)]

    async def _memory_use(self, pod: JSONDict) -> dict[str, int]:
        """Container name -> memory working set of the pod's running app containers."""
        use: dict[str, int] = {}
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            container_id = str(status.get("containerID") or "").rpartition("://")[2]
            if not container_id or "running" not in (status.get("state") or {}):
                continue
            try:
                usage = await self.runtime.usage(container_id)
            except ContainerRuntimeError:
                usage = None
            if usage is not None:
                use[str(status.get("name"))] = usage.memory_bytes
        return use

    def _evict(self, pod: JSONDict, message: str, grace: float) -> bool:
        worker = self.workers.get(str((pod.get("metadata") or {}).get("uid") or ""))
        return worker is not None and worker.evict(message, grace)

    def _cleaned_up(self, uid: str) -> bool:
        worker = self.workers.get(uid)
        return worker is None or worker.finished

    def _requests_beside(self, uid: str) -> Requests:
        """What the pods running here other than `uid` request of the node."""
        total = NodeUsage()
        for other, worker in self.workers.items():
            if other != uid and _active(worker):
                total = total.plus(pod_requests(worker.pod.get("spec") or {}))
        return Requests(total.cpu_millis, total.memory_bytes)

    def _conditions_changed(self) -> None:
        if self._registration is not None:
            self._registration.refresh()

    def _node_reference(self) -> JSONDict:
        name = self.settings.node_name
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": name}}

    def pods_running_here(self) -> Iterable[str]:
        return list(self.workers)
