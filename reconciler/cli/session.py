"""What every client command shares: finding the server, the Application it names, and
turning API and connection failures into one clear line and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import click

from reconciler.cli.apply_diff import DEFAULT_DATA_DIR, make_client
from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.client.kubeconfig import KubeconfigError
from reconciler.gitops.application import API_VERSION, KIND

__all__ = ["AppRef", "client_options", "get_app", "run_with_client"]

JSONDict = dict[str, Any]
T = TypeVar("T")


def client_options(f: Any) -> Any:
    """--kubeconfig, then KUBECONFIG, then the kubeconfig `recon serve` wrote in --data-dir;
    -n for the Applications' namespace."""
    for option in reversed(
        [
            click.option("--kubeconfig", default=None, help="Kubeconfig of the server."),
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path),
                default=DEFAULT_DATA_DIR,
                show_default=True,
                help="Where `recon serve` wrote its kubeconfig (used without --kubeconfig "
                "and KUBECONFIG).",
            ),
            click.option(
                "-n",
                "--namespace",
                default="default",
                show_default=True,
                help="Namespace of the Application (or write APP as NAMESPACE/NAME).",
            ),
        ]
    ):
        f = option(f)
    return f


class AppRef:
    """An Application named on the command line: `NAME` (in -n) or `NAMESPACE/NAME`."""

    def __init__(self, text: str, namespace: str) -> None:
        ns, _, name = text.rpartition("/")
        self.namespace = ns or namespace
        self.name = name
        if not name:
            raise click.UsageError(f"not an Application name: {text!r}")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


async def get_app(client: Client, ref: AppRef) -> JSONDict:
    try:
        return await client.get(API_VERSION, KIND, ref.name, ref.namespace)
    except NotFoundError:
        raise click.ClickException(f"no Application {ref}") from None


def run_with_client(
    kubeconfig: str | None, data_dir: Path, work: Callable[[Client], Awaitable[T]]
) -> T:
    """Run `work` with a client of the server; any failure to reach it or an API error
    becomes a ClickException (exit 1) naming the cause."""

    async def main() -> T:
        try:
            client = make_client(kubeconfig, data_dir)
        except KubeconfigError as e:
            raise click.ClickException(
                f"cannot find the server: {e} (start `recon serve`, or pass --kubeconfig)"
            ) from None
        try:
            return await work(client)
        except ClientError as e:
            raise click.ClickException(e.message) from None
        except (OSError, aiohttp.ClientError) as e:
            raise click.ClickException(f"cannot reach the server: {e}") from None
        finally:
            await client.close()

    return asyncio.run(main())
