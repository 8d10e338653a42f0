"""What every pod worker of one node shares: the runtime, the API, the clock, the caches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.client.base import Client
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.controllers.nodefit import Requests
from reconciler.node.backoff import Backoff
from reconciler.node.env import ObjectLookup
from reconciler.node.eviction_thresholds import EvictionConfig
from reconciler.node.pod_tokens import PodTokens
from reconciler.node.prober import Prober
from reconciler.node.services_network import ServicesNetwork
from reconciler.runtime.base import ContainerRuntime

__all__ = ["NodeContext", "NodeSettings"]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class NodeSettings:
    node_name: str
    agent_id: str = "recon"
    """Labels everything this agent creates on the engine (`AGENT_LABEL`), so two servers on
    one dockerd (tests, a twin next to a demo) never adopt or remove each other's pods."""
    pause_image: str = "registry.k8s.io/pause:3.10"
    host_ip: str = "127.0.0.1"
    allow_privileged: bool = False
    network_prefix: str = "recon"
    lease_duration_s: int = 40
    heartbeat_s: float = 10.0
    max_pods: int = 110
    """kubelet's `--max-pods`: the scheduler keeps pods beyond it Pending."""
    eviction: EvictionConfig = field(default_factory=EvictionConfig)
    """Node-pressure eviction (`eviction_manager.py`); no thresholds: none."""
    data_dir: Path | None = None
    """The server's data directory: the filesystem the `nodefs` signals measure (None: not
    measured)."""


@dataclass
class NodeContext:
    settings: NodeSettings
    runtime: ContainerRuntime
    client: Client
    clock: Clock
    prober: Prober
    recorder: EventRecorder
    lookup: ObjectLookup
    claim: Callable[[str, str], JSONDict | None]
    """(namespace, name) -> the PersistentVolumeClaim, or None."""
    service_env: Callable[[JSONDict], Mapping[str, str]]
    """pod -> the Service variables a container of it started now gets (shared, read-only)."""
    allocatable: dict[str, str] = field(default_factory=dict)
    crash_backoff: Backoff = field(default_factory=Backoff)
    pull_backoff: Backoff = field(default_factory=Backoff)
    networks: set[str] = field(default_factory=set)
    images_present: set[str] = field(default_factory=set)
    """Images known to be on the engine (the pause image: ensured once, not per pod)."""
    services_network: ServicesNetwork | None = None
    """Where cluster IPs live; every sandbox joins it (None: pods get no cluster DNS setup)."""
    tokens: PodTokens | None = None
    """ServiceAccount tokens for projected `serviceAccountToken` sources (None: none)."""
    volume: Callable[[str], JSONDict | None] = lambda _name: None
    """name -> the PersistentVolume, or None (what a bound claim's data are)."""
    admit: Callable[[JSONDict], str | None] = lambda _pod: None
    """pod new to the node -> why the node refuses it under pressure, or None."""
    node_requests: Callable[[str], Requests] = lambda _uid: Requests()
    """pod uid -> what the other pods running here request (for in-place resizes)."""

    @property
    def agent_id(self) -> str:
        return self.settings.agent_id

    def network_for(self, namespace: str) -> str:
        return f"{self.settings.network_prefix}-{namespace}"
