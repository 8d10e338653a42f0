"""The node as storage provisioner: one engine volume per PersistentVolumeClaim.

On Kubernetes a dynamically provisioned volume is named after its claim's uid (`pvc-<uid>`)
and, under the default reclaim policy `Delete`, goes when its claim goes. The node does the
same with named engine volumes:

- `recon-pvc-<claim uid>`: a claim deleted and created again under the same name starts
  empty, and two servers sharing one engine never share a volume;
- labelled with the agent (`AGENT_LABEL`, so each agent reclaims only its own, and a test
  can find what a server left) and, for people, `recon.dev/pvc=<namespace>.<claim>`;
- reclaimed by `ClaimReclaimer` once its claim is gone from the API and no container mounts
  it any more. A claim deleted with its pod (a namespace going) outlives the pod's
  containers by a moment: the engine refuses to remove a volume in use, and the sweep runs
  again when a pod that mounted a claim is finished with. No polling: the sweep runs at
  start, when a claim is deleted, and when such a pod is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from reconciler.node.containers import AGENT_LABEL
from reconciler.runtime.base import ContainerRuntime
from reconciler.runtime.errors import ContainerRuntimeError, ResourceInUseError

__all__ = [
    "CLAIM_VOLUME_PREFIX",
    "PVC_LABEL",
    "ClaimReclaimer",
    "claim_volume_labels",
    "claim_volume_name",
    "reclaimable",
]

log = logging.getLogger(__name__)

PVC_LABEL = "recon.dev/pvc"
"""`<namespace>.<claim>` on a claim's engine volume: which claim it holds, for people."""
CLAIM_VOLUME_PREFIX = "recon-pvc-"


def claim_volume_name(claim_uid: str) -> str:
    return f"{CLAIM_VOLUME_PREFIX}{claim_uid}"


def claim_volume_labels(agent_id: str, namespace: str, claim: str) -> dict[str, str]:
    return {AGENT_LABEL: agent_id, PVC_LABEL: f"{namespace}.{claim}"}


def reclaimable(volumes: Iterable[str], live_claim_uids: set[str]) -> list[str]:
    """The claim volumes among `volumes` whose claim is gone (purely computational).

    >>> reclaimable(["recon-pvc-a", "recon-pvc-b", "recon-1234-scratch"], {"a"})
    ['recon-pvc-b']
    """
    return sorted(
        v
        for v in volumes
        if v.startswith(CLAIM_VOLUME_PREFIX)
        and v.removeprefix(CLAIM_VOLUME_PREFIX) not in live_claim_uids
    )


class ClaimReclaimer:
    """Removes this agent's claim volumes whose claims are gone, whenever `poke`d."""

    def __init__(
        self, runtime: ContainerRuntime, agent_id: str, live_claim_uids: Callable[[], set[str]]
    ) -> None:
        self.runtime = runtime
        self.agent_id = agent_id
        self.live_claim_uids = live_claim_uids
        self._wake = asyncio.Event()

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Sweep now, then each time it is poked (until cancelled)."""
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sweep()
            except ContainerRuntimeError as exc:
                log.warning("reclaiming claim volumes: %s", exc)
            except Exception:
                log.exception("reclaiming claim volumes failed")

    async def sweep(self) -> list[str]:
        """Remove the volumes of claims that are gone; returns those still in use."""
        volumes = await self.runtime.list_volumes({AGENT_LABEL: self.agent_id})
        busy = []
        for volume in reclaimable(volumes, self.live_claim_uids()):
            try:
                await self.runtime.remove_volume(volume)
                log.info("removed volume %s: its claim is gone", volume)
            except ResourceInUseError:
                busy.append(volume)  # its pod is still stopping; it pokes us when done
        return busy
