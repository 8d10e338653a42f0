"""From files to validated manifests: the step before anything is applied.

`recon apply`, `recon diff`, the Application sync and the hosted repositories' pre-receive
hook all call `load_and_validate`, so a manifest set is judged the same everywhere: every
load error and every schema error (upstream schemas, the CRDs the cluster has, the CRDs in
the set and the project's own schemas), each at its `file:line`, all at once. A caller
applies nothing while the list of errors is not empty.

Argo CD's sync options relax some of it, per object (`argocd.argoproj.io/sync-options`)
or for a whole Application (the `validate` / `skip_missing` arguments), as `kubectl apply
--validate=false` and Argo CD's skipped dry run would:

- `Validate=false`: an unknown field is a warning and is dropped from the object (the API
  server's `fieldValidation=Ignore` drops it too: dropping it here keeps what is applied,
  compared and recorded in last-applied the same, so such a field is not drift forever);
  a missing required field is *deferred* to the API server, which judges the object as
  merged with the live one (Argo CD's partial objects under server-side apply) — the sync
  checks such an object exists before applying anything (`SyncEngine`). Wrong types, bad
  metadata and the API server's own rules stay errors: the server would refuse them too.
- `SkipDryRunOnMissingResource=true`: a kind no schema or CRD declares is a warning, not
  an error (a controller may create its CRD during the sync, as gatekeeper does); its
  objects are left for the API server to judge when they are applied.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.gitops.sync_options import (
    annotation_errors,
    object_options,
    skips_dry_run,
    validates,
)
from reconciler.manifests.loader import Manifest, ManifestError, load_paths
from reconciler.schema.manifest_validation import (
    MISSING_REQUIRED,
    UNKNOWN_FIELD,
    UNKNOWN_KIND,
    ManifestValidator,
    project_schema_dirs,
)
from reconciler.schema.validation import prune

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
    warnings: list[str] = field(default_factory=list)
    """What a sync option let through (each at its file:line): shown, not fatal."""
    deferred: dict[tuple[str, str, str, str], list[str]] = field(default_factory=dict)
    """Missing required fields of `Validate=false` objects by `Manifest.identity()`: the
    API server judges them merged with the live object, which must therefore exist."""

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
            list(self.warnings),
            {key: list(found) for key, found in self.deferred.items()},
        )


@dataclass
class Judged:
    """One object's verdict: the object to apply (unknown fields dropped when allowed) and
    its errors, warnings and deferred required fields."""

    manifest: Manifest
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)


def without_fields(m: Manifest, paths: Sequence[tuple[str | int, ...]]) -> Manifest:
    """`m` with the fields at `paths` removed from a copy of its object (lines kept)."""
    obj = copy.deepcopy(m.obj)
    for parts in paths:
        if parts:
            prune(obj, parts)
    return dataclasses.replace(m, obj=obj)


def judge(
    validator: ManifestValidator, m: Manifest, *, validate: bool = True, skip_missing: bool = False
) -> Judged:
    """Validate one object under the Application's `Validate` and
    `SkipDryRunOnMissingResource` options and its own (see the module's docstring)."""
    options = object_options(m.obj)
    verdict = Judged(m, annotation_errors(m))
    issues = validator.validate_one(m)
    if skips_dry_run(skip_missing, options) and any(i.cause == UNKNOWN_KIND for i in issues):
        verdict.warnings.append(
            f"{m.where}: {m.kind} ({m.api_version}) not validated: no schema or "
            "CustomResourceDefinition declares it yet (SkipDryRunOnMissingResource=true)"
        )
        return verdict
    if not validates(validate, options):
        unknown = [i for i in issues if i.cause == UNKNOWN_FIELD]
        if unknown:
            verdict.manifest = without_fields(m, [i.parts for i in unknown])
            verdict.warnings += [f"{i}: dropped (Validate=false)" for i in unknown]
            issues = validator.validate_one(verdict.manifest)
        verdict.deferred = [str(i) for i in issues if i.cause == MISSING_REQUIRED]
        issues = [i for i in issues if i.cause != MISSING_REQUIRED]
    verdict.errors += [str(i) for i in sorted(issues)]
    return verdict


async def load_and_validate(
    client: Client | None,
    paths: Sequence[str],
    kubernetes_version: str | None,
    *,
    validate: bool = True,
    skip_missing: bool = False,
) -> Loaded:
    """Load `paths` and validate every document; `client` (optional) contributes the
    target's CRDs so custom resources of installed CRDs validate too. `validate=False` and
    `skip_missing=True` are an Application's `Validate=false` and
    `SkipDryRunOnMissingResource=true` (objects' own annotations count either way)."""
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
    validator.prepare(loaded.manifests)
    out = Loaded([], [str(e) for e in loaded.errors])
    for m in loaded.manifests:
        verdict = judge(validator, m, validate=validate, skip_missing=skip_missing)
        out.manifests.append(verdict.manifest)
        out.errors += verdict.errors
        out.warnings += verdict.warnings
        if verdict.deferred:
            out.deferred[m.identity()] = verdict.deferred
    out.errors.sort()
    out.warnings.sort()
    return out


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
