"""Service cluster IPs and node ports, allocated by the API server as a Service is written.

Kubernetes' apiserver gives every Service (but `ExternalName` and headless ones) a virtual
IP from the service CIDR, gives every port of a `NodePort` or `LoadBalancer` Service a node
port, and keeps both through updates. `ServiceAllocator.prepare` does the same for
`ObjectService`, on the private copy about to be stored, after defaulting and schema
validation, in Kubernetes' order:

1. on update, carry over what a client left out (`patch_allocated_values`: a `kubectl
   replace` or `apply` without `clusterIP`/`nodePort` keeps them) and drop what a type
   change made meaningless (`drop_type_dependent_fields`: NodePort → ClusterIP drops the
   node ports, which releases them);
2. keep `clusterIP` and `clusterIPs` in step (`normalize_cluster_ips`), fill the IP family
   fields (single-stack IPv4), and reject what Kubernetes rejects (`spec_causes`: a changed
   cluster IP, a node port on a ClusterIP Service, ...) with its messages;
3. check requested values (in range, free) and pick free ones for the rest.

What is taken is derived from committed Services only: `load` scans the stored Services at
start and `observe`, a store listener, records each committed write and forgets each
deletion, so a rejected or dry-run write never leaks a value and a restart rebuilds exactly
the same sets. No reservation is needed between picking and committing: `ObjectService` is
synchronous on the event loop, so `prepare` and the commit that follows (which calls
`observe`) run as one step no other write can interleave with — two concurrent creates
cannot pick the same value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.cluster_network import POD_ADDRESS_RANGE, SERVICE_CIDR
from reconciler.store.watch import Event

__all__ = [
    "MASTER_SERVICE",
    "NODE_PORT_RANGE",
    "POD_ADDRESS_RANGE",
    "SERVICE_CIDR",
    "SERVICE_RESOURCE",
    "ServiceAllocator",
    "drop_type_dependent_fields",
    "normalize_cluster_ips",
    "patch_allocated_values",
    "spec_causes",
]

JSONDict = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace, name)

log = logging.getLogger(__name__)

SERVICE_RESOURCE = "core/services"
NODE_PORT_RANGE = (30000, 32767)
MASTER_SERVICE: ObjKey = ("default", "kubernetes")  # gets the range's first IP, 10.96.0.1

_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


# -- what a spec needs ---------------------------------------------------------------------


def _type(spec: JSONDict) -> str:
    return str(spec.get("type") or "ClusterIP")


def needs_cluster_ip(spec: JSONDict) -> bool:
    return _type(spec) != "ExternalName"


def needs_node_ports(spec: JSONDict) -> bool:
    """NodePort always; LoadBalancer unless `allocateLoadBalancerNodePorts: false`."""
    kind = _type(spec)
    return kind == "NodePort" or (
        kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False
    )


def _ports(spec: JSONDict) -> list[JSONDict]:
    return [p for p in spec.get("ports") or [] if isinstance(p, dict)]


def _node_port(port: JSONDict) -> int:
    value = port.get("nodePort")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ips(spec: JSONDict) -> list[str]:
    return [str(ip) for ip in spec.get("clusterIPs") or []]


def _go_value(value: object) -> str:
    """A bad value as apimachinery's field errors print it (JSON since Kubernetes 1.31)."""
    return json.dumps(value, separators=(",", ":"))


# -- pure preparation of the spec (Kubernetes' pkg/registry/core/service/storage) -----------


def patch_allocated_values(spec: JSONDict, old: JSONDict) -> None:
    """Fill values the server allocated that an update left out, as Kubernetes does.

    Node ports are matched by port name; a node port the update gives to another port is
    not carried over twice.
    """
    if needs_cluster_ip(old) and needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(spec):
        used_now = {_node_port(p) for p in _ports(spec)} - {0}
        used = {_node_port(p) for p in _ports(old)} & used_now
        by_name = {str(p.get("name") or ""): _node_port(p) for p in _ports(old)}
        for port in _ports(spec):
            if not _node_port(port):
                previous = by_name.get(str(port.get("name") or ""), 0)
                if previous and previous not in used:
                    port["nodePort"] = previous


def _same_node_ports(old: JSONDict, spec: JSONDict) -> bool:
    """The update set no node port the old Service did not have (the client did not ask)."""
    had = {_node_port(p) for p in _ports(old)}
    return all(_node_port(p) in had for p in _ports(spec) if _node_port(p))


def drop_type_dependent_fields(spec: JSONDict, old: JSONDict) -> None:
    """On a type change, wipe the values the old type needed and the client did not change.

    Worked example: `kubectl apply` turns a NodePort Service (nodePort 30080) into a
    ClusterIP one; the patched object still carries `nodePort: 30080` and
    `externalTrafficPolicy: Cluster` from the live object, the client never mentioned
    them, so both go (and 30080 is free once the update commits).
    """
    if needs_cluster_ip(old) and not needs_cluster_ip(spec):
        if spec.get("clusterIP") == old.get("clusterIP") and _ips(spec) == _ips(old):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if key in spec and spec.get(key) == old.get(key):
                spec.pop(key)
    if needs_node_ports(old) and not needs_node_ports(spec) and _same_node_ports(old, spec):
        for port in _ports(spec):
            port.pop("nodePort", None)
    if _type(old) == "LoadBalancer" and _type(spec) != "LoadBalancer":
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if key in spec and spec.get(key) == old.get(key):
                spec.pop(key)
    policy = spec.get("externalTrafficPolicy")
    leaves = _type(old) in _NODE_PORT_TYPES and _type(spec) not in _NODE_PORT_TYPES
    if leaves and policy is not None and policy == old.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy")


def normalize_cluster_ips(spec: JSONDict, old: JSONDict | None) -> None:
    """Keep `clusterIP` (old clients) and `clusterIPs` (new ones) telling the same story."""
    ip, ips = str(spec.get("clusterIP") or ""), _ips(spec)
    if old is None:
        if ip and not ips:
            spec["clusterIPs"] = [ip]
        return
    old_ip, old_ips = str(old.get("clusterIP") or ""), _ips(old)
    if old_ips and not ips and old_ip == ip:
        spec["clusterIPs"] = ips = list(old_ips)  # an old client that knows no clusterIPs
    if old_ip != ip:
        if old_ip and not ip:
            if ips == old_ips:
                spec.pop("clusterIPs", None)  # clearing both; validation decides
        elif ips == old_ips:
            spec["clusterIPs"] = [ip]  # changed the singular only: validation decides


def init_ip_families(spec: JSONDict) -> None:
    """A single-stack IPv4 cluster: `SingleStack` and `[IPv4]`, except that a headless
    Service without a selector asks for both families, as Kubernetes does."""
    if not needs_cluster_ip(spec):
        return
    headless = spec.get("clusterIP") == "None"
    selectorless = not spec.get("selector")
    if not spec.get("ipFamilyPolicy"):
        dual = headless and selectorless
        spec["ipFamilyPolicy"] = "RequireDualStack" if dual else "SingleStack"
    families = [str(f) for f in spec.get("ipFamilies") or []] or ["IPv4"]
    single = spec["ipFamilyPolicy"] == "SingleStack"
    if headless and selectorless and len(families) < 2 and not single:
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


def _ip_causes(spec: JSONDict, old: JSONDict | None) -> list[Cause]:
    causes: list[Cause] = []
    ip, ips = str(spec.get("clusterIP") or ""), _ips(spec)
    if not needs_cluster_ip(spec):
        for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key):
                causes.append(
                    Cause(
                        f"spec.{key}",
                        "Forbidden: may not be set for ExternalName services",
                        "FieldValueForbidden",
                    )
                )
        return causes
    if ip:
        if not ips:
            causes.append(Cause("spec.clusterIPs", "Required value", "FieldValueRequired"))
        elif ips[0] != ip:
            causes.append(
                Cause(
                    "spec.clusterIPs",
                    f"Invalid value: {_go_value(ips)}: first value must match `clusterIP`",
                )
            )
    elif ips:
        causes.append(
            Cause(
                "spec.clusterIPs",
                f"Invalid value: {_go_value(ips)}: must be empty when `clusterIP` is not specified",
            )
        )
    for index, value in enumerate(ips):
        if value == "None":
            continue
        try:
            ipaddress.ip_address(value)
        except ValueError:
            causes.append(
                Cause(
                    f"spec.clusterIPs[{index}]",
                    f"Invalid value: {_go_value(value)}: must be a valid IP address, "
                    "(e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
            )
    if len(ips) > 1:
        causes.append(
            Cause(
                "spec.clusterIPs",
                f"Invalid value: {_go_value(ips)}: this cluster is not configured for "
                "dual-stack services",
            )
        )
    headless_selectorless = ip == "None" and not spec.get("selector")
    if not headless_selectorless:
        policy = spec.get("ipFamilyPolicy")
        if policy == "RequireDualStack":
            causes.append(
                Cause(
                    "spec.ipFamilyPolicy",
                    f"Invalid value: {_go_value(policy)}: this cluster is not configured "
                    "for dual-stack services",
                )
            )
        for index, family in enumerate(spec.get("ipFamilies") or []):
            if family != "IPv4":
                causes.append(
                    Cause(
                        f"spec.ipFamilies[{index}]",
                        f"Invalid value: {_go_value(family)}: not configured on this cluster",
                    )
                )
    if old is not None and needs_cluster_ip(old):
        old_ips = _ips(old)
        both_headless = old.get("clusterIP") == "None" and ip == "None"
        if old_ips and not both_headless:
            if not ips:
                causes.append(
                    Cause(
                        "spec.clusterIPs[0]",
                        f"Invalid value: {_go_value(ips)}: primary clusterIP can not be unset",
                    )
                )
            elif ips[0] != old_ips[0]:
                causes.append(
                    Cause(
                        "spec.clusterIPs[0]",
                        f"Invalid value: {_go_value(ips)}: may not change once set",
                    )
                )
    return causes


def _port_causes(spec: JSONDict) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[int, str]] = set()
    kind = _type(spec)
    for index, port in enumerate(_ports(spec)):
        number = _node_port(port)
        if not number:
            continue
        where = f"spec.ports[{index}].nodePort"
        if kind not in _NODE_PORT_TYPES:
            causes.append(
                Cause(
                    where,
                    f"Forbidden: may not be used when `type` is '{kind}'",
                    "FieldValueForbidden",
                )
            )
            continue
        pair = (number, str(port.get("protocol") or "TCP"))
        if pair in seen:
            causes.append(Cause(where, f"Duplicate value: {number}", "FieldValueDuplicate"))
        seen.add(pair)
    return causes


def spec_causes(spec: JSONDict, old: JSONDict | None) -> list[Cause]:
    """What Kubernetes' Service validation rejects about cluster IPs and node ports."""
    return _ip_causes(spec, old) + _port_causes(spec)


# -- the allocation tables -----------------------------------------------------------------


class _Table:
    """Values in [first, last], each held by at most one Service.

    Like Kubernetes, dynamic picks come from the upper band, so that users who choose a
    value themselves (usually a low one: the static band) rarely collide with a picked one;
    the static band is used when the upper one is full. Concrete example for node ports:
    the static band is min(max(16, 2768 // 32), 128) = 86 ports, 30000-30085; picks come
    from 30086-32767.

    Unlike Kubernetes, which starts its scan at a random point, the scan starts at a point
    derived from the Service's namespace and name: a dry run (`kubectl diff`, `--dry-run=
    server`) predicts the value the real create gets, and a Service deleted and created
    again gets its old value back when it is still free.
    """

    def __init__(self, first: int, last: int, static_size: int) -> None:
        self.first, self.last = first, last
        self.static_last = min(last, first + static_size - 1)
        self.owner: dict[int, ObjKey] = {}
        self.held: dict[ObjKey, set[int]] = {}

    def in_range(self, value: int) -> bool:
        return self.first <= value <= self.last

    def free_for(self, value: int, key: ObjKey) -> bool:
        return self.owner.get(value, key) == key

    def set_holdings(self, key: ObjKey, values: Iterable[int]) -> None:
        wanted = {v for v in values if self.in_range(v)}
        for value in self.held.pop(key, set()) - wanted:
            if self.owner.get(value) == key:
                del self.owner[value]
        for value in wanted:
            other = self.owner.get(value)
            if other is not None and other != key:
                log.warning("%s and %s/%s both hold %s", other, key[0], key[1], value)
            self.owner[value] = key
        if wanted:
            self.held[key] = wanted

    def pick(self, key: ObjKey, skip: Callable[[int], bool]) -> int | None:
        def usable(value: int) -> bool:
            return self.free_for(value, key) and not skip(value)

        seed = int.from_bytes(hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()[:8], "big")
        for low, high in ((self.static_last + 1, self.last), (self.first, self.static_last)):
            if low > high:
                continue
            start = low + seed % (high - low + 1)
            for value in itertools.chain(range(start, high + 1), range(low, start)):
                if usable(value):
                    return value
        return None


class ServiceAllocator:
    """Cluster IPs from `cidr` and node ports from `node_ports`; see the module docstring."""

    def __init__(
        self,
        cidr: ipaddress.IPv4Network = SERVICE_CIDR,
        node_ports: tuple[int, int] = NODE_PORT_RANGE,
        reserved: ipaddress.IPv4Network | None = POD_ADDRESS_RANGE,
    ) -> None:
        self.cidr = cidr
        self.reserved = reserved if reserved is not None and reserved.subnet_of(cidr) else None
        self.node_ports = node_ports
        base, size = int(cidr.network_address), cidr.num_addresses
        # Network and broadcast addresses are never handed out.
        self._ips = _Table(base + 1, base + size - 2, min(max(16, size // 16), 256))
        first, last = node_ports
        self._ports = _Table(first, last, min(max(16, (last - first + 1) // 32), 128))

    # -- what is taken: committed Services only --------------------------------------------

    def load(self, services: Iterable[JSONDict]) -> None:
        """Rebuild from the stored Services (at start)."""
        for service in services:
            self._record(service)

    def observe(self, event: Event) -> None:
        """A store listener: every committed write or deletion of a Service."""
        if event.resource != SERVICE_RESOURCE:
            return
        if event.type == "DELETED":
            key = (event.namespace, event.name)
            self._ips.set_holdings(key, ())
            self._ports.set_holdings(key, ())
        else:
            self._record(event.object)

    def _record(self, service: JSONDict) -> None:
        meta = service.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        spec = service.get("spec") or {}
        ips = []
        for text in [spec.get("clusterIP"), *_ips(spec)]:
            value = self._parse_ip(str(text or ""))
            if value is not None:
                ips.append(value)
        self._ips.set_holdings(key, ips)
        self._ports.set_holdings(key, (_node_port(p) for p in _ports(spec)))

    def _reserved(self, value: int) -> bool:
        return self.reserved is not None and ipaddress.IPv4Address(value) in self.reserved

    def _parse_ip(self, text: str) -> int | None:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
        return int(address) if address.version == 4 else None

    def holder_of_ip(self, ip: str) -> ObjKey | None:
        value = self._parse_ip(ip)
        return None if value is None else self._ips.owner.get(value)

    def holder_of_node_port(self, port: int) -> ObjKey | None:
        return self._ports.owner.get(port)

    # -- prepare a write -------------------------------------------------------------------

    def prepare(self, obj: JSONDict, old: JSONDict | None) -> None:
        """Make `obj` (a Service about to be created, or to replace `old`) carry its cluster
        IP and node ports; raise a 422 `ApiError` as Kubernetes would, or a 500 when a range
        is full. Takes nothing: the commit does (see `observe`)."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return  # schema validation has already rejected it
        old_spec: JSONDict | None = None
        if old is not None:
            old_spec = old.get("spec") or {}
            patch_allocated_values(spec, old_spec)
            drop_type_dependent_fields(spec, old_spec)
        normalize_cluster_ips(spec, old_spec)
        init_ip_families(spec)
        causes = spec_causes(spec, old_spec)
        if causes:
            raise errors.invalid("Service", key[1], "", causes)
        self._assign_cluster_ip(spec, key)
        self._assign_node_ports(spec, key)

    def _assign_cluster_ip(self, spec: JSONDict, key: ObjKey) -> None:
        if not needs_cluster_ip(spec) or spec.get("clusterIP") == "None":
            return
        requested = str(spec.get("clusterIP") or "")
        if requested:
            value = self._parse_ip(requested)
            problem = None
            if value is None or not self._ips.in_range(value):
                problem = (
                    f"the provided IP ({requested}) is not in the valid range. The range of "
                    f"valid IPs is {self.cidr}"
                )
            elif self._reserved(value):
                problem = f"addresses in {self.reserved} are reserved for pods on this node"
            elif not self._ips.free_for(value, key):
                problem = "provided IP is already allocated"
            if problem is not None:
                message = (
                    f"Invalid value: {_go_value(_ips(spec))}: failed to allocate IP "
                    f"{requested}: {problem}"
                )
                raise errors.invalid("Service", key[1], "", [Cause("spec.clusterIPs", message)])
            return
        first = self._ips.first
        if key == MASTER_SERVICE and self._ips.free_for(first, key):
            value = first
        else:
            # The first address stays for the `kubernetes` Service, created or not.
            found = self._ips.pick(key, lambda v: v == first or self._reserved(v))
            if found is None:
                raise _internal("failed to allocate a serviceIP: range is full")
            value = found
        ip = str(ipaddress.IPv4Address(value))
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _assign_node_ports(self, spec: JSONDict, key: ObjKey) -> None:
        if _type(spec) not in _NODE_PORT_TYPES:
            return
        ports = _ports(spec)
        chosen: set[int] = set()
        # service port -> (node port, protocols using it): ports that differ only in protocol
        # share one node port, as in Kubernetes.
        shared: dict[object, tuple[int, set[str]]] = {}
        for index, port in enumerate(ports):
            number = _node_port(port)
            if not number:
                continue
            if number not in chosen:
                problem = None
                if not self._ports.in_range(number):
                    first, last = self.node_ports
                    problem = (
                        "provided port is not in the valid range. The range of valid ports "
                        f"is {first}-{last}"
                    )
                elif not self._ports.free_for(number, key):
                    problem = "provided port is already allocated"
                if problem is not None:
                    cause = Cause(
                        f"spec.ports[{index}].nodePort", f"Invalid value: {number}: {problem}"
                    )
                    raise errors.invalid("Service", key[1], "", [cause])
            chosen.add(number)
            protocol = str(port.get("protocol") or "TCP")
            shared.setdefault(port.get("port"), (number, set()))[1].add(protocol)
        if not needs_node_ports(spec):
            return  # LoadBalancer without node ports: only requested ones are kept
        for port in ports:
            if _node_port(port):
                continue
            protocol = str(port.get("protocol") or "TCP")
            found = shared.get(port.get("port"))
            if found is not None and protocol not in found[1]:
                number = found[0]
            else:
                picked = self._ports.pick(key, chosen.__contains__)
                if picked is None:
                    raise _internal("failed to allocate a nodePort: range is full")
                number = picked
            port["nodePort"] = number
            chosen.add(number)
            shared.setdefault(port.get("port"), (number, set()))[1].add(protocol)


def _internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
