"""What files a configMap, secret, downwardAPI or projected volume holds. Pure.

The kubelet materialises these volumes as files; the agent writes what `volume_files`
returns with `atomic_writer.write_files` (into a memory-backed directory, so Secret data
never touches disk) and rewrites them when the sources change. Missing sources follow
Kubernetes: an error (`MountVolume.SetUp failed ...`) unless `optional: true`.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.node.env import ConfigError, ObjectLookup, field_value, resource_value
from reconciler.node.pod_tokens import TokenUnavailableError

__all__ = [
    "FileContent",
    "TokenSource",
    "VolumeSourceError",
    "has_token_volume",
    "is_file_volume",
    "volume_files",
]

JSONDict = dict[str, Any]

DEFAULT_MODE = 0o644
FILE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


@dataclass(frozen=True)
class FileContent:
    data: bytes
    mode: int


class VolumeSourceError(Exception):
    """The volume cannot be set up yet (its ConfigMap or Secret is missing): the pod waits in
    ContainerCreating, as on Kubernetes, and retries when the object appears."""


def has_token_volume(pod: Mapping[str, Any]) -> bool:
    """Whether a volume of the pod projects a ServiceAccount token (refreshed over time)."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for part in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(part, dict) and isinstance(part.get("serviceAccountToken"), dict):
                return True
    return False


def is_file_volume(volume: Mapping[str, Any]) -> bool:
    return any(isinstance(volume.get(source), dict) for source in FILE_SOURCES)


def _check_path(volume: str, path: str) -> str:
    clean = posixpath.normpath(path)
    if path.startswith("/") or clean.startswith("..") or clean in ("", "."):
        raise VolumeSourceError(f"volume {volume!r}: item path {path!r} must be relative")
    return clean


def _key_files(
    volume: str,
    data: Mapping[str, bytes],
    items: list[JSONDict] | None,
    default_mode: int,
    what: str,
    optional: bool,
) -> dict[str, FileContent]:
    if not items:
        return {key: FileContent(value, default_mode) for key, value in data.items()}
    out: dict[str, FileContent] = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise VolumeSourceError(
                f"configmap references non-existent config key: {key}"
                if what == "configmap"
                else f"references non-existent secret key: {key}"
            )
        mode = int(item["mode"]) if item.get("mode") is not None else default_mode
        out[_check_path(volume, str(item.get("path") or key))] = FileContent(data[key], mode)
    return out


def _configmap_data(obj: JSONDict) -> dict[str, bytes]:
    data = {key: str(value).encode() for key, value in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = _b64(value)
    return data


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value))
    except (binascii.Error, ValueError):
        return b""


def _secret_data(obj: JSONDict) -> dict[str, bytes]:
    return {key: _b64(value) for key, value in (obj.get("data") or {}).items()}


def _object_files(
    volume: str,
    source: JSONDict,
    what: str,
    namespace: str,
    lookup: ObjectLookup,
    default_mode: int,
) -> dict[str, FileContent]:
    name = str(source.get("name") or source.get("secretName") or "")
    obj = (
        lookup.configmap(namespace, name) if what == "configmap" else lookup.secret(namespace, name)
    )
    optional = bool(source.get("optional"))
    if obj is None:
        if optional:
            return {}
        raise VolumeSourceError(f'{what} "{name}" not found')
    data = _configmap_data(obj) if what == "configmap" else _secret_data(obj)
    return _key_files(volume, data, source.get("items"), default_mode, what, optional)


def _downward_files(
    volume: str,
    pod: JSONDict,
    items: list[JSONDict],
    default_mode: int,
    node_allocatable: Mapping[str, str],
) -> dict[str, FileContent]:
    out: dict[str, FileContent] = {}
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    for item in items:
        path = _check_path(volume, str(item.get("path") or ""))
        mode = int(item["mode"]) if item.get("mode") is not None else default_mode
        try:
            if isinstance(item.get("fieldRef"), dict):
                text = field_value(pod, str(item["fieldRef"].get("fieldPath") or ""))
            elif isinstance(item.get("resourceFieldRef"), dict):
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName")) or {}
                text = resource_value(
                    container, str(ref.get("resource") or ""), ref.get("divisor"), node_allocatable
                )
            else:
                continue
        except ConfigError as exc:
            raise VolumeSourceError(f"volume {volume!r}: {exc}") from None
        out[path] = FileContent(text.encode(), mode)
    return out


TokenSource = Callable[[JSONDict, "str | None", int], str]
"""(pod, audience, expirationSeconds) -> a ServiceAccount token for the pod (`pod_tokens`)."""


def _token_file(
    volume: str, pod: JSONDict, source: JSONDict, tokens: TokenSource | None
) -> tuple[str, bytes]:
    path = _check_path(volume, str(source.get("path") or ""))
    if tokens is None:
        raise VolumeSourceError(
            f"volume {volume!r}: serviceAccountToken: this node cannot issue tokens"
        )
    seconds = int(source.get("expirationSeconds") or 3600)
    audience = source.get("audience") or None
    try:
        return path, tokens(pod, str(audience) if audience else None, seconds).encode()
    except TokenUnavailableError as exc:
        raise VolumeSourceError(f"volume {volume!r}: serviceAccountToken: {exc}") from exc


def volume_files(
    pod: JSONDict,
    volume: JSONDict,
    lookup: ObjectLookup,
    node_allocatable: Mapping[str, str] | None = None,
    tokens: TokenSource | None = None,
) -> dict[str, FileContent]:
    """Relative path -> content for a file-backed volume; raises VolumeSourceError.
    `tokens` serves projected `serviceAccountToken` sources."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    name = str(volume.get("name") or "")
    allocatable = node_allocatable or {}
    if isinstance(volume.get("configMap"), dict):
        source = volume["configMap"]
        mode = int(source.get("defaultMode", DEFAULT_MODE))
        return _object_files(name, source, "configmap", namespace, lookup, mode)
    if isinstance(volume.get("secret"), dict):
        source = volume["secret"]
        mode = int(source.get("defaultMode", DEFAULT_MODE))
        return _object_files(name, source, "secret", namespace, lookup, mode)
    if isinstance(volume.get("downwardAPI"), dict):
        source = volume["downwardAPI"]
        mode = int(source.get("defaultMode", DEFAULT_MODE))
        return _downward_files(name, pod, source.get("items") or [], mode, allocatable)
    if isinstance(volume.get("projected"), dict):
        projected = volume["projected"]
        mode = int(projected.get("defaultMode", DEFAULT_MODE))
        files: dict[str, FileContent] = {}
        for part in projected.get("sources") or []:
            if isinstance(part.get("configMap"), dict):
                files.update(
                    _object_files(name, part["configMap"], "configmap", namespace, lookup, mode)
                )
            elif isinstance(part.get("secret"), dict):
                files.update(_object_files(name, part["secret"], "secret", namespace, lookup, mode))
            elif isinstance(part.get("downwardAPI"), dict):
                items = part["downwardAPI"].get("items") or []
                files.update(_downward_files(name, pod, items, mode, allocatable))
            elif isinstance(part.get("serviceAccountToken"), dict):
                path, token = _token_file(name, pod, part["serviceAccountToken"], tokens)
                files[path] = FileContent(token, mode)
        return files
    raise VolumeSourceError(f"volume {name!r} is not file-backed")
