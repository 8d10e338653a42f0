"""Image pull policy and registry credentials, as the kubelet applies them.

`imagePullPolicy` is defaulted by the API server (Always for `:latest` or no tag,
IfNotPresent otherwise); credentials come from the pod's `imagePullSecrets`
(`kubernetes.io/dockerconfigjson` or the older `.dockercfg`), matched by registry host.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from reconciler.node.env import ObjectLookup
from reconciler.runtime.base import PullPolicy, RegistryAuth

__all__ = ["pull_policy", "registry_auth", "registry_host"]

JSONDict = dict[str, Any]


def pull_policy(container: JSONDict) -> PullPolicy:
    policy = container.get("imagePullPolicy")
    if policy in ("Always", "IfNotPresent", "Never"):
        return PullPolicy(policy)
    image = str(container.get("image") or "")
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return PullPolicy.IF_NOT_PRESENT
    tag = last.partition(":")[2]
    return PullPolicy.ALWAYS if tag in ("", "latest") else PullPolicy.IF_NOT_PRESENT


def registry_host(image: str) -> str:
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _entries(secret: JSONDict) -> dict[str, Any]:
    data = secret.get("data") or {}
    for key in (".dockerconfigjson", ".dockercfg"):
        if key in data:
            try:
                parsed = json.loads(base64.b64decode(str(data[key])))
            except (binascii.Error, ValueError):
                return {}
            if not isinstance(parsed, dict):
                return {}
            auths = parsed.get("auths", parsed) if key == ".dockerconfigjson" else parsed
            return auths if isinstance(auths, dict) else {}
    return {}


def _host_of(key: str) -> str:
    text = key.removeprefix("https://").removeprefix("http://")
    return text.split("/", 1)[0]


def registry_auth(pod: JSONDict, image: str, lookup: ObjectLookup) -> RegistryAuth | None:
    """Credentials for pulling `image` from the pod's imagePullSecrets, if any match."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    host = registry_host(image)
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        secret = lookup.secret(namespace, str(ref.get("name") or ""))
        if secret is None:
            continue
        for key, entry in _entries(secret).items():
            if not isinstance(entry, dict) or _host_of(key) not in (host, f"index.{host}"):
                continue
            username, password = entry.get("username"), entry.get("password")
            if (not username or not password) and entry.get("auth"):
                try:
                    decoded = base64.b64decode(str(entry["auth"])).decode()
                except (binascii.Error, ValueError):
                    continue
                username, _, password = decoded.partition(":")
            if username and password:
                return RegistryAuth(str(username), str(password), server=_host_of(key))
    return None
