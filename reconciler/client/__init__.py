"""One async Kubernetes client interface: in-process (embedded plane) and HTTP (kubeconfig)."""

from reconciler.client.base import Client, ObjectList, PatchType, ResourceInfo, WatchEvent
from reconciler.client.errors import (
    AlreadyExistsError,
    BadRequestError,
    ClientError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    NotFoundError,
    ServerError,
    UnauthorizedError,
)

__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "Client",
    "ClientError",
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "InvalidError",
    "NotFoundError",
    "ObjectList",
    "PatchType",
    "ResourceInfo",
    "ServerError",
    "UnauthorizedError",
    "WatchEvent",
]
