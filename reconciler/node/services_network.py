"""The one services network of this host: where cluster IPs live (see `cluster_network`).

Both the pod workers (every sandbox joins it) and the service gateways (each holds its
cluster IP there) need it, so it is ensured once here and shared. Creating it can fail for
a reason the user must fix (another network already covers 10.96.0.0/12); then pods still
run and Services still answer by name on the namespace networks, only cluster IPs do not:
that is logged once, loudly, instead of failing every pod.
"""

from __future__ import annotations

import asyncio
import logging

from reconciler.cluster_network import (
    POD_ADDRESS_RANGE,
    SERVICE_CIDR,
    SERVICES_BRIDGE_ADDRESS,
    SERVICES_NETWORK,
)
from reconciler.runtime.base import ContainerRuntime, NetworkConfig
from reconciler.runtime.errors import ContainerRuntimeError, RuntimeUnavailableError

__all__ = ["ServicesNetwork"]

log = logging.getLogger(__name__)

CONFIG = NetworkConfig(
    subnet=str(SERVICE_CIDR),
    ip_range=str(POD_ADDRESS_RANGE),
    gateway=str(SERVICES_BRIDGE_ADDRESS),
)


class ServicesNetwork:
    def __init__(self, runtime: ContainerRuntime, name: str = SERVICES_NETWORK) -> None:
        self.runtime = runtime
        self.name = name
        self._ready = False
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> str | None:
        """The network's name once it exists, or None when it cannot be made."""
        if self._ready:
            return self.name
        async with self._lock:
            if self._ready:
                return self.name
            try:
                await self.runtime.ensure_network(
                    self.name, {"recon.dev/network": "services"}, CONFIG
                )
            except RuntimeUnavailableError:
                raise
            except ContainerRuntimeError as exc:
                if self._failure != str(exc):
                    self._failure = str(exc)
                    log.error(
                        "cannot create the services network %s over %s: %s; pods reach "
                        "Services by name only, not by cluster IP",
                        self.name,
                        SERVICE_CIDR,
                        exc,
                    )
                return None
            self._ready = True
            return self.name

    def forget(self) -> None:
        """Ensure it again next time (it may have been removed, or the engine restarted)."""
        self._ready = False
