"""The embedded control plane: the API server plus everything that reconciles inside it.

`recon serve` runs one `EmbeddedPlane`: the Kubernetes-compatible API server, then the
controllers and the scheduler (on the in-process client, so they get exactly the API's
semantics without HTTP), then the node agent that runs the pods on the container runtime.
Later layers (the GitOps operator) join here, and only here, so the API server itself knows
nothing about what runs on top of it.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from reconciler.apiserver import metrics_api
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.apiserver.token_request import issue_token
from reconciler.client.base import JSONDict
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import Clock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.clusterrole_aggregation import ClusterRoleAggregationController
from reconciler.controllers.cronjob import CronJobController
from reconciler.controllers.csr_cleaner import CsrCleaner
from reconciler.controllers.csr_signing import CsrSigningController
from reconciler.controllers.daemonset import DaemonSetController
from reconciler.controllers.deployment import DeploymentController
from reconciler.controllers.disruption import DisruptionController
from reconciler.controllers.endpoints import EndpointsController
from reconciler.controllers.hpa import HorizontalPodAutoscalerController
from reconciler.controllers.informer import InformerFactory
from reconciler.controllers.job import JobController
from reconciler.controllers.node_condition_taints import NodeConditionTaintController
from reconciler.controllers.persistentvolume import PersistentVolumeController
from reconciler.controllers.pvc_protection import PvcProtectionController
from reconciler.controllers.replicaset import ReplicaSetController
from reconciler.controllers.replication import ReplicationManager
from reconciler.controllers.resourcequota import ResourceQuotaController
from reconciler.controllers.root_ca import RootCaPublisher
from reconciler.controllers.sa_token_secrets import TokenSecretsController
from reconciler.controllers.scheduler import Scheduler
from reconciler.controllers.serviceaccounts import ServiceAccountsController
from reconciler.controllers.statefulset import StatefulSetController
from reconciler.node.agent import NodeAgent
from reconciler.node.claim_volumes import claim_volume_name
from reconciler.node.context import NodeSettings
from reconciler.node.dns_server import ClusterDnsServer
from reconciler.node.eviction_thresholds import EvictionConfig
from reconciler.node.metrics import DEFAULT_RESOLUTION_S, MetricsCollector
from reconciler.node.pod_tokens import TokenUnavailableError
from reconciler.node.prober import MemoryProber, NetworkProber, Prober
from reconciler.node.service_gateways import ServiceGateways
from reconciler.node.service_proxy import ServiceProxy
from reconciler.node.services_network import ServicesNetwork
from reconciler.node.streams import NodeStreams
from reconciler.runtime.base import ContainerRuntime
from reconciler.runtime.memdir import DEFAULT_MEMORY_DIR_ROOT

if TYPE_CHECKING:
    from reconciler.gitops.manager import AppManager
    from reconciler.gitops.operator_thread import OperatorThread
    from reconciler.gitops.webhook_receiver import WebhookReceiver
    from reconciler.node.api_access import ApiAccess
    from reconciler.node.ingress_proxy import IngressProxy

log = logging.getLogger(__name__)

DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_PROXY_IMAGE = "docker.io/library/busybox:1.36"


def default_node_name() -> str:
    """The host name, lower-cased to a DNS label as the kubelet does."""
    name = socket.gethostname().split(".")[0].lower()
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return cleaned or "recon-node"


def agent_id_for(data_dir: Path) -> str:
    """Unique per data directory: two servers on one engine never touch each other's pods."""
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class NodeOptions:
    runtime: Literal["docker", "memory", "none"] = "docker"
    pause_image: str = DEFAULT_PAUSE_IMAGE
    proxy_image: str = DEFAULT_PROXY_IMAGE
    node_name: str = ""
    allow_privileged: bool = False
    network_prefix: str = "recon"
    max_pods: int = 110
    ingress_http_port: int = 0
    """Where Ingresses answer over HTTP on 127.0.0.1 (0: no ingress; `recon serve`: 80)."""
    ingress_https_port: int = 0
    """... and over HTTPS (0: not at all; `recon serve`: 443)."""
    metric_resolution: float = DEFAULT_RESOLUTION_S
    """Seconds between two samples of the resource metrics (metrics-server's default 15)."""
    eviction: EvictionConfig = field(default_factory=EvictionConfig)
    """Node-pressure eviction (the kubelet's defaults: `--eviction-hard` and the rest)."""


class EmbeddedPlane:
    def __init__(
        self,
        options: ServerOptions,
        clock: Clock | None = None,
        node: NodeOptions | None = None,
        *,
        gitops: bool = False,
    ) -> None:
        self.server = ApiServer(options, clock)
        self.gitops_enabled = gitops
        self.apps: AppManager | None = None
        self.webhooks: WebhookReceiver | None = None
        self._operator: OperatorThread | None = None
        self.client = InProcessClient(self.server.service)
        clock = self.server.clock
        self.controllers = ControllerManager(self.client, clock)
        self.controllers.add(ReplicaSetController(self.client, clock))
        self.controllers.add(ReplicationManager(self.client, clock))
        self.controllers.add(DeploymentController(self.client, clock))
        self.controllers.add(JobController(self.client, clock))
        self.controllers.add(CronJobController(self.client, clock))
        self.controllers.add(EndpointsController(self.client, clock))
        self.controllers.add(StatefulSetController(self.client, clock))
        self.controllers.add(DaemonSetController(self.client, clock))
        self.controllers.add(DisruptionController(self.client, clock))
        self.controllers.add(PvcProtectionController(self.client, clock))
        self.controllers.add(NodeConditionTaintController(self.client, clock))
        self.controllers.add(ResourceQuotaController(self.client, clock))
        self.controllers.add(PersistentVolumeController(self.client, clock, claim_volume_name))
        self.controllers.add(
            HorizontalPodAutoscalerController(
                self.client, clock, metrics=lambda ns, sel: self._pod_metrics(ns, sel)
            )
        )
        self.controllers.add(Scheduler(self.client, clock))
        self.controllers.add(ServiceAccountsController(self.client, clock))
        self.controllers.add(ClusterRoleAggregationController(self.client, clock))
        self.controllers.add(
            CsrSigningController(self.client, clock, lambda spec, now: self._sign(spec, now))
        )
        self.controllers.add(CsrCleaner(self.client, clock))
        self.controllers.add(
            RootCaPublisher(self.client, clock, lambda: self.server.ca_certificate.decode())
        )
        self.controllers.add(
            TokenSecretsController(
                self.client,
                clock,
                self.server.signer.issue_legacy,
                lambda: self.server.ca_certificate,
            )
        )
        self.server.components = self._components  # `kubectl get cs` asks the controllers
        self.node_options = node or NodeOptions()
        self.agent_id = agent_id_for(options.data_dir)
        self.runtime: ContainerRuntime | None = None
        self.agent: NodeAgent | None = None
        self.proxy: ServiceProxy | None = None
        self.ingress: IngressProxy | None = None
        self.metrics: MetricsCollector | None = None
        self.api_access: ApiAccess | None = None
        self._routing_informers: InformerFactory | None = None
        self.gateways: ServiceGateways | None = None
        self.dns: ClusterDnsServer | None = None

    def _components(self) -> dict[str, str | None]:
        """`kubectl get cs`: the scheduler and the rest of the controllers, as upstream's
        separate processes would be probed; None for one that works, else what is wrong."""
        problems = self.controllers.problems()
        scheduler = problems.pop("scheduler", None)
        manager = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
        return {"scheduler": scheduler, "controller-manager": manager or None}

    def _sign(self, spec: Mapping[str, Any], now: datetime) -> str:
        """An approved client certificate request, signed with the cluster CA."""
        return self.server.client_signer().issue(spec, now)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig

    async def _connect_runtime(self) -> tuple[ContainerRuntime, Prober] | None:
        opts = self.node_options
        if opts.runtime == "none":
            return None
        if opts.runtime == "memory":
            from reconciler.runtime.memory import MemoryRuntime

            memory = MemoryRuntime(
                clock=self.server.clock, images=(opts.pause_image,), pullable=("*",)
            )
            return memory, MemoryProber(memory)
        from reconciler.runtime.docker import DockerRuntime

        docker = await DockerRuntime.connect(
            memory_dir_root=DEFAULT_MEMORY_DIR_ROOT / self.agent_id
        )
        return docker, NetworkProber()

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        if self.webhooks is None:
            return web.Response(status=503, text="the Application controller is not running")
        return await self.webhooks.handle(request)

    async def start(self) -> None:
        if self.gitops_enabled:
            self.server.public_routes["/webhooks"] = self._webhook
        await self.server.start()
        await self.controllers.start()
        await self._start_node()
        if self.gitops_enabled:
            await self._start_gitops()

    async def _start_gitops(self) -> None:
        """The Application controller, in-process: the same kopf operator `recon operator`
        runs against a cluster, logged in with the kubeconfig this server wrote."""
        from reconciler.gitops.manager import AppManager
        from reconciler.gitops.operator import ensure_crd
        from reconciler.gitops.operator_thread import OperatorThread
        from reconciler.gitops.sync import SyncEngine
        from reconciler.gitops.webhook_receiver import WebhookReceiver
        from reconciler.source.git import GitCache

        await ensure_crd(self.client)
        cache = GitCache(self.server.options.data_dir / "cache" / "git")
        engine = SyncEngine(self.client, cache)
        self.apps = AppManager(self.client, engine, self.server.clock)
        await self.apps.start()
        self.webhooks = WebhookReceiver(self.client, self.apps, self.server.clock)
        await self.webhooks.start()
        self._operator = OperatorThread(self.apps, self.server.kubeconfig)
        await self._operator.start()

    async def _start_node(self) -> None:
        connected = await self._connect_runtime()
        if connected is None:
            return
        self.runtime, prober = connected
        opts = self.node_options
        settings = NodeSettings(
            node_name=opts.node_name or default_node_name(),
            agent_id=self.agent_id,
            pause_image=opts.pause_image,
            allow_privileged=opts.allow_privileged,
            network_prefix=opts.network_prefix,
            max_pods=opts.max_pods,
            eviction=opts.eviction,
            data_dir=self.server.options.data_dir,
        )
        # Cluster IPs and Service names inside pods need real networking: Docker only.
        shared = ServicesNetwork(self.runtime) if opts.runtime == "docker" else None
        if shared is not None:
            # The pods' DNS server (headless and ExternalName names, everything else upstream),
            # up before the first pod asks.
            self.dns = ClusterDnsServer(
                self.client,
                agent_id=self.agent_id,
                services_network=shared,
                clock=self.server.clock,
            )
            await self.dns.start()
        self.agent = NodeAgent(
            self.client,
            self.runtime,
            self.server.clock,
            settings,
            prober,
            services_network=shared,
            token_issuer=self._issue_pod_token,
        )
        await self.agent.start()
        self.server.pod_streams = NodeStreams(self.runtime)
        # Resource metrics for `kubectl top` and the HorizontalPodAutoscaler.
        self.metrics = MetricsCollector(
            self.runtime,
            self.server.clock,
            settings.node_name,
            self.agent.pods.get,
            self.agent.pods.list,
            resolution=opts.metric_resolution,
        )
        self.metrics.start()
        self.server.metrics = self.metrics
        if opts.runtime == "docker":
            # Imported here: only a Docker node routes from the host (and the in-memory
            # runtime's benchmarks count every MB).
            from reconciler.node.api_access import ApiAccess
            from reconciler.node.ingress_proxy import IngressProxy

            # NodePort and LoadBalancer Services on 127.0.0.1, to the pods' published ports.
            # The node-port proxy and the ingress route from the same caches.
            informers = self._routing_informers = InformerFactory(self.client, self.server.clock)
            self.proxy = ServiceProxy(self.client, clock=self.server.clock, informers=informers)
            await self.proxy.start()
            if opts.ingress_http_port or opts.ingress_https_port:
                self.ingress = IngressProxy(
                    self.client,
                    http_port=opts.ingress_http_port,
                    https_port=opts.ingress_https_port,
                    clock=self.server.clock,
                    informers=informers,
                )
                await self.ingress.start()
            informers.start()
            assert shared is not None
            self.gateways = ServiceGateways(
                self.client,
                self.runtime,
                agent_id=self.agent_id,
                image=opts.proxy_image,
                state_dir=self.server.options.data_dir / "service-gateways",
                services_network=shared,
                network_prefix=opts.network_prefix,
                clock=self.server.clock,
            )
            await self.gateways.start()
            # The `kubernetes` Service: pods reach this API server (api_access.py).
            host = self.server.options.host
            self.api_access = ApiAccess(
                self.client,
                self.server.port,
                self.server.clock,
                shared,
                api_host="127.0.0.1" if host in ("0.0.0.0", "::") else host.strip("[]"),
            )
            self.api_access.start()

    async def stop(self) -> None:
        if self._operator is not None:
            await self._operator.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.apps is not None:
            await self.apps.stop()
        self.server.pod_streams = None
        if self.api_access is not None:
            await self.api_access.stop()
        if self.gateways is not None:
            await self.gateways.stop()
        if self.ingress is not None:
            await self.ingress.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        if self._routing_informers is not None:
            await self._routing_informers.stop()
        self.server.metrics = None
        if self.metrics is not None:
            await self.metrics.stop()
        if self.agent is not None:
            await self.agent.stop()
        if self.dns is not None:
            await self.dns.stop()
        if self.runtime is not None:
            await self.runtime.close()
        await self.controllers.stop()
        await self.server.stop()

    def _issue_pod_token(
        self, pod: JSONDict, audience: str | None, seconds: int
    ) -> tuple[str, float]:
        """A token of the pod's ServiceAccount bound to the pod, signed by this server (the
        node agent's projected `serviceAccountToken` sources): what a TokenRequest with
        `boundObjectRef` to the pod returns."""
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        name = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        spec: JSONDict = {
            "expirationSeconds": seconds,
            "boundObjectRef": {"kind": "Pod", "name": meta.get("name"), "uid": meta.get("uid")},
        }
        if audience:
            spec["audiences"] = [audience]
        server = self.server
        try:
            token, expires = issue_token(
                server.service, server.signer, server.clock, namespace, name, spec
            )
        except ApiError as exc:
            raise TokenUnavailableError(exc.message) from exc
        return token, float(expires)

    async def _pod_metrics(self, namespace: str, selector: str) -> list[JSONDict]:
        """The PodMetrics (metrics.k8s.io/v1beta1 items) of the pods `selector` matches in
        `namespace`, for the HorizontalPodAutoscaler controller: the same answer the API
        gives `GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods?labelSelector=...`.
        Empty without a node agent: HPAs then report that no metrics came back."""
        if self.metrics is None:
            return []
        query = {"labelSelector": selector} if selector else {}
        listing = metrics_api.answer("GET", ["namespaces", namespace, "pods"], query, self.metrics)
        return list(listing["items"])
