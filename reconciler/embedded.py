"""The embedded control plane: the API server plus everything that reconciles inside it.

`recon serve` runs one `EmbeddedPlane`: the Kubernetes-compatible API server, then the
controllers (on the in-process client, so they get exactly the API's semantics without
HTTP). Later layers (the node agent, the GitOps operator) join here, and only here, so the
API server itself knows nothing about what runs on top of it.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import Clock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.cronjob import CronJobController
from reconciler.controllers.deployment import DeploymentController
from reconciler.controllers.endpoints import EndpointsController
from reconciler.controllers.job import JobController
from reconciler.controllers.replicaset import ReplicaSetController


class EmbeddedPlane:
    def __init__(self, options: ServerOptions, clock: Clock | None = None) -> None:
        self.server = ApiServer(options, clock)
        self.client = InProcessClient(self.server.service)
        self.controllers = ControllerManager(self.client, self.server.clock)
        self.controllers.add(ReplicaSetController(self.client, self.server.clock))
        self.controllers.add(DeploymentController(self.client, self.server.clock))
        self.controllers.add(JobController(self.client, self.server.clock))
        self.controllers.add(CronJobController(self.client, self.server.clock))
        self.controllers.add(EndpointsController(self.client, self.server.clock))

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig

    async def start(self) -> None:
        await self.server.start()
        await self.controllers.start()

    async def stop(self) -> None:
        await self.controllers.stop()
        await self.server.stop()
