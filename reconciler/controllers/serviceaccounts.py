"""The serviceaccounts controller: every namespace has a `default` ServiceAccount.

As upstream's `serviceaccounts-controller`: a namespace that is not terminating gets a
ServiceAccount named `default`, and gets it back when someone deletes it. Pods that name no
ServiceAccount run as `default`; RoleBindings to `system:serviceaccount:NS:default` need it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

__all__ = ["DEFAULT_ACCOUNT", "ServiceAccountsController", "needs_default_account"]

JSONDict = dict[str, Any]

DEFAULT_ACCOUNT = "default"


def needs_default_account(namespace: JSONDict | None, account: JSONDict | None) -> bool:
    """Should the `default` ServiceAccount be created in `namespace`? Not in a namespace
    that is gone or going (it would hold up the namespace's deletion)."""
    if namespace is None or account is not None:
        return False
    meta = namespace.get("metadata") or {}
    phase = (namespace.get("status") or {}).get("phase")
    return not meta.get("deletionTimestamp") and phase != "Terminating"


class ServiceAccountsController:
    name = "serviceaccounts"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.namespaces: Informer
        self.accounts: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.namespaces = factory.informer("v1", "Namespace")
        self.accounts = factory.informer("v1", "ServiceAccount")

        def namespace(obj: JSONDict) -> None:
            self.queue.add(("", str((obj.get("metadata") or {}).get("name") or "")))

        def account_gone(obj: JSONDict) -> None:
            meta = obj.get("metadata") or {}
            if meta.get("name") == DEFAULT_ACCOUNT:
                self.queue.add(("", str(meta.get("namespace") or "")))

        self.namespaces.add_handlers(Handlers(namespace, lambda _o, n: namespace(n), None))
        self.accounts.add_handlers(Handlers(None, None, account_gone))

    async def reconcile(self, key: ObjKey) -> Result:
        _, namespace = key
        if not needs_default_account(
            self.namespaces.get("", namespace), self.accounts.get(namespace, DEFAULT_ACCOUNT)
        ):
            return Result()
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_ACCOUNT, "namespace": namespace},
        }
        # A namespace deleted meanwhile (404), or an account the cache has not seen yet.
        with contextlib.suppress(AlreadyExistsError, NotFoundError):
            await self.client.create(account)
        return Result()
