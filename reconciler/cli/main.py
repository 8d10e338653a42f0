"""The `recon` command line: a thin layer over library functions, one command per job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal

import click

from reconciler.apiserver.server import ListenError, ServerOptions, parse_listen
from reconciler.cli.app_ops import history_command, rollback_command, status_command, sync_command
from reconciler.cli.apply_diff import apply_command, diff_command
from reconciler.cli.apps import app_group
from reconciler.cli.init_repo import init_command
from reconciler.cli.repos import hook_group, repo_group
from reconciler.cli.validate import validate_command
from reconciler.durations import parse_go_duration
from reconciler.embedded import (
    DEFAULT_PAUSE_IMAGE,
    DEFAULT_PROXY_IMAGE,
    EmbeddedPlane,
    NodeOptions,
)
from reconciler.node.eviction_thresholds import (
    DEFAULT_HARD,
    SIGNALS,
    ThresholdError,
    eviction_config,
)
from reconciler.runtime.errors import RuntimeUnavailableError

DEFAULT_DATA_DIR = Path(os.environ.get("RECON_DATA_DIR", "~/.recon")).expanduser()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """Recon: GitOps onto an embedded Kubernetes-compatible control plane."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where state, keys and the kubeconfig live.",
)
@click.option(
    "--listen", default="127.0.0.1:6443", show_default=True, help="HOST:PORT to serve on."
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow --listen on a non-loopback address (the API is then reachable remotely).",
)
@click.option(
    "--kubernetes-version",
    default=None,
    help="Schema version of the built-in kinds (default: the newest shipped).",
)
@click.option(
    "--runtime",
    type=click.Choice(["docker", "memory", "none"]),
    default="docker",
    show_default=True,
    help="Where pods run: docker; memory (a simulation for tests and benchmarks: NOTHING "
    "RUNS); none (an API server and controllers without a node).",
)
@click.option(
    "--pause-image",
    default=DEFAULT_PAUSE_IMAGE,
    show_default=True,
    help="The image of each pod's sandbox container (run with its own entrypoint).",
)
@click.option(
    "--proxy-image",
    default=DEFAULT_PROXY_IMAGE,
    show_default=True,
    help="The image of the Service gateways that pods reach Services through (it needs a "
    "busybox `sh` and `nc`).",
)
@click.option("--node-name", default="", help="Name of this host's Node [default: hostname].")
@click.option(
    "--allow-privileged", is_flag=True, help="Let pods run privileged containers on this host."
)
@click.option(
    "--max-pods",
    type=click.IntRange(min=1),
    default=110,
    show_default=True,
    help="How many pods this host's Node admits (kubelet's --max-pods); the rest stay Pending.",
)
@click.option(
    "--ingress-http-port",
    type=click.IntRange(min=0, max=65535),
    default=80,
    show_default=True,
    help="Where Ingresses answer over HTTP on 127.0.0.1 (0: off). Listened on only while "
    "some Ingress is served (Docker runtime).",
)
@click.option(
    "--ingress-https-port",
    type=click.IntRange(min=0, max=65535),
    default=443,
    show_default=True,
    help="Where Ingresses answer over HTTPS on 127.0.0.1, by SNI from their tls Secrets (0: off).",
)
@click.option(
    "--metric-resolution",
    type=click.FloatRange(min=0.5),
    default=15.0,
    show_default=True,
    help="Seconds between samples of the resource metrics behind `kubectl top` and "
    "autoscaling (metrics-server's --metric-resolution).",
)
@click.option(
    "--eviction-hard",
    default=DEFAULT_HARD,
    show_default=True,
    help="Node-pressure eviction thresholds acted on at once (kubelet's --eviction-hard): "
    "SIGNAL<QUANTITY or SIGNAL<PERCENT%, comma-separated; '' for none. Signals: "
    + ", ".join(SIGNALS)
    + ".",
)
@click.option(
    "--eviction-soft",
    default="",
    help="Thresholds acted on once met for their grace period (kubelet's --eviction-soft).",
)
@click.option(
    "--eviction-soft-grace-period",
    default="",
    help="SIGNAL=DURATION for each soft threshold, e.g. memory.available=1m30s.",
)
@click.option(
    "--eviction-pressure-transition-period",
    default="5m",
    show_default=True,
    help="How long the Node keeps a pressure condition after its threshold is no longer met.",
)
@click.option(
    "--eviction-max-pod-grace-period",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="The longest grace period (seconds) a pod evicted for a soft threshold gets.",
)
@click.option(
    "--housekeeping-interval",
    default="10s",
    show_default=True,
    help="How often the eviction signals are measured.",
)
@click.option(
    "--event-ttl",
    default="1h",
    show_default=True,
    help="How long an Event is kept after its last write (kube-apiserver's --event-ttl).",
)
@click.option(
    "--gitops/--no-gitops",
    default=True,
    show_default=True,
    help="Run the Application controller in-process (--no-gitops: a plain cluster, e.g. for "
    "`recon operator` to target).",
)
def serve(
    data_dir: Path,
    listen: str,
    allow_remote: bool,
    kubernetes_version: str | None,
    runtime: Literal["docker", "memory", "none"],
    pause_image: str,
    proxy_image: str,
    node_name: str,
    allow_privileged: bool,
    max_pods: int,
    ingress_http_port: int,
    ingress_https_port: int,
    metric_resolution: float,
    eviction_hard: str,
    eviction_soft: str,
    eviction_soft_grace_period: str,
    eviction_pressure_transition_period: str,
    eviction_max_pod_grace_period: int,
    housekeeping_interval: str,
    event_ttl: str,
    gitops: bool,
) -> None:
    """Run the embedded control plane (TLS, bearer token) and this host's node agent in the
    foreground."""
    try:
        host, port = parse_listen(listen, allow_remote)
    except ListenError as e:
        raise click.UsageError(str(e)) from e
    try:
        eviction = eviction_config(
            eviction_hard,
            eviction_soft,
            eviction_soft_grace_period,
            eviction_pressure_transition_period,
            eviction_max_pod_grace_period,
            housekeeping_interval,
        )
    except ThresholdError as e:
        raise click.UsageError(f"eviction: {e}") from e
    try:
        ttl = timedelta(seconds=parse_go_duration(event_ttl))
    except ValueError as e:
        raise click.UsageError(f"--event-ttl: {e}") from e
    if ttl <= timedelta(0):
        raise click.UsageError("--event-ttl: must be longer than 0")
    options = ServerOptions(
        data_dir=data_dir.expanduser().resolve(),
        host=host,
        port=port,
        kubernetes_version=kubernetes_version,
        # Pods get ServiceAccount tokens when containers really run to read them (the
        # Docker node's agent issues them); simulated pods have no files to read.
        service_account_tokens=runtime == "docker",
        event_ttl=ttl,
    )
    if runtime == "memory":
        click.secho(
            "recon serve: --runtime memory: NOTHING REALLY RUNS. Pods are simulated in memory "
            "(for tests and benchmarks); use --runtime docker to run containers.",
            fg="yellow",
            bold=True,
            err=True,
        )
    node = NodeOptions(
        runtime=runtime,
        pause_image=pause_image,
        proxy_image=proxy_image,
        node_name=node_name,
        allow_privileged=allow_privileged,
        max_pods=max_pods,
        ingress_http_port=ingress_http_port,
        ingress_https_port=ingress_https_port,
        metric_resolution=metric_resolution,
        eviction=eviction,
    )
    asyncio.run(_serve(options, node, gitops))


async def _serve(options: ServerOptions, node: NodeOptions, gitops: bool) -> None:
    server = EmbeddedPlane(options, node=node, gitops=gitops)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except RuntimeUnavailableError as e:
        click.echo(
            f"recon serve: the container engine is not available ({e}); start dockerd "
            "(scripts/setup-docker.sh does) or pass --runtime none",
            err=True,
        )
        await server.stop()
        sys.exit(1)
    except OSError as e:
        click.echo(f"recon serve: cannot listen on {options.host}:{options.port}: {e}", err=True)
        await server.stop()
        sys.exit(1)
    click.echo(f"recon: API server ready on https://{options.host}:{server.port}", err=True)
    click.echo(f"recon: kubeconfig: {server.kubeconfig}", err=True)
    await stop.wait()
    click.echo("recon: shutting down", err=True)
    await server.stop()


@cli.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True
)
def kubeconfig(data_dir: Path) -> None:
    """Print the path of the kubeconfig `recon serve` wrote."""
    path = data_dir.expanduser().resolve() / "kubeconfig"
    if not path.exists():
        raise click.ClickException(
            f"no kubeconfig at {path}: start `recon serve --data-dir {data_dir}` first"
        )
    click.echo(str(path))


cli.add_command(validate_command)
cli.add_command(apply_command)
cli.add_command(diff_command)
cli.add_command(repo_group)
cli.add_command(hook_group)
cli.add_command(init_command)
cli.add_command(app_group)
cli.add_command(sync_command)
cli.add_command(status_command)
cli.add_command(history_command)
cli.add_command(rollback_command)


@cli.command()
@click.option("--kubeconfig", default=None, help="Kubeconfig of the cluster to manage.")
@click.option(
    "--in-cluster", is_flag=True, help="Use the pod's service account (inside a cluster)."
)
@click.option("--namespace", default=None, help="Watch Applications in this namespace only.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR / "operator-cache",
    show_default=True,
    help="Where git mirrors and checked-out trees are kept.",
)
def operator(
    kubeconfig: str | None, in_cluster: bool, namespace: str | None, cache_dir: Path
) -> None:
    """Run the Application controller against any Kubernetes cluster (the same code `recon
    serve` runs in-process), in the foreground."""
    from reconciler.client.incluster import InClusterError, write_in_cluster_kubeconfig

    cache_dir = cache_dir.expanduser()
    if in_cluster == bool(kubeconfig):
        raise click.UsageError("give exactly one of --kubeconfig and --in-cluster")
    if in_cluster:
        try:
            path = write_in_cluster_kubeconfig(cache_dir / "in-cluster.kubeconfig")
        except InClusterError as e:
            raise click.ClickException(str(e)) from None
    else:
        path = Path(str(kubeconfig)).expanduser()
    asyncio.run(_operator(path, namespace, cache_dir))


async def _operator(kubeconfig: Path, namespace: str | None, cache_dir: Path) -> None:
    from reconciler.client.http import HttpClient
    from reconciler.gitops.manager import AppManager
    from reconciler.gitops.operator import ensure_crd, run_operator
    from reconciler.gitops.sync import SyncEngine
    from reconciler.source.git import GitCache

    client = HttpClient.from_kubeconfig(kubeconfig)
    try:
        await ensure_crd(client)
        manager = AppManager(client, SyncEngine(client, GitCache(cache_dir)))
        await manager.start()
        try:
            # kopf stops on SIGINT / SIGTERM by itself.
            await run_operator(manager, kubeconfig, asyncio.Event(), namespace=namespace)
        finally:
            await manager.stop()
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    finally:
        await client.close()


def main() -> None:
    cli()
