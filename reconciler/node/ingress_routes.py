"""The Ingress routing table: which Service backend answers a request's host and path. Pure.

One host has one ingress controller, Recon's (`ingress_proxy.py`), so it serves every
Ingress no other controller is named for: those without a class, those whose class
(`spec.ingressClassName`, or the older `kubernetes.io/ingress.class` annotation) names an
IngressClass that does not exist here (manifests written for a cluster's `nginx` or
`traefik` class still route on the local twin), and those whose IngressClass has
`spec.controller: recon.dev/ingress`. An IngressClass naming another controller is left to
it.

Matching follows the Ingress spec, merged across Ingresses as ingress-nginx merges them:
- the host picks one group of rules: an exact host (case-insensitive, port ignored) before
  a wildcard (`*.example.com` covers exactly one more label), before rules without a host;
- in the group the longest matching path wins, `Exact` before `Prefix` at equal length;
  `Prefix` matches whole path elements (`/aaa` matches `/aaa` and `/aaa/b`, not `/aaab`);
  `ImplementationSpecific` is treated as `Prefix`;
- with `nginx.ingress.kubernetes.io/use-regex: "true"` or a `rewrite-target` annotation the
  Ingress's paths are case-insensitive regular expressions anchored at the start, and
  `rewrite-target` replaces the whole upstream path (`$1`... are the path's groups), as
  ingress-nginx does (`/app(/|$)(.*)` with `/$2` strips the `/app` prefix);
- nothing matched in the group: the oldest served Ingress's `spec.defaultBackend`, else 404;
- two Ingresses claiming one host and path: the older one keeps it.

A backend is a Service port (by number or name) in the Ingress's namespace; its endpoints
are the ready pods' published host ports (`service_routes.ready_backends`), as for node
ports. A backend without any gets a reason instead (`problem`), shown on the 503 page.

TLS: `spec.tls[].hosts` name the Secret (`kubernetes.io/tls`) whose certificate is served
for those hosts by SNI; a host with TLS is redirected from HTTP to HTTPS (308) unless its
Ingress says `nginx.ingress.kubernetes.io/ssl-redirect: "false"`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.node.service_routes import ready_backends

__all__ = [
    "CONTROLLER",
    "Backend",
    "IngressTable",
    "Match",
    "PathRoute",
    "plan_ingresses",
    "served",
]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str], JSONDict | None]  # (namespace, name) -> object from a cache

CONTROLLER = "recon.dev/ingress"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_NGINX = "nginx.ingress.kubernetes.io/"
REWRITE_TARGET = _NGINX + "rewrite-target"
USE_REGEX = _NGINX + "use-regex"
SSL_REDIRECT = _NGINX + "ssl-redirect"


@dataclass(frozen=True)
class Backend:
    """A Service port and the host ports (on 127.0.0.1) of its ready endpoints."""

    namespace: str
    service: str
    port: str
    """The port as the Ingress names it (a number or a name), for messages."""
    backends: tuple[int, ...]
    problem: str = ""
    """Why there are no backends (no such Service or port, no ready endpoint)."""


@dataclass(frozen=True)
class PathRoute:
    path: str
    kind: Literal["Exact", "Prefix", "Regex"]
    backend: Backend
    ingress: str
    """`namespace/name` of the Ingress the rule is from."""
    rewrite: str | None = None
    ssl_redirect: bool = True
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def matches(self, path: str) -> bool:
        if self.kind == "Exact":
            return path == self.path
        if self.kind == "Regex":
            return self.pattern is not None and self.pattern.match(path) is not None
        prefix = self.path.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def upstream_path(self, path: str) -> str:
        """The path sent to the backend: the request's, or the rewrite-target with the
        path's groups filled in."""
        if self.rewrite is None:
            return path
        pattern = self.pattern or re.compile(re.escape(self.path), re.IGNORECASE)
        found = pattern.search(path)
        if found is None:
            return path
        groups = found.groups()

        def group(m: re.Match[str]) -> str:
            index = int(m.group(1))
            return (groups[index - 1] or "") if 0 < index <= len(groups) else ""

        return re.sub(r"\$(\d)", group, self.rewrite) or "/"


@dataclass(frozen=True)
class Match:
    route: PathRoute
    upstream_path: str


@dataclass(frozen=True)
class IngressTable:
    exact: Mapping[str, tuple[PathRoute, ...]]
    """Host -> its routes, most specific first."""
    wildcard: Mapping[str, tuple[PathRoute, ...]]
    """`example.com` (from `*.example.com`) -> its routes, most specific first."""
    any_host: tuple[PathRoute, ...]
    default: PathRoute | None
    tls: Mapping[str, tuple[str, str]]
    """Host (or `*.example.com`) -> (namespace, Secret name) of its certificate."""
    ingresses: tuple[str, ...] = ()
    """`namespace/name` of every Ingress served."""

    @property
    def empty(self) -> bool:
        return not (self.exact or self.wildcard or self.any_host or self.default)

    def match(self, host: str, path: str) -> Match | None:
        for route in self._group(_host_only(host)):
            if route.matches(path):
                return Match(route, route.upstream_path(path))
        if self.default is not None:
            return Match(self.default, path)
        return None

    def tls_secret(self, host: str) -> tuple[str, str] | None:
        host = _host_only(host)
        found = self.tls.get(host)
        if found is None and "." in host:
            found = self.tls.get("*." + host.split(".", 1)[1])
        return found

    def _group(self, host: str) -> tuple[PathRoute, ...]:
        if host in self.exact:
            return self.exact[host]
        if "." in host:
            routes = self.wildcard.get(host.split(".", 1)[1])
            if routes is not None:
                return routes
        return self.any_host


def _host_only(host: str) -> str:
    """`Example.com:8080` -> `example.com`; `[::1]:80` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _meta(obj: JSONDict) -> JSONDict:
    return obj.get("metadata") or {}


def class_name(ingress: JSONDict) -> str | None:
    name = (ingress.get("spec") or {}).get("ingressClassName") or (
        _meta(ingress).get("annotations") or {}
    ).get(CLASS_ANNOTATION)
    return str(name) if name else None


def served(ingress: JSONDict, classes: Lookup) -> bool:
    """Whether this host's controller serves the Ingress (see the module docstring)."""
    if _meta(ingress).get("deletionTimestamp"):
        return False
    name = class_name(ingress)
    if name is None:
        return True
    found = classes("", name)
    return found is None or (found.get("spec") or {}).get("controller") == CONTROLLER


def _service_backend(
    namespace: str, spec: JSONDict, services: Lookup, endpoints: Lookup, pods: Lookup
) -> Backend:
    service_ref = spec.get("service") or {}
    name = str(service_ref.get("name") or "")
    port_ref = service_ref.get("port") or {}
    number, port_name = port_ref.get("number"), port_ref.get("name")
    shown = str(number if number is not None else port_name or "")
    if not name:
        kind = (spec.get("resource") or {}).get("kind")
        what = f"resource backend {kind}" if kind else "a backend without a service"
        return Backend(namespace, "", shown, (), f"{what} is not supported")
    service = services(namespace, name)
    if service is None:
        return Backend(namespace, name, shown, (), f'service "{namespace}/{name}" not found')
    for port in (service.get("spec") or {}).get("ports") or []:
        if str(port.get("protocol") or "TCP") != "TCP":
            continue
        if (number is not None and port.get("port") == number) or (
            port_name and port.get("name") == port_name
        ):
            found = ready_backends(
                endpoints(namespace, name), namespace, str(port.get("name") or ""), "TCP", pods
            )
            problem = "" if found else f'no ready endpoints for service "{namespace}/{name}"'
            return Backend(namespace, name, shown, found, problem)
    return Backend(
        namespace, name, shown, (), f'service "{namespace}/{name}" has no TCP port {shown}'
    )


def _age(ingress: JSONDict) -> tuple[str, str, str]:
    meta = _meta(ingress)
    return (
        str(meta.get("creationTimestamp") or ""),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def _kind(path_type: object, regex: bool) -> Literal["Exact", "Prefix", "Regex"]:
    if regex:
        return "Regex"
    return "Exact" if path_type == "Exact" else "Prefix"


def _order(route: PathRoute) -> tuple[int, int]:
    return (-len(route.path), 0 if route.kind == "Exact" else 1)


class _Lookups:
    """The caches a backend is resolved from."""

    def __init__(self, services: Lookup, endpoints: Lookup, pods: Lookup) -> None:
        self.services, self.endpoints, self.pods = services, endpoints, pods

    def backend(self, namespace: str, spec: JSONDict) -> Backend:
        return _service_backend(namespace, spec, self.services, self.endpoints, self.pods)


def _route_maker(
    ingress: JSONDict, lookups: _Lookups
) -> Callable[[str, object, JSONDict], PathRoute]:
    """Makes the ingress's PathRoutes, with its annotations applied."""
    _, namespace, name = _age(ingress)
    annotations = _meta(ingress).get("annotations") or {}
    rewrite = annotations.get(REWRITE_TARGET)
    regex = rewrite is not None or str(annotations.get(USE_REGEX)).lower() == "true"
    redirect = str(annotations.get(SSL_REDIRECT, "true")).lower() != "false"

    def route(path: str, path_type: object, backend_spec: JSONDict) -> PathRoute:
        kind = _kind(path_type, regex)
        pattern = None
        if kind == "Regex":
            try:
                pattern = re.compile(path, re.IGNORECASE)
            except re.error:
                pattern = re.compile(re.escape(path), re.IGNORECASE)
        return PathRoute(
            path,
            kind,
            lookups.backend(namespace, backend_spec),
            f"{namespace}/{name}",
            str(rewrite) if rewrite is not None else None,
            redirect,
            pattern,
        )

    return route


def _host_key(host: str) -> tuple[str, str]:
    if host.startswith("*."):
        return ("wild", host[2:])
    return ("exact", host) if host else ("any", "")


def plan_ingresses(
    ingresses: Iterable[JSONDict],
    classes: Lookup,
    services: Lookup,
    endpoints: Lookup,
    pods: Lookup,
) -> IngressTable:
    """The routing table of every Ingress this host serves."""
    lookups = _Lookups(services, endpoints, pods)
    groups: dict[tuple[str, str], list[PathRoute]] = {}  # ("exact"|"wild"|"any", host)
    default: PathRoute | None = None
    tls: dict[str, tuple[str, str]] = {}
    names: list[str] = []
    for ingress in sorted(ingresses, key=_age):
        if not served(ingress, classes):
            continue
        _, namespace, name = _age(ingress)
        names.append(f"{namespace}/{name}")
        spec = ingress.get("spec") or {}
        route = _route_maker(ingress, lookups)
        if default is None and isinstance(spec.get("defaultBackend"), dict):
            default = route("/", "Prefix", spec["defaultBackend"])
        for rule in spec.get("rules") or []:
            key = _host_key(str(rule.get("host") or "").lower())
            taken = {(r.path, r.kind) for r in groups.get(key, ())}
            for path in (rule.get("http") or {}).get("paths") or []:
                made = route(
                    str(path.get("path") or "/"), path.get("pathType"), path.get("backend") or {}
                )
                if (made.path, made.kind) not in taken:  # else an older Ingress has it
                    taken.add((made.path, made.kind))
                    groups.setdefault(key, []).append(made)
        for entry in spec.get("tls") or []:
            secret = entry.get("secretName")
            for host in entry.get("hosts") or [] if secret else []:
                tls.setdefault(str(host).lower(), (namespace, str(secret)))

    def routes(kind: str) -> dict[str, tuple[PathRoute, ...]]:
        return {h: tuple(sorted(r, key=_order)) for (k, h), r in groups.items() if k == kind}

    return IngressTable(
        exact=routes("exact"),
        wildcard=routes("wild"),
        any_host=routes("any").get("", ()),
        default=default,
        tls=tls,
        ingresses=tuple(names),
    )
