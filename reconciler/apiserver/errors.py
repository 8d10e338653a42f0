"""API errors as Kubernetes `Status` objects: the one place HTTP codes and reasons are chosen.

Every failure a client can see is an `ApiError`; store errors are translated here
(`from_store_error`) so handlers never pick status codes themselves. The body shape is what
kubectl, client-go, the Python client and kopf parse: `kind: Status`, `status: Failure`,
`reason`, `code`, `message` and `details` (with `causes` carrying field paths for 422).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.schema.metadata import Cause
from reconciler.store.errors import (
    AlreadyExistsError,
    ConflictError,
    GoneError,
    NotFoundError,
    StoreError,
)

JSONDict = dict[str, Any]

__all__ = ["ApiError", "Cause"]  # Cause (field, message, reason) is shared with validation


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    kind: str = ""
    name: str = ""
    group: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> JSONDict:
        details: JSONDict = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes
            ]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: JSONDict = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', resource, name, group)


def forbidden(resource: str, name: str, group: str, why: str) -> ApiError:
    """Upstream's admission refusal: `pods "web" is forbidden: <why>`."""
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        403, "Forbidden", f'{qualified} "{name}" is forbidden: {why}', resource, name, group
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, group: str, causes: list[Cause]) -> ApiError:
    summary = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', kind, name, group, causes
    )


def conflict(resource: str, name: str, group: str, message: str) -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": {message}',
        resource,
        name,
        group,
    )


def already_exists(resource: str, name: str, group: str) -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409, "AlreadyExists", f'{qualified} "{name}" already exists', resource, name, group
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def from_store_error(err: StoreError, resource: str, name: str, group: str) -> ApiError:
    if isinstance(err, NotFoundError):
        return not_found(resource, name, group)
    if isinstance(err, AlreadyExistsError):
        return already_exists(resource, name, group)
    if isinstance(err, ConflictError):
        return conflict(resource, name, group, str(err))
    if isinstance(err, GoneError):
        return gone(str(err))
    return ApiError(500, "InternalError", f"store error: {err}")
