"""The Docker-links-style Service variables the kubelet gives every container.

For each Service with a cluster IP, the kubelet adds (here for `redis-primary`, 10.96.0.11,
ports `6379/TCP` named `redis` and `9121/TCP` named `metrics`)::

    REDIS_PRIMARY_SERVICE_HOST=10.96.0.11
    REDIS_PRIMARY_SERVICE_PORT=6379                  # the first port
    REDIS_PRIMARY_SERVICE_PORT_REDIS=6379            # one per named port
    REDIS_PRIMARY_SERVICE_PORT_METRICS=9121
    REDIS_PRIMARY_PORT=tcp://10.96.0.11:6379         # the first port again, Docker style
    REDIS_PRIMARY_PORT_6379_TCP=tcp://10.96.0.11:6379
    REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
    REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
    REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.96.0.11
    ... and the same four for 9121

Which Services count (kubelet's `getServiceEnvVarMap`): those of the pod's namespace, unless
the pod says `enableServiceLinks: false`, plus always the `kubernetes` Service of `default`
(a namespace's own Service of that name wins). Headless and ExternalName Services have no
cluster IP and add nothing. Pure: the node agent passes the Services from its informer.

Shared, not per pod: the variables depend only on the pod's namespace and its
`enableServiceLinks`, so `ServiceEnvCache` computes them once per namespace until a Service
changes and hands every pod the same read-only mapping. Concrete example (the GitOps
benchmark): 333 pods beside 333 Services each get ≈2,300 variables; one copy per pod was
≈300 KB of strings and dict, ≈100 MB in all, where one shared copy is ≈300 KB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["MASTER_SERVICE_NAMES", "ServiceEnvCache", "pod_service_env", "service_env"]

JSONDict = dict[str, Any]

MASTER_NAMESPACE = "default"
MASTER_SERVICE_NAMES = frozenset({"kubernetes"})


def _env_name(text: str) -> str:
    return text.upper().replace("-", "_")


def _has_cluster_ip(service: JSONDict) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _host_port(ip: str, port: object) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _one_service(service: JSONDict, env: dict[str, str]) -> None:
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    if not _has_cluster_ip(service) or not ports:
        return
    ip = str(spec["clusterIP"])
    prefix = _env_name(str((service.get("metadata") or {}).get("name") or ""))
    env[f"{prefix}_SERVICE_HOST"] = ip
    env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(str(port['name']))}"] = str(port.get("port"))
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        number = port.get("port")
        url = f"{protocol.lower()}://{_host_port(ip, number)}"
        if index == 0:
            env[f"{prefix}_PORT"] = url  # Docker special-cases the first port
        key = f"{prefix}_PORT_{number}_{protocol.upper()}"
        env[key] = url
        env[f"{key}_PROTO"] = protocol.lower()
        env[f"{key}_PORT"] = str(number)
        env[f"{key}_ADDR"] = ip


def service_env(services: Iterable[JSONDict]) -> dict[str, str]:
    """The variables for exactly these Services (those without a cluster IP add nothing)."""
    env: dict[str, str] = {}
    for service in services:
        _one_service(service, env)
    return env


def pod_service_env(
    pod: JSONDict, namespace_services: Iterable[JSONDict], master_services: Iterable[JSONDict]
) -> dict[str, str]:
    """The Service variables of a pod: `namespace_services` are the Services of the pod's
    namespace, `master_services` those of `default` (only `kubernetes` is used from them).

    With `enableServiceLinks: false` only the `kubernetes` Service's variables remain.
    """
    chosen: dict[str, JSONDict] = {}
    for service in master_services:
        meta = service.get("metadata") or {}
        name = str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or MASTER_NAMESPACE)
        master = name in MASTER_SERVICE_NAMES and namespace == MASTER_NAMESPACE
        if master and _has_cluster_ip(service):
            chosen.setdefault(name, service)
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        for service in namespace_services:
            if _has_cluster_ip(service):
                chosen[str((service.get("metadata") or {}).get("name") or "")] = service
    return service_env(chosen[name] for name in sorted(chosen))


def _links_enabled(pod: JSONDict) -> bool:
    return (pod.get("spec") or {}).get("enableServiceLinks", True) is not False


class ServiceEnvCache:
    """`pod_service_env` once per namespace (and per `enableServiceLinks`) until a Service
    changes, shared by every pod it applies to.

    `namespace_services(namespace)` and `master_services()` read the current Services (the
    agent's informer); `service_changed` must be called for every Service added, changed or
    deleted, after the informer's cache holds the change. The mappings handed out are
    read-only (`MappingProxyType`): containers layer their own variables over them
    (`env.Environment`) instead of copying them.
    """

    def __init__(
        self,
        namespace_services: Callable[[str], Iterable[JSONDict]],
        master_services: Callable[[], Iterable[JSONDict]],
    ) -> None:
        self._namespace_services = namespace_services
        self._master_services = master_services
        # namespace -> its pods' variables; None: pods with `enableServiceLinks: false`,
        # the same in every namespace (only the `kubernetes` Service's).
        self._cache: dict[str | None, Mapping[str, str]] = {}

    def for_pod(self, pod: JSONDict) -> Mapping[str, str]:
        links = _links_enabled(pod)
        namespace = str((pod.get("metadata") or {}).get("namespace") or MASTER_NAMESPACE)
        key = namespace if links else None
        found = self._cache.get(key)
        if found is None:
            services = self._namespace_services(namespace) if links else ()
            env = pod_service_env(pod, services, self._master_services())
            found = self._cache[key] = MappingProxyType(env)
        return found

    def service_changed(self, service: JSONDict) -> None:
        """Forget what `service` is part of: its namespace's variables, or all of them for
        the `kubernetes` Service of `default`, which every pod gets."""
        meta = service.get("metadata") or {}
        namespace = str(meta.get("namespace") or MASTER_NAMESPACE)
        if namespace == MASTER_NAMESPACE and meta.get("name") in MASTER_SERVICE_NAMES:
            self._cache.clear()
        else:
            self._cache.pop(namespace, None)
