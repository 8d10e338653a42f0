"""From files to validated manifests: the step before anything is applied.

`recon apply`, `recon diff`, the Application sync and the hosted repositories' pre-receive
hook all call `load_and_validate`, so a manifest set is judged the same everywhere: every
load error and every schema error (upstream schemas, the CRDs the cluster has, the CRDs in
the set and the project's own schemas), each at its `file:line`, all at once. A caller
applies nothing while the list of errors is not empty.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.manifests.loader import Manifest, ManifestError, load_paths
from reconciler.schema.manifest_validation import ManifestValidator, project_schema_dirs

__all__ = ["Loaded", "load_and_validate", "source_paths"]

_intern = sys.intern


def _shared(value: Any) -> Any:
    if isinstance(value, dict):
        return {_intern(k) if k.__class__ is str else k: _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    return _intern(value) if value.__class__ is str else value


@dataclass
class Loaded:
    manifests: list[Manifest]
    """The desired state (hooks and `Skip`ped objects are not in it)."""
    errors: list[str] = field(default_factory=list)
    hooks: dict[str, list[Manifest]] = field(default_factory=dict)
    """Hooks by phase (`gitops/hooks.py`)."""

    def kept(self, root: str = "") -> Loaded:
        """The same manifests as a render cache keeps them: strings shared (`sys.intern`)
        between documents, which repeat the same keys and most values (1,000 objects: ≈4
        MB parsed from YAML, ≈1 MB so), without each file's text, which only points
        validation errors at lines and is not needed once the set is validated, and with
        their files named from `root` (the checkout: as the repository names them, like the
        errors, not by where the cache keeps the tree)."""

        def kept(m: Manifest) -> Manifest:
            return dataclasses.replace(
                m,
                obj=_shared(m.obj),
                source=dataclasses.replace(m.source, file=m.source.file.removeprefix(root)),
                file_lines=None,
            )

        return Loaded(
            [kept(m) for m in self.manifests],
            list(self.errors),
            {phase: [kept(m) for m in hooks] for phase, hooks in self.hooks.items()},
        )


async def load_and_validate(
    client: Client | None, paths: Sequence[str], kubernetes_version: str | None
) -> Loaded:
    """Load `paths` and validate every document; `client` (optional) contributes the
    target's CRDs so custom resources of installed CRDs validate too."""
    try:
        loaded = load_paths(list(paths))
    except ManifestError as e:
        return Loaded([], [str(e)])
    server_crds: list[dict[str, Any]] = []
    if client is not None:
        with contextlib.suppress(ClientError):  # a cluster without CRDs, or no permission
            server_crds = (
                await client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            ).items
    validator = ManifestValidator(
        kubernetes_version, extra_crds=server_crds, schema_dirs=project_schema_dirs()
    )
    issues = validator.validate(loaded.manifests)
    errors = [str(e) for e in loaded.errors] + [str(i) for i in issues]
    return Loaded(list(loaded.manifests), sorted(errors))


_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def source_paths(tree: Path, path: str, *, recurse: bool = True) -> list[str]:
    """The files or folder of a checkout an Application deploys (only the folder's own
    files when `recurse` is off, unless it is a kustomization); refuses to leave the
    checkout."""
    base = tree.resolve()
    target = (base / path).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"path {path!r} leaves the repository")
    if not target.exists():
        raise ValueError(f"path {path!r} does not exist in the repository")
    kustomized = any((target / n).exists() for n in ("kustomization.yaml", "kustomization.yml"))
    if recurse or not target.is_dir() or kustomized:
        return [str(target)]
    return sorted(
        str(p) for p in target.iterdir() if p.is_file() and p.suffix in _MANIFEST_SUFFIXES
    )
