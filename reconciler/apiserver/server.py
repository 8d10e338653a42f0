"""Assembling and running the embedded control plane's API server.

`ApiServer` wires store, registry, object service, lifecycle (GC and namespaces), access
control (authentication, RBAC), the aiohttp app and TLS together, and bootstraps what a fresh
cluster has (the `default`, `kube-system`, `kube-public` and `kube-node-lease` namespaces and
the default RBAC policy, `rbac_bootstrap.py`). `recon serve` runs one; tests start one
in-process on an ephemeral port.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from reconciler import storage_classes
from reconciler.apiserver import errors, priority, rbac_bootstrap
from reconciler.apiserver.access import Access
from reconciler.apiserver.app import AppConfig, Handler, build_app
from reconciler.apiserver.authn import MASTERS, Authenticator
from reconciler.apiserver.authz import Authorizer
from reconciler.apiserver.component_status import Components
from reconciler.apiserver.csr import approval_attributes
from reconciler.apiserver.csr_signer import ClientSigner
from reconciler.apiserver.escalation import CURRENT_USER, EscalationGuard
from reconciler.apiserver.event_ttl import DEFAULT_TTL, EventExpiry
from reconciler.apiserver.lifecycle import Lifecycle
from reconciler.apiserver.metrics_api import MetricsSource
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.openapi import OpenAPIV3
from reconciler.apiserver.pki import (
    USER_NAME,
    ServerCredentials,
    ensure_credentials,
    load_ca,
    ssl_context,
)
from reconciler.apiserver.podio import PodStreams
from reconciler.apiserver.resources import ResourceRegistry, builtin_types
from reconciler.apiserver.sa_tokens import TokenSigner, load_or_create_key
from reconciler.clock import Clock, SystemClock
from reconciler.schema import definitions
from reconciler.store.sqlite import Store

log = logging.getLogger(__name__)

BOOT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ListenError(ValueError):
    """The --listen address is malformed or not allowed."""


def parse_listen(listen: str, allow_remote: bool = False) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:6443`); refuses non-loopback hosts unless allowed."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ListenError(f"--listen must be HOST:PORT, got {listen!r}")
    host = host.strip("[]") or "127.0.0.1"
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ListenError(f"--listen port {port} is out of range")
    if not allow_remote and not _is_loopback(host):
        raise ListenError(
            f"refusing to serve on non-loopback address {host!r}: pass --allow-remote to "
            "expose the API beyond this machine"
        )
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    kubernetes_version: str | None = None
    bookmark_interval: float = 60.0
    service_account_tokens: bool = False
    """Mount a ServiceAccount token volume into every new pod (`sa_admission.py`): for a
    server whose node agent issues the tokens (`recon serve`)."""
    event_ttl: timedelta = DEFAULT_TTL
    """How long an Event is kept after its last write (kube-apiserver's `--event-ttl`)."""


class ApiServer:
    """One embedded API server: call `start()`, then `stop()`; `port` is known after start."""

    def __init__(self, options: ServerOptions, clock: Clock | None = None) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        options.data_dir.mkdir(parents=True, exist_ok=True)
        self.defs = definitions.load(options.kubernetes_version)
        strict = definitions.load(options.kubernetes_version, strict=True)
        self.registry = ResourceRegistry(builtin_types(self.defs))
        self.store = Store(options.data_dir / "state.db")
        self.service = ObjectService(self.store, self.registry, self.defs, strict, self.clock)
        self.service.mount_service_account_tokens = options.service_account_tokens
        self.lifecycle = Lifecycle(self.service)
        self.event_expiry = EventExpiry(self.service, self.clock, options.event_ttl)
        # Signs ServiceAccount tokens; the key is kept in DATA_DIR/pki so tokens outlive a
        # restart. The legacy token controller signs with it too (embedded.py wires it).
        self.signer = TokenSigner(load_or_create_key(options.data_dir / "pki" / "sa.key"))
        self.authorizer = Authorizer(self.store)
        # Nobody grants RBAC permissions they do not hold (`escalation.py`).
        self.service.rbac_guard = EscalationGuard(self.authorizer, self._lookup).check
        # Approving a CSR needs `approve` on its signer (`csr.py`).
        self.service.csr_approval_guard = self._check_approval
        self._runner: web.AppRunner | None = None
        self.port = options.port
        self.credentials: ServerCredentials | None = None
        # Set by whoever runs pods (the node agent) so `kubectl logs` / `exec` reach them.
        self.pod_streams: PodStreams | None = None
        # Set by whoever measures the node, to serve metrics.k8s.io (`kubectl top`).
        self.metrics: MetricsSource | None = None
        # Set by whoever runs the controllers, for `kubectl get componentstatuses`.
        self.components: Components = lambda: {}
        # Path prefix -> handler for URLs that carry their own authentication (webhooks);
        # set before `start()`.
        self.public_routes: dict[str, Handler] = {}

    def bootstrap(self) -> None:
        ns_type = self.registry.lookup("", "v1", "namespaces")
        assert ns_type is not None
        for name in BOOT_NAMESPACES:
            if self.store.find(ns_type.storage_key, "", name) is None:
                self.service.create(
                    ns_type,
                    "",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                )
        # The default RBAC policy, the system PriorityClasses and the default StorageClass,
        # created only when missing: a user's edit is kept.
        rbac = "rbac.authorization.k8s.io"
        builtin = [
            (rbac, "clusterroles", rbac_bootstrap.cluster_roles()),
            (rbac, "clusterrolebindings", rbac_bootstrap.cluster_role_bindings()),
            ("scheduling.k8s.io", "priorityclasses", priority.system_classes()),
            ("storage.k8s.io", "storageclasses", [storage_classes.default_class()]),
        ]
        for group, plural, objects in builtin:
            rt = self.registry.lookup(group, "v1", plural)
            assert rt is not None
            for obj in objects:
                if self.store.find(rt.storage_key, "", obj["metadata"]["name"]) is None:
                    self.service.create(rt, "", obj)

    @property
    def ca_certificate(self) -> bytes:
        """The PEM of the CA clients trust this server by (`ca.crt` of token Secrets)."""
        return (self.options.data_dir / "pki" / "ca.crt").read_bytes()

    async def start(self) -> None:
        self.bootstrap()
        self.lifecycle.start()
        self.event_expiry.start()
        host, port = self.options.host, self.options.port
        if port == 0:
            port = _free_port(host)
        self.port = port
        self.credentials = ensure_credentials(self.options.data_dir, host, port)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        app = build_app(
            self.service,
            OpenAPIV3(self.defs, self.registry),
            self.clock,
            AppConfig(
                access=Access(
                    Authenticator(
                        self.credentials.token,
                        USER_NAME,
                        self.signer,
                        self._lookup,
                        self.clock,
                    ),
                    self.authorizer,
                    self.signer,
                ),
                server_address=address,
                bookmark_interval=self.options.bookmark_interval,
                components=lambda: self.components(),
            ),
            lambda: self.pod_streams,
            self.public_routes,
            lambda: self.metrics,
        )
        # Cancel a handler whose client hung up: a `kubectl logs -f` or watch left open on an
        # idle stream would otherwise wait for its next write to notice.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host, port, ssl_context=ssl_context(self.credentials), reuse_address=True
        )
        await site.start()
        log.info("serving the Kubernetes API on https://%s", address)

    def _check_approval(self, obj: dict[str, Any]) -> None:
        """The CertificateApproval admission plugin: whoever approves a CSR (over HTTP; not
        `system:masters`) may `approve` on `signers` for its signer's name or domain."""
        user = CURRENT_USER.get()
        if user is None or MASTERS in user.groups:
            return
        signer = str((obj.get("spec") or {}).get("signerName") or "")
        if any(self.authorizer.authorize(user, a).allowed for a in approval_attributes(signer)):
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise errors.forbidden(
            "certificatesigningrequests",
            name,
            "certificates.k8s.io",
            f'user not permitted to approve requests with signerName "{signer}"',
        )

    def client_signer(self) -> ClientSigner:
        """Signs approved `kubernetes.io/kube-apiserver-client` requests with the CA."""
        return ClientSigner(*load_ca(self.options.data_dir))

    def _lookup(self, resource: str, namespace: str, name: str) -> dict[str, object] | None:
        stored = self.store.find(resource, namespace, name)
        return None if stored is None else stored.body

    @property
    def kubeconfig(self) -> Path:
        assert self.credentials is not None
        return self.credentials.kubeconfig

    async def stop(self) -> None:
        self.store.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.event_expiry.stop()
        await self.lifecycle.stop()
        self.store.close()


def _free_port(host: str) -> int:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
