"""The Application controller as a kopf operator: `recon operator` and inside `recon serve`.

kopf watches Applications and holds the finalizer; the `AppManager` does the work. The same
code runs against the embedded plane (`recon serve` starts it in-process, logged in with the
kubeconfig the server wrote) and against any Kubernetes cluster (`recon operator
--kubeconfig K`, or in a pod with the manifests in `docs/operator/`). Its Kubernetes access
goes through Recon's own `Client` for syncs and status, and through kopf for the watch.

Deleting an Application prunes everything it deployed before the finalizer is released,
unless it carries `recon.dev/delete-policy: orphan`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import yaml

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError
from reconciler.gitops._kopf import kopf
from reconciler.gitops.application import GROUP, PLURAL, VERSION
from reconciler.schema.manifest_validation import PROJECT_SCHEMAS

__all__ = ["FINALIZER", "AppTracker", "ensure_crd", "kubeconfig_login", "run_operator"]

log = logging.getLogger(__name__)

FINALIZER = "recon.dev/application-cleanup"
CRD_FILE = PROJECT_SCHEMAS / "application-crd.yaml"


async def ensure_crd(client: Client) -> None:
    """Install the Application CRD on the target unless it is there already."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    name = crd["metadata"]["name"]
    try:
        await client.create(crd)
        log.info("installed the CustomResourceDefinition %s", name)
        return
    except AlreadyExistsError:
        pass
    except ClientError as e:
        raise RuntimeError(f"cannot install the Application CRD: {e.message}") from e
    # An older Recon's CRD would prune the fields this one added: bring it up to date.
    try:
        live = await client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        if live.get("spec") != crd["spec"]:
            live["spec"] = crd["spec"]
            await client.update(live)
            log.info("updated the CustomResourceDefinition %s", name)
    except ClientError as e:
        raise RuntimeError(f"cannot update the Application CRD: {e.message}") from e


def kubeconfig_login(path: Path) -> kopf.ConnectionInfo:
    """kopf's credentials from a kubeconfig's current context (token or client certificate,
    CA data or file), without asking anyone."""
    config = yaml.safe_load(path.read_text()) or {}
    current = config.get("current-context")

    def named(section: str, name: str) -> dict[str, Any]:
        for item in config.get(section) or []:
            if item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        raise kopf.LoginError(f"{path}: no {section[:-1]} named {name!r}")

    context = named("contexts", str(current))
    cluster = named("clusters", str(context.get("cluster")))
    user = named("users", str(context.get("user")))

    def data(entry: dict[str, Any], key: str) -> bytes | None:
        if entry.get(f"{key}-data"):
            return base64.b64decode(entry[f"{key}-data"])
        if entry.get(key):
            return (path.parent / str(entry[key])).read_bytes()
        return None

    return kopf.ConnectionInfo(
        server=str(cluster.get("server")),
        ca_data=data(cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=user.get("token"),
        certificate_data=data(user, "client-certificate"),
        private_key_data=data(user, "client-key"),
        default_namespace=context.get("namespace"),
    )


def _plain(body: Any) -> dict[str, Any]:
    """A kopf Body as the plain JSON object the manager reads."""
    return {
        "metadata": dict(body.get("metadata") or {}),
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


class AppTracker(Protocol):
    """What the handlers hand their work to: the `AppManager`, or a bridge to one on
    another event loop (`operator_thread.py`)."""

    def track(self, obj: dict[str, Any]) -> None: ...

    async def deleted(self, obj: dict[str, Any]) -> list[str]: ...


def build_registry(manager: AppTracker, kubeconfig: Path) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 310
        settings.networking.connect_timeout = 10
        settings.peering.standalone = True

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kubeconfig_login(kubeconfig)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def changed(body: kopf.Body, **_: Any) -> None:
        manager.track(_plain(body))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    async def deleted(body: kopf.Body, logger: Any, **_: Any) -> None:
        removed = await manager.deleted(_plain(body))
        if removed:
            logger.info("pruned %s", ", ".join(removed))

    return registry


async def run_operator(
    manager: AppTracker,
    kubeconfig: Path,
    stop: asyncio.Event | threading.Event,
    *,
    namespace: str | None = None,
    ready: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run until `stop` is set (the caller owns the manager's start and stop). kopf takes
    SIGINT and SIGTERM for itself when it starts in the main thread: a caller that handles
    them waits for `ready` and installs its handlers again."""
    registry = build_registry(manager, kubeconfig)
    await kopf.operator(
        registry=registry,
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else [],
        standalone=True,
        stop_flag=stop,
        ready_flag=ready,
    )
