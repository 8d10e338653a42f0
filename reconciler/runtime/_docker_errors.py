"""The one place where the docker SDK's errors become the runtime's (`errors.py`).

HTTP status and the engine's message decide the class, per operation: a 404 while creating
means a missing image or network, a 409 on exec means the container is not running, any
refusal on start is a start error. Messages name the operation and the object and keep the
engine's explanation, which never holds environment values or registry passwords.
"""

from __future__ import annotations

from enum import Enum

import docker.errors  # type: ignore[import-untyped, unused-ignore]
import requests.exceptions  # type: ignore[import-untyped, unused-ignore]

from reconciler.runtime.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    ContainerStartError,
    ImageNotFoundError,
    ImageNotPresentError,
    ImagePullError,
    InvalidSpecError,
    NetworkNotFoundError,
    ResourceInUseError,
    RuntimeUnavailableError,
    VolumeNotFoundError,
)

__all__ = ["Op", "pull_failure", "translate"]


class Op(Enum):
    CONTAINER = "container"
    CREATE = "create container"
    START = "start container"
    EXEC = "exec in container"
    ATTACH = "attach to container"
    PULL = "pull image"
    IMAGE = "image"
    NETWORK = "network"
    VOLUME = "volume"


_NOT_FOUND_IN_REGISTRY = (
    "not found",
    "manifest unknown",
    "repository does not exist",
    "pull access denied",
    "name unknown",
)


def pull_failure(ref: str, message: str, status: int | None = None) -> ImagePullError:
    """Classify a failed pull from the engine's message (the pull stream carries errors as
    text, after a 200)."""
    lowered = message.lower()
    text = f"pulling image {ref} failed: {message}"
    if status == 404 or any(marker in lowered for marker in _NOT_FOUND_IN_REGISTRY):
        return ImageNotFoundError(ref, text + " (check the image name and tag)")
    return ImagePullError(ref, text + " (is the registry reachable? are credentials needed?)")


def translate(exc: BaseException, op: Op, subject: str) -> BaseException:
    """The runtime error for `exc`, raised by the SDK during `op` on `subject`; anything that
    is not an SDK or connection error is returned unchanged."""
    if isinstance(exc, ContainerRuntimeError):
        return exc
    if isinstance(exc, docker.errors.APIError):  # before: it is a requests error too
        return _from_api_error(exc, op, subject)
    if isinstance(exc, requests.exceptions.RequestException | docker.errors.DockerException):
        return RuntimeUnavailableError(
            f"the Docker engine did not answer ({op.value} {subject}): {exc}; is dockerd "
            "running and its socket reachable (DOCKER_HOST)?"
        )
    return exc


def _from_api_error(exc: docker.errors.APIError, op: Op, subject: str) -> ContainerRuntimeError:
    status = exc.status_code
    message = str(exc.explanation or exc)
    lowered = message.lower()
    where = f"{op.value} {subject}"
    if op is Op.PULL:
        return pull_failure(subject, message, status)
    if status == 404:
        if "no such image" in lowered:
            ref = message[lowered.index("no such image") + len("no such image") :]
            return ImageNotPresentError(
                ref.strip(" :") or subject,
                f"{where}: {message} (ensure the image before creating the container)",
            )
        if op is Op.NETWORK or (lowered.startswith("network ") and "not found" in lowered):
            return NetworkNotFoundError(f"{where}: {message}")
        if op is Op.VOLUME or "no such volume" in lowered:
            return VolumeNotFoundError(f"{where}: {message}")
        return ContainerNotFoundError(f"{where}: {message}")
    if op is Op.START:
        return ContainerStartError(f"{where}: {message}")
    if status == 409:
        if op in (Op.EXEC, Op.ATTACH) or "not running" in lowered or "is paused" in lowered:
            return ContainerNotRunningError(f"{where}: {message}")
        if op in (Op.NETWORK, Op.VOLUME):
            return ResourceInUseError(f"{where}: {message}")
        return ConflictError(f"{where}: {message} (remove the old one or choose another name)")
    if status == 403 and op in (Op.NETWORK, Op.VOLUME):
        return ResourceInUseError(f"{where}: {message}")
    if status == 400:
        return InvalidSpecError(f"{where}: {message}")
    return ContainerRuntimeError(f"{where}: the engine answered {status}: {message}")
