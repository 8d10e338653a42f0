"""`recon validate PATH...`: every load and schema error of a manifest set, at its line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.manifests.loader import ManifestError, load_paths
from reconciler.schema.definitions import SchemaNotFoundError
from reconciler.schema.manifest_validation import ManifestValidator, project_schema_dirs


def default_schema_dirs() -> list[Path]:
    return project_schema_dirs()


def collect_errors(
    paths: list[str], kubernetes_version: str | None, schema_dirs: list[Path]
) -> tuple[int, list[str]]:
    """(number of documents, sorted error lines) for `paths`."""
    loaded = load_paths(paths)
    validator = ManifestValidator(kubernetes_version, schema_dirs=schema_dirs)
    issues = validator.validate(loaded.manifests)
    lines = [(e.file, e.line, str(e)) for e in loaded.errors]
    lines += [(i.file, i.line, str(i)) for i in issues]
    return len(loaded.manifests), [text for _, _, text in sorted(lines)]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--kubernetes-version",
    default=None,
    help="Validate against this Kubernetes version's schemas (default: newest).",
)
@click.option(
    "--schema-dir",
    "schema_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="More CRDs to validate custom resources with (repeatable).",
)
def validate_command(
    paths: tuple[str, ...], kubernetes_version: str | None, schema_dirs: tuple[Path, ...]
) -> None:
    """Validate manifests (files, directories, `-` for stdin) against the Kubernetes schemas.

    Exit code 0 when everything is valid, 1 when anything is not, 2 on usage errors."""
    try:
        count, errors = collect_errors(
            list(paths), kubernetes_version, [*default_schema_dirs(), *schema_dirs]
        )
    except (ManifestError, SchemaNotFoundError) as e:
        click.echo(f"recon validate: {e}", err=True)
        sys.exit(2)
    color = sys.stdout.isatty()
    for line in errors:
        click.echo(click.style(line, fg="red") if color else line)
    if errors:
        click.echo(f"{count} documents, {len(errors)} errors")
        sys.exit(1)
    click.echo(
        click.style(f"{count} documents valid", fg="green") if color else f"{count} documents valid"
    )
