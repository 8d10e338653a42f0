"""The merge package's exception tree; the API server maps each to its HTTP status in one place.

A patch that cannot be applied is the client's fault, so every failure here is a `ValueError`
whose message names the field path where the problem is, in the dotted form Kubernetes uses in
its own errors (`spec.template.spec.containers[0]: ...`):

    ValueError
    └── PatchError              (400 Bad Request / 422 for an invalid patch document)
        └── PatchTestFailedError (422 Unprocessable Entity: a JSON patch `test` op failed)
"""

from __future__ import annotations


class PatchError(ValueError):
    """A patch is malformed or cannot be applied to the document.

    `path` is where in the document (or patch) the problem is, `''` for the root; `reason` is
    the message without the path, for callers that build their own status message.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class PatchTestFailedError(PatchError):
    """A JSON patch (RFC 6902) `test` operation found a different value than it expected."""
