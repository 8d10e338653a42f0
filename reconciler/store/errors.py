"""The store's exception tree; the API server maps each to its HTTP status in one place.

StoreError
├── NotFoundError         (404)
├── AlreadyExistsError    (409, reason AlreadyExists)
├── ConflictError         (409, reason Conflict: stale resourceVersion)
└── GoneError             (410: a watch asked for history that was compacted away)
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every store failure."""


class NotFoundError(StoreError):
    pass


class AlreadyExistsError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class GoneError(StoreError):
    pass
