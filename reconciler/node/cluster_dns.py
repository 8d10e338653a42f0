"""What the cluster DNS answers for a name, from the Services and Endpoints. Pure.

Kubernetes' DNS specification (what CoreDNS's `kubernetes` plugin serves), for the zone
`cluster.local`:

- `<svc>.<ns>.svc.cluster.local`: a ClusterIP Service's cluster IP (A); a headless
  Service's endpoint addresses, ready ones only unless `publishNotReadyAddresses` (A; none
  left: NXDOMAIN, as CoreDNS and the spec say); an ExternalName Service's `externalName`
  (CNAME, followed here when it is a cluster name, by the server otherwise);
- `<host>.<svc>.<ns>.svc.cluster.local`: one endpoint of a headless Service, by its
  `hostname` (StatefulSet pods: `web-0.web.shop.svc.cluster.local`) or its dashed address
  (`10-0-3-5.web.shop.svc.cluster.local`);
- `_<port>._<proto>.<svc>.<ns>.svc.cluster.local`: SRV per named port (the Service's
  port and name for a ClusterIP Service; each endpoint's for a headless one);
- `<a-b-c-d>.<ns>.pod.cluster.local`: the address a-b-c-d (CoreDNS's `pods insecure`);
- any other name in the zone: NXDOMAIN; a name outside it: not ours (`None`: forward it).

Worked example. Headless `db` in `shop`, Endpoints: ready 10.0.3.5 (hostname `db-0`),
not-ready 10.0.3.7 (`db-1`). `db.shop.svc.cluster.local` A → 10.0.3.5 only;
`db-0.db.shop.svc.cluster.local` → 10.0.3.5; `db-1.db.shop…` → NXDOMAIN until it is
ready (or at once with `publishNotReadyAddresses: true`, which also adds 10.0.3.7 to
`db.shop…`). AAAA for `db.shop…` → no records (NOERROR: the name exists, IPv4 only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.cluster_network import CLUSTER_DOMAIN, SERVICES_BRIDGE_ADDRESS
from reconciler.node.dns_wire import (
    Question,
    Rcode,
    Record,
    Rtype,
    a_record,
    cname_record,
    soa_record,
    srv_record,
)

__all__ = ["DNS_ADDRESS", "TTL", "Answer", "ClusterView", "answer", "in_zone"]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str], JSONDict | None]

DNS_ADDRESS = str(SERVICES_BRIDGE_ADDRESS)
"""Where pods send what Docker's embedded DNS does not know: the host side of the services
bridge, which every pod sandbox reaches (and nothing outside this host does)."""
TTL = 5
"""Seconds an answer may be kept (CoreDNS's default for cluster names): endpoints move."""
_MAX_CNAMES = 8


@dataclass(frozen=True)
class ClusterView:
    """What the answers are made of (the informers' caches, or dicts in tests)."""

    service: Lookup
    """(namespace, name) -> the Service, or None."""
    endpoints: Lookup
    """(namespace, name) -> the Endpoints, or None."""
    has_namespace: Callable[[str], bool] = lambda _namespace: False
    """Whether `<ns>.svc.cluster.local` exists (a namespace with Services)."""


@dataclass(frozen=True)
class Answer:
    rcode: int
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    external: str | None = None
    """The last CNAME points outside the zone: the server asks upstream for it and appends
    what it gets (a pod asking for an ExternalName Service gets the addresses at once)."""


def in_zone(name: str) -> bool:
    return name == CLUSTER_DOMAIN or name.endswith("." + CLUSTER_DOMAIN)


def _negative(rcode: int) -> Answer:
    return Answer(rcode, authority=(soa_record(CLUSTER_DOMAIN, TTL),))


_NODATA = _negative(Rcode.NOERROR)
_NXDOMAIN = _negative(Rcode.NXDOMAIN)


def _dashed(label: str) -> str | None:
    """`10-0-3-5` -> `10.0.3.5` (None when it is no IPv4 address)."""
    try:
        return str(ipaddress.IPv4Address(label.replace("-", ".")))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    hostname: str
    ports: tuple[tuple[str, str, int], ...]
    """(name, protocol, port) of its subset."""

    @property
    def label(self) -> str:
        return self.hostname or self.ip.replace(".", "-")


def _endpoints(service: JSONDict, endpoints: JSONDict | None) -> list[_Endpoint]:
    """A headless Service's endpoints DNS lists: the ready ones, and the not-ready ones too
    when the Service says `publishNotReadyAddresses` (IPv4 only, first occurrence wins)."""
    spec = service.get("spec") or {}
    keys = ["addresses"] + (["notReadyAddresses"] if spec.get("publishNotReadyAddresses") else [])
    found: dict[str, _Endpoint] = {}
    for subset in (endpoints or {}).get("subsets") or []:
        ports = tuple(
            (str(p.get("name") or ""), str(p.get("protocol") or "TCP").lower(), p["port"])
            for p in subset.get("ports") or []
            if isinstance(p.get("port"), int)
        )
        for key in keys:
            for address in subset.get(key) or []:
                ip = str(address.get("ip") or "")
                if ip in found or _dashed(ip.replace(".", "-")) != ip:  # IPv4 only
                    continue
                found[ip] = _Endpoint(ip, str(address.get("hostname") or "").lower(), ports)
    return sorted(found.values(), key=lambda e: ipaddress.IPv4Address(e.ip))


def _kind(service: JSONDict) -> str:
    spec = service.get("spec") or {}
    if str(spec.get("type") or "") == "ExternalName":
        return "ExternalName"
    return "Headless" if str(spec.get("clusterIP") or "") == "None" else "ClusterIP"


def _cluster_ip(service: JSONDict) -> str | None:
    ip = str((service.get("spec") or {}).get("clusterIP") or "")
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        return None


def _service_records(
    name: str, qtype: int, service: JSONDict, endpoints: JSONDict | None
) -> Answer:
    """A ClusterIP or headless Service's own name."""
    if _kind(service) == "Headless":
        found = _endpoints(service, endpoints)
        if not found:
            return _NXDOMAIN
        if qtype not in (Rtype.A, Rtype.ANY):
            return _NODATA
        return Answer(Rcode.NOERROR, tuple(a_record(name, e.ip, TTL) for e in found))
    ip = _cluster_ip(service)
    if ip is None or qtype not in (Rtype.A, Rtype.ANY):
        return _NODATA
    return Answer(Rcode.NOERROR, (a_record(name, ip, TTL),))


def _endpoint_records(
    name: str, qtype: int, label: str, service: JSONDict, endpoints: JSONDict | None
) -> Answer:
    if _kind(service) != "Headless":
        return _NXDOMAIN
    matches = [e for e in _endpoints(service, endpoints) if e.label == label]
    if not matches:
        return _NXDOMAIN
    if qtype not in (Rtype.A, Rtype.ANY):
        return _NODATA
    return Answer(Rcode.NOERROR, tuple(a_record(name, e.ip, TTL) for e in matches))


def _srv_records(
    name: str,
    port_label: str,
    proto_label: str,
    qtype: int,
    service: JSONDict,
    endpoints: JSONDict | None,
) -> Answer:
    """`_http._tcp.web.shop.svc.cluster.local` SRV: the named port, and where it leads."""
    if not (port_label.startswith("_") and proto_label.startswith("_")):
        return _NXDOMAIN
    port_name, proto = port_label[1:], proto_label[1:]
    base = name.split(".", 2)[2]
    kind = _kind(service)
    records: list[Record] = []
    extra: list[Record] = []
    if kind == "ClusterIP":
        ip = _cluster_ip(service)
        for port in (service.get("spec") or {}).get("ports") or []:
            same = str(port.get("name") or "") == port_name
            if same and str(port.get("protocol") or "TCP").lower() == proto and ip:
                records.append(srv_record(name, 0, 100, int(port["port"]), base, TTL))
                extra = [a_record(base, ip, TTL)]
    elif kind == "Headless":
        found = _endpoints(service, endpoints)
        for endpoint in found:
            for port_name_, proto_, number in endpoint.ports:
                if (port_name_, proto_) == (port_name, proto):
                    target = f"{endpoint.label}.{base}"
                    weight = max(1, 100 // len(found))
                    records.append(srv_record(name, 0, weight, number, target, TTL))
                    extra.append(a_record(target, endpoint.ip, TTL))
    if not records:
        return _NXDOMAIN
    if qtype not in (Rtype.SRV, Rtype.ANY):
        return _NODATA
    return Answer(Rcode.NOERROR, tuple(records), additional=tuple(extra))


def _resolve(name: str, qtype: int, view: ClusterView, depth: int = 0) -> Answer:
    if depth > _MAX_CNAMES:
        return Answer(Rcode.SERVFAIL)
    if name == CLUSTER_DOMAIN:
        return _NODATA
    labels = name[: -len(CLUSTER_DOMAIN) - 1].split(".")
    kind, labels = labels[-1], labels[:-1]
    if kind == "pod":
        if not labels:
            return _NODATA
        if len(labels) == 1:
            return _NODATA if view.has_namespace(labels[0]) else _NXDOMAIN
        ip = _dashed(labels[0]) if len(labels) == 2 else None
        if ip is None:
            return _NXDOMAIN
        if qtype not in (Rtype.A, Rtype.ANY):
            return _NODATA
        return Answer(Rcode.NOERROR, (a_record(name, ip, TTL),))
    if kind != "svc":
        return _NXDOMAIN
    if not labels:
        return _NODATA
    if len(labels) == 1:
        return _NODATA if view.has_namespace(labels[0]) else _NXDOMAIN
    if len(labels) > 4:
        return _NXDOMAIN
    namespace, service_name = labels[-1], labels[-2]
    service = view.service(namespace, service_name)
    if service is None or (service.get("metadata") or {}).get("deletionTimestamp"):
        return _NXDOMAIN
    endpoints = view.endpoints(namespace, service_name)
    if len(labels) == 2:
        if _kind(service) == "ExternalName":
            return _follow_external(name, qtype, service, view, depth)
        return _service_records(name, qtype, service, endpoints)
    if len(labels) == 3:
        return _endpoint_records(name, qtype, labels[0], service, endpoints)
    return _srv_records(name, labels[0], labels[1], qtype, service, endpoints)


def _follow_external(
    name: str, qtype: int, service: JSONDict, view: ClusterView, depth: int
) -> Answer:
    """An ExternalName Service: the CNAME, then what its target answers, from the zone when
    the target is in it, from upstream (`external`) otherwise; asked for the CNAME itself,
    only the CNAME."""
    target = str((service.get("spec") or {}).get("externalName") or "").lower().rstrip(".")
    if not target:
        return _NXDOMAIN
    cname = cname_record(name, target, TTL)
    if qtype == Rtype.CNAME:
        return Answer(Rcode.NOERROR, (cname,))
    if not in_zone(target):
        return Answer(Rcode.NOERROR, (cname,), external=target)
    rest = _resolve(target, qtype, view, depth + 1)
    if rest.rcode == Rcode.SERVFAIL:
        return rest  # a CNAME loop: no answer at all
    return Answer(rest.rcode, (cname, *rest.answers), rest.authority, rest.additional)


def answer(question: Question, view: ClusterView) -> Answer | None:
    """The answer to `question` from the cluster, or None when the name is not in the
    cluster's zone (the server forwards those, as CoreDNS's `forward . /etc/resolv.conf`)."""
    name = question.name.lower().rstrip(".")
    if not in_zone(name):
        return None
    return _resolve(name, question.qtype, view)
