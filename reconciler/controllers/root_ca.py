"""The root CA publisher: every namespace has a `kube-root-ca.crt` ConfigMap holding the
CA that in-cluster clients verify the API server by (`ca.crt`), as upstream's
`root-ca-cert-publisher` keeps it. The ServiceAccount token volume every pod gets
(`apiserver/defaults.py`) projects it next to the token.

A namespace being deleted gets none (it would hold up the deletion); a ConfigMap deleted or
edited is made right on the next look: namespace events, and every `resync` seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

__all__ = ["ROOT_CA_CONFIGMAP", "RootCaPublisher"]

JSONDict = dict[str, Any]

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = "kubernetes.io/description"
_NOTE = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class RootCaPublisher:
    name = "root-ca-cert-publisher"

    def __init__(
        self, client: Client, clock: Clock, ca_pem: Callable[[], str], resync: float = 60.0
    ) -> None:
        self.client = client
        self.clock = clock
        self.ca_pem = ca_pem
        """The CA's PEM (read when needed: the server makes its CA when it starts)."""
        self.resync = resync
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.namespaces: Informer

    def setup(self, factory: InformerFactory) -> None:
        # ConfigMaps are not watched (a cache of every ConfigMap for one name per
        # namespace); each namespace is looked at again every `resync` seconds instead.
        self.namespaces = factory.informer("v1", "Namespace")

        def namespace(obj: JSONDict) -> None:
            self.queue.add(("", str((obj.get("metadata") or {}).get("name") or "")))

        self.namespaces.add_handlers(Handlers(namespace, lambda _o, n: namespace(n), None))

    async def reconcile(self, key: ObjKey) -> Result:
        _, name = key
        namespace = self.namespaces.get("", name)
        if namespace is None:
            return Result()
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        wanted = {"ca.crt": self.ca_pem()}
        try:
            live = await self.client.get("v1", "ConfigMap", ROOT_CA_CONFIGMAP, name)
        except NotFoundError:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": name,
                    "annotations": {DESCRIPTION: _NOTE},
                },
                "data": wanted,
            }
            with contextlib.suppress(AlreadyExistsError, NotFoundError):
                await self.client.create(body)
            return Result(requeue_after=self.resync)
        if live.get("data") != wanted:
            live["data"] = wanted
            with contextlib.suppress(ClientError):
                await self.client.update(live)
        return Result(requeue_after=self.resync)
