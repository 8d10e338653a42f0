"""The Endpoints and EndpointSlice controller: which pods back each Service.

For every Service with a selector, `plan` (pure) lists the pods it selects that have an IP
and are neither finished nor terminating (as Kubernetes does, a pod leaves its Endpoints the
moment it gets a `deletionTimestamp`, so nothing sends it new work while it shuts down):
ready ones (Ready condition True) as `addresses`, the rest as `notReadyAddresses` — with
`publishNotReadyAddresses`, every such pod, terminating ones included, as `addresses`; each
Service port is resolved to a port number per pod (a named `targetPort` is looked up in
that pod's container ports, so pods that name a port differently land in different
subsets). The same facts are written as one `discovery.k8s.io/v1` EndpointSlice owned by
the Service. The service proxy and health checks read these; Services without a selector
are left to whoever manages their Endpoints.

A pod event must find the Services selecting the pod. Each Service's selector is parsed
once, when the Service is added or changed (`_selectors`, per namespace), not once per pod
event: with 333 Services, re-parsing them all for every pod update was most of the
controller's time during a first GitOps sync.

Writes go through optimistic concurrency against the informer's copy; a 409 (the cache had
not seen this controller's previous write yet) is retried with back-off like any transient
error, never dropped: no later event is owed to the Service, so a dropped write would leave
stale addresses (a terminating pod still listed as ready) until some pod changed again.

Not done: EndpointSlices listing terminating pods with the `terminating` condition (the
slice mirrors the Endpoints).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey, obj_key
from reconciler.controllers.podutil import is_ready, is_terminal, owner_reference
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import LabelSelector, SelectorError, label_selector_from_spec

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def _selector(service: JSONDict) -> LabelSelector | None:
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None
    return label_selector_from_spec({"matchLabels": selector})


def _resolve_port(pod: JSONDict, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def _address(pod: JSONDict) -> JSONDict:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    out: JSONDict = {
        "ip": (pod.get("status") or {}).get("podIP"),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        },
    }
    if spec.get("nodeName"):
        out["nodeName"] = spec["nodeName"]
    if spec.get("hostname"):
        out["hostname"] = spec["hostname"]
    return out


def plan_endpoints(service: JSONDict, pods: list[JSONDict]) -> JSONDict:
    """The `subsets` of the Service's Endpoints."""
    selector = _selector(service)
    ports = (service.get("spec") or {}).get("ports") or []
    groups: dict[tuple[tuple[str, int, str], ...], JSONDict] = {}
    if selector is None:
        return {"subsets": []}
    # Stateful peers that must find each other before they are ready (a database cluster
    # forming through its headless Service) ask for every pod, ready or not, terminating too.
    publish_all = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        meta = pod.get("metadata") or {}
        if not selector.matches(meta.get("labels") or {}):
            continue
        if not (pod.get("status") or {}).get("podIP"):
            continue
        if is_terminal(pod) or (meta.get("deletionTimestamp") and not publish_all):
            continue
        resolved = []
        for port in ports:
            number = _resolve_port(pod, port.get("targetPort", port.get("port")))
            if number is not None:
                resolved.append(
                    (str(port.get("name", "")), number, str(port.get("protocol", "TCP")))
                )
        key = tuple(resolved)
        group = groups.setdefault(key, {"addresses": [], "notReadyAddresses": []})
        ready = publish_all or is_ready(pod)
        group["addresses" if ready else "notReadyAddresses"].append(_address(pod))
    subsets = []
    for key, group in groups.items():
        subset: JSONDict = {k: v for k, v in group.items() if v}
        subset["ports"] = [
            {"name": n, "port": p, "protocol": proto} if n else {"port": p, "protocol": proto}
            for n, p, proto in key
        ]
        subsets.append(subset)
    return {"subsets": subsets}


def plan_slice(service: JSONDict, subsets: list[JSONDict]) -> JSONDict:
    meta = service.get("metadata") or {}
    endpoints = []
    ports: list[JSONDict] = []
    for subset in subsets:
        for state, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(state) or []:
                entry: JSONDict = {
                    "addresses": [address["ip"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": False},
                    "targetRef": address["targetRef"],
                }
                if address.get("nodeName"):
                    entry["nodeName"] = address["nodeName"]
                endpoints.append(entry)
        for port in subset.get("ports") or []:
            if port not in ports:
                ports.append(port)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta.get('name')}-recon",
            "namespace": meta.get("namespace"),
            "labels": {SERVICE_NAME_LABEL: meta.get("name"), MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [owner_reference(service)],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


class EndpointsController:
    name = "endpoints"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.services: Informer
        self.pods: Informer
        self.endpoints: Informer
        # namespace -> Service key -> its parsed selector (Services with one only)
        self._selectors: dict[str, dict[ObjKey, LabelSelector]] = {}

    def setup(self, factory: InformerFactory) -> None:
        self.services = factory.informer("v1", "Service")
        self.pods = factory.informer("v1", "Pod")
        self.endpoints = factory.informer("v1", "Endpoints")
        mine = self.queue.add

        def service(obj: JSONDict) -> None:
            self._remember_selector(obj)
            mine(obj_key(obj))

        def service_deleted(obj: JSONDict) -> None:
            self._forget_selector(obj_key(obj))
            mine(obj_key(obj))

        self.services.add_handlers(Handlers(service, lambda _o, n: service(n), service_deleted))

        def pod(obj: JSONDict) -> None:
            meta = obj.get("metadata") or {}
            labels = meta.get("labels") or {}
            for key, selector in self._selectors.get(str(meta.get("namespace") or ""), {}).items():
                if selector.matches(labels):
                    mine(key)

        def pod_changed(old: JSONDict, new: JSONDict) -> None:
            if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get(
                "labels"
            ):
                pod(old)  # labels may have moved the pod out of a Service ...
            pod(new)  # ... and into another

        self.pods.add_handlers(Handlers(pod, pod_changed, pod))

    def _remember_selector(self, service: JSONDict) -> None:
        key = obj_key(service)
        try:
            selector = _selector(service)
        except SelectorError as e:
            # Never raise in an informer handler; the reconcile reports it.
            log.warning("endpoints: Service %s/%s: %s", *key, e)
            selector = None
        if selector is None:
            self._forget_selector(key)
        else:
            self._selectors.setdefault(key[0], {})[key] = selector

    def _forget_selector(self, key: ObjKey) -> None:
        in_namespace = self._selectors.get(key[0])
        if in_namespace is not None:
            in_namespace.pop(key, None)
            if not in_namespace:
                del self._selectors[key[0]]

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        service = self.services.get(namespace, name)
        if service is None:
            existing = self.endpoints.get(namespace, name)
            if (
                existing is not None
                and (existing.get("metadata") or {}).get("labels", {}).get(MANAGED_BY_LABEL)
                == MANAGED_BY
            ):
                with contextlib.suppress(NotFoundError):
                    await self.client.delete("v1", "Endpoints", name, namespace)
            return Result()
        if not (service.get("spec") or {}).get("selector"):
            return Result()  # not ours: whoever manages the Service writes its Endpoints
        wanted = plan_endpoints(service, self.pods.list(namespace))
        existing = self.endpoints.get(namespace, name)
        body = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    **((service.get("metadata") or {}).get("labels") or {}),
                    MANAGED_BY_LABEL: MANAGED_BY,
                },
            },
            **wanted,
        }
        # A 409 or 404 here means the cache is behind the API: raised, the key is retried
        # with back-off from a fresher cache (see the module docstring).
        if existing is None:
            await self.client.create(body)
        elif (existing.get("subsets") or []) != wanted["subsets"]:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await self.client.update(body)
        slice_obj = plan_slice(service, wanted["subsets"])
        try:
            current = await self.client.get(
                "discovery.k8s.io/v1", "EndpointSlice", slice_obj["metadata"]["name"], namespace
            )
        except NotFoundError:
            await self.client.create(slice_obj)
        else:
            if (current.get("endpoints") or []) != slice_obj["endpoints"] or (
                current.get("ports") or []
            ) != slice_obj["ports"]:
                slice_obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                await self.client.update(slice_obj)
        return Result()
