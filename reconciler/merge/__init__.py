"""Pure merge functions: strategic merge patch, JSON merge patch, JSON patch, three-way apply."""

from reconciler.merge.errors import PatchError, PatchTestFailedError
from reconciler.merge.json_merge import apply_merge_patch, create_merge_patch
from reconciler.merge.json_patch import apply_json_patch
from reconciler.merge.strategic import apply_strategic_merge_patch, create_strategic_merge_patch

__all__ = [
    "PatchError",
    "PatchTestFailedError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_merge_patch",
    "create_strategic_merge_patch",
]
