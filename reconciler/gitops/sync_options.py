"""Argo CD's sync options, as Recon reads them. Pure.

Two places carry them, as in Argo CD: an Application's `spec.syncPolicy.syncOptions` (the
whole sync) and an object's `argocd.argoproj.io/sync-options` annotation (that object,
comma-separated, white space trimmed). Every decision a sync takes from them is a function
here, so the render, the apply, the prune and the tests read them one way:

- `Validate=false`: unknown fields are dropped (the API's `fieldValidation=Ignore`, what
  `kubectl apply --validate=false` sends) and required fields are left to the API server,
  which judges the object as merged with the live one (`render.py`);
- `SkipDryRunOnMissingResource=true`: a custom resource whose kind nobody declares yet is
  not an error, and a dry run does not ask the server about it;
- `Replace=true` and `ServerSideApply=true`: how an object is written (`apply_mode`);
- `PrunePropagationPolicy`: how pruned objects' dependents go (`prune_propagation`);
- `FailOnSharedResource=true`: `shared_with` names the other Application;
- `Force=true` (objects): a write the API refuses as invalid (an immutable field changed,
  as in a Job's template) deletes the live object and creates it anew (`apply.py`).

An object annotation naming an option Recon reads with a value Argo CD does not know
(`Validate=no`) is an error at the object's file and line: silently ignoring it would do
what the user tried to turn off. Options Recon does not read (`PruneLast=true`,
...) are ignored on objects, as before; on the Application the CRD's
schema admits only the values of `APP_OPTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from reconciler.manifests.loader import Manifest

__all__ = [
    "APP_OPTIONS",
    "OBJECT_OPTIONS",
    "OWNER_ANNOTATION",
    "SYNC_OPTIONS",
    "ApplyMode",
    "annotation_errors",
    "app_option_errors",
    "apply_mode",
    "object_options",
    "prune_propagation",
    "replaces_live",
    "shared_with",
    "skips_dry_run",
    "validates",
]

JSONDict = dict[str, Any]
ApplyMode = Literal["apply", "server-side", "replace"]

SYNC_OPTIONS: Final = "argocd.argoproj.io/sync-options"
OWNER_ANNOTATION: Final = "recon.dev/application"

# The object options Recon reads, with every value Argo CD knows for them.
OBJECT_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "Prune": ("true", "false", "confirm"),
    "Delete": ("true", "false", "confirm"),
    "ServerSideApply": ("true", "false"),
    "Replace": ("true", "false"),
    "Validate": ("true", "false"),
    "SkipDryRunOnMissingResource": ("true", "false"),
    "Force": ("true", "false"),
}

# Argo CD's `PrunePropagationPolicy` values and the API's `propagationPolicy` for each.
PROPAGATION: Final[Mapping[str, str]] = {
    "foreground": "Foreground",
    "background": "Background",
    "orphan": "Orphan",
}

# Recon keeps the policy it always pruned with (Argo CD's default is foreground): a
# background prune is gone at once, a foreground one lingers as Terminating until its
# dependents are (see docs/design/gitops.md).
DEFAULT_PROPAGATION: Final = "Background"

# Every Application option Recon honours or accepts, as the CRD's schema enumerates them
# (`schemas/application-crd.yaml`; a unit test keeps the two the same).
APP_OPTIONS: Final[tuple[str, ...]] = (
    "CreateNamespace=true",
    "CreateNamespace=false",
    "PruneLast=true",
    "PruneLast=false",
    "ServerSideApply=true",
    "ServerSideApply=false",
    "PrunePropagationPolicy=foreground",
    "PrunePropagationPolicy=background",
    "PrunePropagationPolicy=orphan",
    "Validate=true",
    "Validate=false",
    "FailOnSharedResource=true",
    "FailOnSharedResource=false",
    "ApplyOutOfSyncOnly=true",
    "ApplyOutOfSyncOnly=false",
    "Replace=true",
    "Replace=false",
    "SkipDryRunOnMissingResource=true",
    "SkipDryRunOnMissingResource=false",
)


def _annotation(obj: Mapping[str, Any] | None) -> str:
    if not obj:
        return ""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SYNC_OPTIONS) or "") if isinstance(annotations, dict) else ""


def object_options(obj: Mapping[str, Any] | None) -> frozenset[str]:
    """An object's own sync options (`Prune=false`, ...); empty for None or none."""
    return frozenset(part.strip() for part in _annotation(obj).split(",") if part.strip())


def annotation_errors(m: Manifest) -> list[str]:
    """What is wrong with the object's sync-options annotation, at its file and line: an
    option Recon reads with a value Argo CD does not know (a typo that would otherwise
    silently do what the user meant to turn off)."""
    out = []
    for option in sorted(object_options(m.obj)):
        name, _, value = option.partition("=")
        known = OBJECT_OPTIONS.get(name)
        if known is not None and value not in known:
            expected = " or ".join(f"{name}={v}" for v in known)
            line = m.line_of(("metadata", "annotations", SYNC_OPTIONS))
            out.append(
                f"{m.source.file}:{line}: metadata.annotations[{SYNC_OPTIONS}]: "
                f"{option!r}: expected {expected}"
            )
    return out


def app_option_errors(options: Sequence[Any]) -> list[str]:
    """Each entry of `spec.syncPolicy.syncOptions` Recon does not know, by its index (the
    CRD's schema refuses them; an Application written under an older CRD may have them)."""
    return [
        f"syncPolicy.syncOptions[{i}]: {option!r}: not a sync option Recon honours "
        f"(expected one of {', '.join(APP_OPTIONS)})"
        for i, option in enumerate(options)
        if option not in APP_OPTIONS
    ]


def prune_propagation(options: Sequence[str]) -> str:
    """The API's `propagationPolicy` for pruning under an Application's options."""
    for option in options:
        name, _, value = option.partition("=")
        if name == "PrunePropagationPolicy" and value in PROPAGATION:
            return PROPAGATION[value]
    return DEFAULT_PROPAGATION


def validates(app_validates: bool, options: frozenset[str]) -> bool:
    """Whether an object is validated strictly: the object's own `Validate=` wins over the
    Application's."""
    if "Validate=false" in options:
        return False
    if "Validate=true" in options:
        return True
    return app_validates


def skips_dry_run(app_skips: bool, options: frozenset[str]) -> bool:
    """Whether an object of a kind nobody declares yet is accepted unvalidated (and not
    dry-run): the object's own `SkipDryRunOnMissingResource=` wins over the Application's."""
    if "SkipDryRunOnMissingResource=true" in options:
        return True
    if "SkipDryRunOnMissingResource=false" in options:
        return False
    return app_skips


def apply_mode(app_server_side: bool, app_replace: bool, options: frozenset[str]) -> ApplyMode:
    """How an object is written, from the Application's options and its own: `Replace=true`
    takes precedence over `ServerSideApply=true` (as in Argo CD), an object's own value
    over the Application's, kubectl's three-way apply otherwise."""
    if "Replace=true" in options or (app_replace and "Replace=false" not in options):
        return "replace"
    if "ServerSideApply=true" in options:
        return "server-side"
    if app_server_side and "ServerSideApply=false" not in options:
        return "server-side"
    return "apply"


def replaces_live(desired_options: frozenset[str], live: Mapping[str, Any] | None) -> bool:
    """Whether the live object's own `Replace=true` makes this write a replace too (Argo CD
    looks at both: the write that removes the annotation from git still replaces), unless
    git now says `Replace=false`."""
    return "Replace=false" not in desired_options and "Replace=true" in object_options(live)


def shared_with(live: Mapping[str, Any] | None, app_key: str) -> str | None:
    """The other Application a live object belongs to (its `recon.dev/application`), or
    None when it is this one's, nobody's, or missing."""
    if not live:
        return None
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    owner = annotations.get(OWNER_ANNOTATION) if isinstance(annotations, dict) else None
    return str(owner) if owner and owner != app_key else None
