"""The container runtime's one exception hierarchy.

Every implementation of `ContainerRuntime` (Docker, the in-memory fake) raises only these, so
the node agent maps failures to the states users know (`ErrImagePull`, `ImagePullBackOff`,
`CreateContainerConfigError`, `RunContainerError`) without knowing which engine ran the
container. The Docker adapter translates the SDK's errors here, `raise ... from e`, in one
place (`_docker_errors.py`).

    ContainerRuntimeError
     ├── RuntimeUnavailableError      the engine does not answer, or its event stream ended
     ├── InvalidSpecError             the spec cannot be run as given (CreateContainerConfigError)
     ├── NotFoundError
     │    ├── ContainerNotFoundError
     │    ├── NetworkNotFoundError
     │    └── VolumeNotFoundError
     ├── ConflictError                a name already in use
     ├── ResourceInUseError           a network or volume still used by a container
     ├── ContainerNotRunningError     exec into a container that is not running
     ├── ContainerStartError          the engine created it but could not start it
     ├── MemoryDirError               no memory-backed directory can be had (secrets stay off disk)
     └── ImageError
          ├── ImageNotPresentError    the image is not on this host
          │    └── ImageNeverPullError    ... and the pull policy is Never
          └── ImagePullError          a pull was attempted and failed (transient or not)
               └── ImageNotFoundError     the registry says there is no such image or tag

Messages say what failed, on which object, and what to do; they never carry a secret value
(registry passwords, environment values).
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "ContainerNotFoundError",
    "ContainerNotRunningError",
    "ContainerRuntimeError",
    "ContainerStartError",
    "ImageError",
    "ImageNeverPullError",
    "ImageNotFoundError",
    "ImageNotPresentError",
    "ImagePullError",
    "InvalidSpecError",
    "MemoryDirError",
    "NetworkNotFoundError",
    "NotFoundError",
    "ResourceInUseError",
    "RuntimeUnavailableError",
    "VolumeNotFoundError",
]


class ContainerRuntimeError(Exception):
    """Base of every error a container runtime raises."""


class RuntimeUnavailableError(ContainerRuntimeError):
    """The engine cannot be reached (or went away): retry later, then re-list everything."""


class InvalidSpecError(ContainerRuntimeError):
    """The spec is wrong in a way no retry fixes (bad name, non-loopback host IP, ...)."""


class NotFoundError(ContainerRuntimeError):
    """The named object does not exist."""


class ContainerNotFoundError(NotFoundError):
    pass


class NetworkNotFoundError(NotFoundError):
    pass


class VolumeNotFoundError(NotFoundError):
    pass


class ConflictError(ContainerRuntimeError):
    """An object with that name already exists (a container left from an earlier run?)."""


class ResourceInUseError(ContainerRuntimeError):
    """The object is still in use (a network with endpoints, a volume mounted somewhere)."""


class ContainerNotRunningError(ContainerRuntimeError):
    """The operation needs a running container (exec)."""


class ContainerStartError(ContainerRuntimeError):
    """The engine refused to start the container (port taken, executable not found, ...)."""


class MemoryDirError(ContainerRuntimeError):
    """No memory-backed (tmpfs) directory is available; secret data is never put on disk."""


class ImageError(ContainerRuntimeError):
    """Base of the image errors; `ref` is the image reference as the caller gave it."""

    def __init__(self, ref: str, message: str) -> None:
        super().__init__(message)
        self.ref = ref


class ImageNotPresentError(ImageError):
    """The image is not on this host (ensure it before creating a container from it)."""


class ImageNeverPullError(ImageNotPresentError):
    """The image is not on this host and the pull policy is Never (`ErrImageNeverPull`)."""


class ImagePullError(ImageError):
    """A pull was attempted and failed: registry unreachable, refused, or rate-limited."""


class ImageNotFoundError(ImagePullError):
    """The registry answered that the repository or tag does not exist."""
