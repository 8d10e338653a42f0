"""A container's environment, computed the way the kubelet does it.

Order (later wins): the Service variables (`service_env.pod_service_env` decides which,
honouring `enableServiceLinks`), then `envFrom` sources in order, then `env` in order, each
`value` expanded with `$(NAME)` references to what is already defined (`$$` escapes). A
reference to a missing ConfigMap, Secret or key fails the container with
`CreateContainerConfigError` (`ConfigError` here), unless it is marked optional. Pure: the
objects come through `ObjectLookup`, so the agent can serve them from its caches.

The result is an `Environment`: the container's own variables layered over the Service
variables, which are shared by every pod of the namespace (`service_env.ServiceEnvCache`)
and never copied into each container (with hundreds of Services they are most of it).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from reconciler.quantity import QuantityError, parse_quantity

__all__ = [
    "ConfigError",
    "Environment",
    "ObjectLookup",
    "container_env",
    "expand",
    "field_value",
]

JSONDict = dict[str, Any]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(?P<key>[^']+)'\]$")


class ConfigError(Exception):
    """The container cannot be configured (`CreateContainerConfigError`): the message is the
    one users see in `kubectl describe pod`."""


_NOTHING: Mapping[str, str] = MappingProxyType({})


class Environment(Mapping[str, str]):
    """A container's environment, read-only: its own variables over shared ones.

    Reads and iteration give exactly the dict `shared | own` would (same keys, values and
    order: the shared keys first, each in its place even when `own` overrides it, then
    own's other keys in their order), without copying `shared`. Nobody changes `own` once
    the environment is handed out (`container_env` fills it first and keeps no reference).
    """

    __slots__ = ("_own", "_shared")

    def __init__(self, own: Mapping[str, str], shared: Mapping[str, str] = _NOTHING) -> None:
        self._own = own
        self._shared = shared

    @property
    def shared(self) -> Mapping[str, str]:
        return self._shared

    def __getitem__(self, key: str) -> str:
        if key in self._own:
            return self._own[key]
        return self._shared[key]

    def __contains__(self, key: object) -> bool:
        return key in self._own or key in self._shared

    def __iter__(self) -> Iterator[str]:
        yield from self._shared
        shared = self._shared
        for key in self._own:
            if key not in shared:
                yield key

    def __len__(self) -> int:
        shared = self._shared
        return len(shared) + sum(1 for key in self._own if key not in shared)

    def __repr__(self) -> str:
        return f"Environment({len(self)} variables)"


class ObjectLookup(Protocol):
    def configmap(self, namespace: str, name: str) -> JSONDict | None: ...

    def secret(self, namespace: str, name: str) -> JSONDict | None: ...


def expand(text: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, undefined references are
    left as written, `$$` is a literal `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text):
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(defined[name] if name in defined else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


def field_value(pod: JSONDict, path: str) -> str:
    """The downward API's `fieldRef.fieldPath` of a running pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match["key"], ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
        "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise ConfigError(f"unsupported fieldRef.fieldPath {path!r}")
    return str(simple[path] or "")


def resource_value(
    container: JSONDict, resource: str, divisor: str | None, node_allocatable: Mapping[str, str]
) -> str:
    """`resourceFieldRef`: a limit falls back to the node's allocatable, as on Kubernetes."""
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "limits":
        raw = node_allocatable.get(name)
    if raw is None:
        return "0"
    try:
        value = parse_quantity(raw) / parse_quantity(divisor or "1")
    except (QuantityError, ArithmeticError) as exc:
        raise ConfigError(f"resourceFieldRef {resource}: {exc}") from None
    return str(math.ceil(value))


def _decoded(secret: JSONDict, key: str) -> str:
    try:
        return base64.b64decode(str((secret.get("data") or {})[key])).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _source_env(
    namespace: str, source: JSONDict, lookup: ObjectLookup, out: dict[str, str]
) -> None:
    prefix = str(source.get("prefix") or "")
    for field_name, what in (("configMapRef", "configmap"), ("secretRef", "secret")):
        ref = source.get(field_name)
        if not isinstance(ref, dict):
            continue
        name = str(ref.get("name") or "")
        obj = (
            lookup.configmap(namespace, name)
            if what == "configmap"
            else lookup.secret(namespace, name)
        )
        if obj is None:
            if ref.get("optional"):
                return
            raise ConfigError(f'{what} "{name}" not found')
        if what == "configmap":
            for key, value in (obj.get("data") or {}).items():
                if _ENV_NAME.match(prefix + key):
                    out[prefix + key] = str(value)
        else:
            for key in obj.get("data") or {}:
                if _ENV_NAME.match(prefix + key):
                    out[prefix + key] = _decoded(obj, key)


def _value_from(
    pod: JSONDict,
    container: JSONDict,
    source: JSONDict,
    lookup: ObjectLookup,
    node_allocatable: Mapping[str, str],
) -> str | None:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    if isinstance(source.get("fieldRef"), dict):
        return field_value(pod, str(source["fieldRef"].get("fieldPath") or ""))
    if isinstance(source.get("resourceFieldRef"), dict):
        ref = source["resourceFieldRef"]
        target = container
        if ref.get("containerName"):
            every = (pod.get("spec") or {}).get("containers") or []
            target = next((c for c in every if c.get("name") == ref["containerName"]), container)
        return resource_value(
            target, str(ref.get("resource") or ""), ref.get("divisor"), node_allocatable
        )
    for field_name, what in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = source.get(field_name)
        if not isinstance(ref, dict):
            continue
        name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
        obj = (
            lookup.configmap(namespace, name)
            if what == "ConfigMap"
            else lookup.secret(namespace, name)
        )
        if obj is None:
            if ref.get("optional"):
                return None
            raise ConfigError(f'{what.lower()} "{name}" not found')
        if what == "ConfigMap":
            data = obj.get("data") or {}
            if key in data:
                return str(data[key])
        elif key in (obj.get("data") or {}):
            return _decoded(obj, key)
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {key} in {what} {namespace}/{name}")
    raise ConfigError(
        "valueFrom names no source (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef)"
    )


def container_env(
    pod: JSONDict,
    container: JSONDict,
    lookup: ObjectLookup,
    service_env: Mapping[str, str] | None = None,
    node_allocatable: Mapping[str, str] | None = None,
) -> Environment:
    """The environment the container starts with; raises ConfigError.

    `service_env` (`enableServiceLinks` is applied by the caller) is shared, not copied."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    shared = service_env if service_env is not None else _NOTHING
    own: dict[str, str] = {}
    env = Environment(own, shared)  # reads through to `own` as it fills: `$(NAME)`s so far
    for source in container.get("envFrom") or []:
        if isinstance(source, dict):
            _source_env(namespace, source, lookup, own)
    for var in container.get("env") or []:
        if not isinstance(var, dict) or not var.get("name"):
            continue
        name = str(var["name"])
        if isinstance(var.get("valueFrom"), dict):
            value = _value_from(pod, container, var["valueFrom"], lookup, node_allocatable or {})
            if value is None:
                continue
            own[name] = value
        else:
            own[name] = expand(str(var.get("value") or ""), env)
    return env
