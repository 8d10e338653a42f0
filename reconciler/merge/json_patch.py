"""JSON patch (RFC 6902) for `application/json-patch+json` PATCH requests.

The operations themselves are the `jsonpatch` library's; this module is the boundary that
turns its exceptions into the merge package's (`PatchError`, and `PatchTestFailedError` for a
failed `test`, which the API server answers with 422) and words their messages itself: the
library's messages can quote the whole document, and a document may be a Secret.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from reconciler.merge._json import JSONDict, deep_copy, describe
from reconciler.merge.errors import PatchError, PatchTestFailedError

__all__ = ["apply_json_patch"]


def apply_json_patch(doc: JSONDict, ops: list[Any]) -> JSONDict:
    """Apply the operations in order to a copy of `doc` and return it.

    Raises `PatchTestFailedError` when a `test` operation fails, and `PatchError` when an
    operation is malformed or its path does not exist (or cannot be used) in the document,
    or when the result is not a JSON object.
    """
    if not isinstance(ops, list):
        raise PatchError(f"a JSON patch must be an array of operations, not {describe(ops)}")
    steps: list[tuple[str, jsonpatch.JsonPatch]] = []
    for index, op in enumerate(ops):
        try:
            # Checks the operation's shape (op name, path syntax) before anything is applied.
            step = jsonpatch.JsonPatch([op])
        except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as exc:
            # These messages name only parts of the operation ("Unknown operation 'x'",
            # "Location must start with /"), never the document.
            raise PatchError(f"invalid JSON patch: operation {index}: {exc}") from exc
        steps.append((f"operation {index} ({op.get('op')!s} {op.get('path')!s})", step))

    result: Any = deep_copy(doc)
    for where, step in steps:
        try:
            result = step.apply(result, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise PatchTestFailedError(
                f"{where}: test failed: the value there is not the expected one"
            ) from exc
        except jsonpatch.JsonPatchPathNotFound as exc:
            raise PatchError(f"{where}: the location does not exist") from exc
        except jsonpatch.InvalidJsonPatch as exc:
            raise PatchError(f"{where}: invalid operation: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise PatchError(f"{where}: the path does not exist or cannot be used here") from exc
    if not isinstance(result, dict):
        raise PatchError(f"the patched document must be a JSON object, not {describe(result)}")
    return result
