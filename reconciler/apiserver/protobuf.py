"""Decoding Kubernetes protobuf request bodies into the JSON objects they stand for.

Why: kubectl's typed commands (`kubectl create configmap|secret|deployment|namespace|job
--from=cronjob/X ...`) send `Content-Type: application/vnd.kubernetes.protobuf`, because
client-go's clientset defaults to it, and they have no JSON fallback. Responses can stay
JSON (kubectl accepts both), but request bodies must be understood.

Where the wire schema comes from: the client itself. A Go client built with gogo-protobuf
embeds the gzipped `FileDescriptorProto` of every API type it can send; we read them from
the installed `kubectl` binary (or `RECON_PROTOBUF_DESCRIPTORS`), so field numbers always
match the very client that encodes the bytes. Extraction happens on the first protobuf
request, never at start-up.

Protobuf cannot say whether a zero value was set: gogo emits every non-pointer Go field
even when zero (`generateName: ""`), where JSON would have omitted it, while a pointer set
to zero (`replicas: 0`) must survive. A zero scalar is therefore kept only when the upstream
schema documents a default for that field (Kubernetes documents every pointer-with-default
field that way: "Defaults to 1"), and dropped otherwise.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.schema.definitions import Definitions

JSONDict = dict[str, Any]

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00")
_META = ".k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME = {_META + "Time", _META + "MicroTime"}
_DURATION = _META + "Duration"
_FIELDS_V1 = _META + "FieldsV1"
_INT_OR_STRING = ".k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = ".k8s.io.apimachinery.pkg.api.resource.Quantity"
_RAW_EXTENSION = ".k8s.io.apimachinery.pkg.runtime.RawExtension"
_GO_ZERO_TIME = -62135596800  # 0001-01-01T00:00:00Z, Go's zero time.Time
_DEFAULT = re.compile(r"\b[Dd]efault(?:s)?(?: value)?(?: is| to|:)?\s+(\S+)")

# FieldDescriptorProto.Type values
_DOUBLE, _FLOAT, _INT64, _UINT64, _INT32, _FIXED64, _FIXED32, _BOOL = 1, 2, 3, 4, 5, 6, 7, 8
_STRING, _MESSAGE, _BYTES, _UINT32, _ENUM, _SFIXED32, _SFIXED64 = 9, 11, 12, 13, 14, 15, 16
_SINT32, _SINT64 = 17, 18
_REPEATED = 3


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object we can decode."""


# -- the wire format ---------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated protobuf data (varint)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("malformed protobuf varint")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of every field in `data`, in order."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated protobuf data (length-delimited field)")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


# -- descriptors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    type: int
    repeated: bool
    type_name: str  # fully qualified message name for messages, e.g. ".k8s.io.api.core.v1.Pod"


@dataclass(frozen=True)
class Message:
    name: str  # fully qualified, with a leading dot
    fields: dict[int, Field]
    map_entry: bool


class ProtoSchema:
    """Every message type found in a client's embedded descriptors."""

    def __init__(self, messages: dict[str, Message]) -> None:
        self.messages = messages

    @classmethod
    def from_binary(cls, path: Path) -> ProtoSchema:
        data = path.read_bytes()
        messages: dict[str, Message] = {}
        for match in _GZIP_HEADER.finditer(data):
            inflater = zlib.decompressobj(31)
            try:
                raw = inflater.decompress(data[match.start() : match.start() + 4_000_000])
            except zlib.error:
                continue
            if b"generated.proto" not in raw[:200]:
                continue
            try:
                _read_file_descriptor(raw, messages)
            except ProtobufError:
                continue
        if not messages:
            raise ProtobufError(f"no Kubernetes protobuf descriptors found in {path}")
        return cls(messages)

    def find(self, api_version: str, kind: str) -> Message | None:
        group, _, version = api_version.rpartition("/")
        first = group.split(".")[0] if group else "core"
        candidates = [
            f".k8s.io.api.{first}.{version}.{kind}",
            f".k8s.io.apiextensions_apiserver.pkg.apis.{first}.{version}.{kind}",
            f".k8s.io.kube_aggregator.pkg.apis.{first}.{version}.{kind}",
            f"{_META}{kind}",
        ]
        for name in candidates:
            if name in self.messages:
                return self.messages[name]
        suffix = f".{version}.{kind}"
        matches = [m for n, m in self.messages.items() if n.endswith(suffix)]
        return matches[0] if len(matches) == 1 else None


def _read_file_descriptor(raw: bytes, into: dict[str, Message]) -> None:
    package = ""
    message_blobs = []
    for number, _, value in _fields(raw):
        if number == 2:
            package = value.decode()
        elif number == 4:
            message_blobs.append(value)
    for blob in message_blobs:
        _read_message(blob, f".{package}", into)


def _read_message(blob: bytes, scope: str, into: dict[str, Message]) -> None:
    name = ""
    fields: dict[int, Field] = {}
    nested = []
    map_entry = False
    for number, _, value in _fields(blob):
        if number == 1:
            name = value.decode()
        elif number == 2:
            field = _read_field(value)
            fields[field.number] = field
        elif number == 3:
            nested.append(value)
        elif number == 7:
            map_entry = any(n == 7 and v == 1 for n, _, v in _fields(value))
    full = f"{scope}.{name}"
    into[full] = Message(full, fields, map_entry)
    for inner in nested:
        _read_message(inner, full, into)


def _read_field(blob: bytes) -> Field:
    name, number, label, ftype, type_name, json_name = "", 0, 1, 0, "", ""
    for num, _, value in _fields(blob):
        if num == 1:
            name = value.decode()
        elif num == 3:
            number = value
        elif num == 4:
            label = value
        elif num == 5:
            ftype = value
        elif num == 6:
            type_name = value.decode()
        elif num == 10:
            json_name = value.decode()
    # Kubernetes' .proto field names already are the JSON names (`generateName`).
    return Field(name or json_name, number, ftype, label == _REPEATED, type_name)


_LOCK = threading.Lock()


@functools.cache
def _load(path: str) -> ProtoSchema:
    return ProtoSchema.from_binary(Path(path))


def load_default() -> ProtoSchema | None:
    """The descriptors of the local kubectl (or RECON_PROTOBUF_DESCRIPTORS); None if none."""
    path = os.environ.get("RECON_PROTOBUF_DESCRIPTORS") or shutil.which("kubectl")
    if not path:
        return None
    with _LOCK:
        try:
            return _load(path)
        except (OSError, ProtobufError):
            return None


# -- decoding ----------------------------------------------------------------------------


def _scalar(field: Field, wire: int, value: Any) -> Any:
    t = field.type
    if t == _STRING:
        return value.decode("utf-8")
    if t == _BYTES:
        return base64.b64encode(value).decode()
    if t == _BOOL:
        return bool(value)
    if t in (_INT64, _UINT64, _INT32, _UINT32, _ENUM):
        if t in (_INT64, _INT32, _ENUM) and value >= 1 << 63:
            value -= 1 << 64
        return value
    if t in (_SINT32, _SINT64):
        return (value >> 1) ^ -(value & 1)
    if t == _DOUBLE:
        return struct.unpack("<d", value)[0]
    if t == _FLOAT:
        return struct.unpack("<f", value)[0]
    if t in (_FIXED64, _SFIXED64):
        return struct.unpack("<q" if t == _SFIXED64 else "<Q", value)[0]
    if t in (_FIXED32, _SFIXED32):
        return struct.unpack("<i" if t == _SFIXED32 else "<I", value)[0]
    raise ProtobufError(f"unsupported protobuf field type {t} ({field.name})")


def _packed(field: Field, data: bytes) -> list[Any]:
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        if field.type in (_DOUBLE, _FIXED64, _SFIXED64):
            out.append(_scalar(field, 1, data[pos : pos + 8]))
            pos += 8
        elif field.type in (_FLOAT, _FIXED32, _SFIXED32):
            out.append(_scalar(field, 5, data[pos : pos + 4]))
            pos += 4
        else:
            value, pos = _varint(data, pos)
            out.append(_scalar(field, 0, value))
    return out


def _go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{sign}{ns / size:g}{unit}"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1_000_000_000
    text = f"{seconds:g}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


class _Decoder:
    def __init__(self, schema: ProtoSchema, definitions: Definitions) -> None:
        self.schema = schema
        self.definitions = definitions

    def _keeps_zero(self, message: Message, field: Field, value: Any) -> bool:
        """Whether a zero `value` was set on purpose: only a pointer field whose documented
        default is something else (`replicas`: "Defaults to 1") can carry a meaningful zero.
        Empty strings never do in the Kubernetes API."""
        if isinstance(value, str):
            return False
        definition = self.definitions.defs.get("io.k8s." + message.name[len(".k8s.io.") :])
        if not isinstance(definition, dict):
            return False
        prop = (definition.get("properties") or {}).get(field.name) or {}
        match = _DEFAULT.search(str(prop.get("description", "")))
        if match is None:
            return False
        documented = match.group(1).strip(".,;:'\"`").lower()
        zero = "false" if isinstance(value, bool) else "0"
        return documented != zero

    def special(self, type_name: str, data: bytes) -> tuple[bool, Any]:
        """(present, JSON value) for the types JSON renders as scalars."""
        values = {number: value for number, _, value in _fields(data)}
        if type_name in _TIME:
            seconds = values.get(1, 0)
            seconds = seconds - (1 << 64) if seconds >= 1 << 63 else seconds
            if seconds == _GO_ZERO_TIME or 1 not in values:
                return False, None
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
            if type_name.endswith("MicroTime"):
                micros = int(values.get(2, 0)) // 1000
                return True, moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"
            return True, moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if type_name == _DURATION:
            ns = values.get(1, 0)
            return True, _go_duration(ns - (1 << 64) if ns >= 1 << 63 else ns)
        if type_name == _INT_OR_STRING:
            if values.get(1, 0) == 1:
                return True, values.get(3, b"").decode()
            raw = values.get(2, 0)
            return True, raw - (1 << 64) if raw >= 1 << 63 else raw
        if type_name == _QUANTITY:
            return True, values.get(1, b"").decode()
        if type_name in (_RAW_EXTENSION, _FIELDS_V1):
            raw = values.get(1, b"")
            return (True, json.loads(raw)) if raw else (False, None)
        return False, ...

    def message(self, message: Message, data: bytes) -> JSONDict:
        out: JSONDict = {}
        for number, wire, value in _fields(data):
            field = message.fields.get(number)
            if field is None:
                continue  # a field this client knows and the descriptors do not: skip it
            if field.type == _MESSAGE:
                target = self.schema.messages.get(field.type_name)
                if target is not None and target.map_entry:
                    key, item = self._map_entry(target, value)
                    out.setdefault(field.name, {})[key] = item
                    continue
                present, decoded = self.special(field.type_name, value)
                if decoded is ...:
                    decoded = self.message(target, value) if target is not None else {}
                    present = True
                if not present:
                    continue
                if field.repeated:
                    out.setdefault(field.name, []).append(decoded)
                else:
                    out[field.name] = decoded
            elif field.repeated and wire == 2 and field.type not in (_STRING, _BYTES):
                out.setdefault(field.name, []).extend(_packed(field, value))
            elif field.repeated:
                out.setdefault(field.name, []).append(_scalar(field, wire, value))
            else:
                out[field.name] = _scalar(field, wire, value)
        for name, value in list(out.items()):
            field = next(f for f in message.fields.values() if f.name == name)
            if field.type == _MESSAGE:
                continue  # a message is only on the wire when set (IntOrString 0 is real)
            if (
                value in ("", 0, False)
                and not isinstance(value, dict | list)
                and not (self._keeps_zero(message, field, value))
            ):
                del out[name]
        return out

    def _map_entry(self, entry: Message, data: bytes) -> tuple[str, Any]:
        decoded = self.message(entry, data)
        key = decoded.get("key", "")
        value_field = entry.fields.get(2)
        if "value" in decoded:
            return str(key), decoded["value"]
        if value_field is not None and value_field.type == _MESSAGE:
            return str(key), {}
        if value_field is not None and value_field.type == _BOOL:
            return str(key), False
        if value_field is not None and value_field.type in (_STRING, _BYTES):
            return str(key), ""
        return str(key), 0


def decode_request(body: bytes, schema: ProtoSchema, definitions: Definitions) -> JSONDict:
    """The JSON object a `application/vnd.kubernetes.protobuf` request body encodes."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf object (the 'k8s\\0' prefix is missing)")
    envelope = {number: value for number, _, value in _fields(body[len(MAGIC) :])}
    type_meta = {number: value for number, _, value in _fields(envelope.get(1, b""))}
    api_version = type_meta.get(1, b"").decode()
    kind = type_meta.get(2, b"").decode()
    if envelope.get(3):
        raise ProtobufError(f"unsupported content encoding {envelope[3].decode()!r}")
    message = schema.find(api_version, kind)
    if message is None:
        raise ProtobufError(f"no protobuf schema for {kind} in {api_version}")
    obj = _Decoder(schema, definitions).message(message, envelope.get(2, b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
