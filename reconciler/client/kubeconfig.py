"""Reading a kubeconfig the way kubectl does: which server, which credentials, which namespace.

Lookup order for the file: an explicit path, then `KUBECONFIG` (the first existing file of
the colon-separated list), then `~/.kube/config`. Certificate and key data may be inline
(`*-data`, base64) or file paths relative to the kubeconfig's folder.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

JSONDict = dict[str, Any]


class KubeconfigError(Exception):
    """The kubeconfig is missing, malformed, or names a context it does not define."""


@dataclass(frozen=True)
class ClusterAccess:
    server: str
    namespace: str
    token: str | None
    ssl: ssl.SSLContext | bool  # False: TLS verification off (insecure-skip-tls-verify)
    source: Path


def find_kubeconfig(path: str | Path | None = None) -> Path:
    if path:
        found = Path(path).expanduser()
        if not found.exists():
            raise KubeconfigError(f"kubeconfig {found} does not exist")
        return found
    env = os.environ.get("KUBECONFIG")
    if env:
        for part in env.split(os.pathsep):
            if part and Path(part).expanduser().exists():
                return Path(part).expanduser()
        raise KubeconfigError(f"no file of KUBECONFIG={env} exists")
    default = Path("~/.kube/config").expanduser()
    if default.exists():
        return default
    raise KubeconfigError(
        "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or start `recon serve` and use "
        "--data-dir"
    )


def _named(items: Any, name: str, what: str, source: Path) -> JSONDict:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise KubeconfigError(f"{source}: no {what} named {name!r}")


def _material(entry: JSONDict, key: str, base: Path) -> bytes | None:
    data = entry.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = entry.get(key)
    if path:
        full = Path(path) if Path(path).is_absolute() else base / path
        return full.read_bytes()
    return None


def load_access(path: str | Path | None = None, context: str | None = None) -> ClusterAccess:
    source = find_kubeconfig(path)
    try:
        config = yaml.safe_load(source.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise KubeconfigError(f"{source}: cannot read kubeconfig: {e}") from e
    name = context or config.get("current-context")
    if not name:
        raise KubeconfigError(f"{source}: no current-context and no --context given")
    ctx = _named(config.get("contexts"), name, "context", source)
    cluster = _named(config.get("clusters"), ctx.get("cluster", ""), "cluster", source)
    user = (
        _named(config.get("users"), ctx.get("user", ""), "user", source) if ctx.get("user") else {}
    )
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeconfigError(f"{source}: cluster {ctx.get('cluster')!r} has no server")
    base = source.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    context_ssl: ssl.SSLContext | bool
    if cluster.get("insecure-skip-tls-verify"):
        context_ssl = False
    else:
        context_ssl = ssl.create_default_context()
        ca = _material(cluster, "certificate-authority", base)
        if ca:
            context_ssl.load_verify_locations(cadata=ca.decode())
    cert = _material(user, "client-certificate", base)
    key = _material(user, "client-key", base)
    if cert and key:
        if context_ssl is False:
            context_ssl = ssl.create_default_context()
            context_ssl.check_hostname = False
            context_ssl.verify_mode = ssl.CERT_NONE
        assert isinstance(context_ssl, ssl.SSLContext)
        # ssl wants files; keep them only as long as loading takes.
        with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
            cert_file.write(cert)
            cert_file.flush()
            key_file.write(key)
            key_file.flush()
            context_ssl.load_cert_chain(cert_file.name, key_file.name)
    if isinstance(context_ssl, ssl.SSLContext):
        context_ssl.set_alpn_protocols(["http/1.1"])
    return ClusterAccess(
        server=server.rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        token=str(token) if token else None,
        ssl=context_ssl,
        source=source,
    )
