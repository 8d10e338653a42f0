"""Requests in an older served version of a built-in kind, converted at the edge.

The store keeps one version of each kind (the newest GA one). A few older versions are
still what clients send — `kubectl autoscale` (1.32) posts autoscaling/v1
HorizontalPodAutoscalers — so those are served by converting: request bodies into the
stored version before the usual create/update (which validate and default it), objects
back into the requested version on the way out. A patch is applied to the object as seen
in the requested version (read, convert, patch, convert back, update at the read
`resourceVersion`), as upstream applies patches in the request's version. Watches and
subresources are served in the stored version only (a 405 / 404 here says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.hpa_conversion import hpa_v1_to_v2, hpa_v2_to_v1
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.resources import ResourceType

__all__ = ["CONVERTED", "Conversion", "ConvertedVersion"]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Conversion:
    stored_version: str
    to_stored: Callable[[JSONDict], JSONDict]
    from_stored: Callable[[JSONDict], JSONDict]


CONVERTED: dict[tuple[str, str, str], Conversion] = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): Conversion("v2", hpa_v1_to_v2, hpa_v2_to_v1),
}


class ConvertedVersion:
    """CRUD for `rt` (a converted version) on top of `stored` (the stored version)."""

    def __init__(self, service: ObjectService, rt: ResourceType, stored: ResourceType) -> None:
        conversion = CONVERTED.get((rt.group, rt.version, rt.kind))
        if conversion is None:
            raise ValueError(f"no conversion for {rt.api_version} {rt.kind}")
        self.service = service
        self.rt = rt
        self.stored = stored
        self.conversion = conversion

    def _out(self, obj: JSONDict) -> JSONDict:
        return self.conversion.from_stored(obj)

    def _in(self, body: object) -> JSONDict:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if (api_version is not None and api_version != self.rt.api_version) or (
            kind is not None and kind != self.rt.kind
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({self.rt.api_version}) or kind ({kind} vs {self.rt.kind})"
            )
        body = {**body, "apiVersion": self.rt.api_version, "kind": self.rt.kind}
        self.service.check_schema(self.rt, body)
        return self.conversion.to_stored(body)

    def get(self, namespace: str, name: str) -> JSONDict:
        return self._out(self.service.get(self.stored, namespace, name))

    def list(self, items: list[JSONDict]) -> list[JSONDict]:
        return [self._out(item) for item in items]

    def create(self, namespace: str, body: object, **options: Any) -> JSONDict:
        return self._out(self.service.create(self.stored, namespace, self._in(body), **options))

    def update(self, namespace: str, name: str, body: object, **options: Any) -> JSONDict:
        return self._out(
            self.service.update(self.stored, namespace, name, self._in(body), **options)
        )

    def patch(
        self, namespace: str, name: str, content_type: str, patch: object, **options: Any
    ) -> JSONDict:
        current = self.service.get(self.stored, namespace, name)
        result = self.service.applied_patch(self.rt, name, self._out(current), content_type, patch)
        metadata = result.setdefault("metadata", {})
        if isinstance(metadata, dict):
            metadata.setdefault("resourceVersion", current["metadata"].get("resourceVersion"))
        return self.update(namespace, name, result, **options)
