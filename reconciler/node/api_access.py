"""Pods reach the API server, as on a cluster: `https://kubernetes.default.svc` (the
`kubernetes` Service in `default`, cluster IP 10.96.0.1, port 443) and
`$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.

The API listens on the host's loopback, which containers cannot reach. So `recon serve`
also listens on the host side of the services bridge (10.111.0.1, an ephemeral port: several
servers may share one engine, each with its own) and splices each connection to its own
API port, bytes only: TLS stays end to end, between the pod and the API server. The
`kubernetes` Service (no selector, as upstream's) gets an Endpoints object naming that
address and port, written here as the apiserver's endpoint reconciler does; the Service's
gateway (`service_gateways.py`) forwards to it like to any endpoint, its names resolve
like any Service's, and the node agent gives every pod the `KUBERNETES_SERVICE_*`
variables. Both objects are re-checked every `interval` seconds (deleted: made again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.cluster_network import SERVICES_BRIDGE_ADDRESS
from reconciler.node.services_network import ServicesNetwork
from reconciler.node.tcp_splice import splice

__all__ = ["ApiAccess", "master_endpoints", "master_service"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)


def master_service() -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
            "sessionAffinity": "None",
        },
    }


def master_endpoints(address: str, port: int) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ],
    }


class ApiAccess:
    """`ApiAccess(client, api_port, clock, services_network)`; `start()`, `stop()`."""

    def __init__(
        self,
        client: Client,
        api_port: int,
        clock: Clock,
        services_network: ServicesNetwork | None,
        *,
        api_host: str = "127.0.0.1",
        address: str = str(SERVICES_BRIDGE_ADDRESS),
        interval: float = 10.0,
    ) -> None:
        self.client = client
        self.api_host = api_host
        self.api_port = api_port
        self.clock = clock
        self.services_network = services_network
        self.address = address
        self.interval = interval
        self.port = 0
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="api-access")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.converge()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("api access: a round failed")
            await self.clock.sleep(self.interval)

    async def converge(self) -> None:
        """Listen (once the services bridge has our address), then make the Service and
        its Endpoints say where."""
        if self._server is None:
            try:
                if self.services_network is not None:
                    await self.services_network.ensure()
                self._server = await asyncio.start_server(self._accepted, self.address, 0)
            except OSError as exc:
                log.info("api access: cannot listen on %s yet: %s", self.address, exc)
                return
            self.port = int(self._server.sockets[0].getsockname()[1])
            log.info("api access: pods reach the API through %s:%s", self.address, self.port)
        await self._ensure(master_service(), check=None)
        await self._ensure(
            master_endpoints(self.address, self.port), check=lambda live: live.get("subsets")
        )

    async def _ensure(self, wanted: JSONDict, check: Any) -> None:
        meta = wanted["metadata"]
        try:
            live = await self.client.get(
                wanted["apiVersion"], wanted["kind"], meta["name"], "default"
            )
        except NotFoundError:
            with contextlib.suppress(AlreadyExistsError):
                await self.client.create(wanted)
            return
        except ClientError as exc:
            log.info("api access: %s: %s", wanted["kind"], exc)
            return
        if check is not None and check(live) != check(wanted):
            updated = {
                **wanted,
                "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]},
            }
            try:
                await self.client.update(updated)
            except ClientError as exc:
                log.info("api access: %s: %s", wanted["kind"], exc)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(self.api_host, self.api_port)
            except OSError:
                writer.transport.abort()
                return
            await splice(reader, writer, up_reader, up_writer)
        finally:
            writer.close()
            if task is not None:
                self._connections.discard(task)
