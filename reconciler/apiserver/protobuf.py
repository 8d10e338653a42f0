"""Decoding Kubernetes protobuf request bodies into the JSON objects they stand for.

Why: kubectl's typed commands (`kubectl create configmap|secret|deployment|namespace|service
|job|cronjob`, `kubectl create token`, drain's evictions) send request bodies as
`Content-Type: application/vnd.kubernetes.protobuf`, client-go's clientset default, with no
JSON fallback. The API server speaks JSON everywhere else (kubectl accepts JSON answers), so
`handlers.read_body` turns such a body into the JSON object the client would have sent as
JSON, and nothing past it knows the difference.

Where the wire schema comes from: the client itself. A Go client built with gogo-protobuf
registers the gzipped `FileDescriptorProto` of every API type it can encode; `ProtoSchema`
scans the installed `kubectl` binary (or the one named by `RECON_PROTOBUF_DESCRIPTORS`) for
them, so field numbers always match the very client that encoded the bytes. Scanning takes
~0.1 s and happens on the first protobuf request, never at import or start-up.

What protobuf cannot say, and how JSON is rebuilt anyway:

- Go types that JSON renders as scalars travel as messages: `meta.v1.Time`/`MicroTime`
  ({seconds, nanos} -> RFC 3339), `Duration` (nanoseconds -> `1m30s`), `IntOrString`,
  `Quantity`, `RawExtension` and `FieldsV1` (embedded JSON), the `[]string` wrappers
  (`meta.v1.Verbs`, `ExtraValue`). `bytes` become base64 text, as in JSON.
- Go structs embedded with `json:",inline"` are fields of their own in protobuf (`Volume`'s
  `volumeSource`, `Probe`'s `handler`): a message field that the upstream JSON schema does not
  list, but whose own fields it does, is merged into its parent. Field names are the JSON
  schema's (`uID` -> `uid`, `Webhooks` -> `webhooks`).
- gogo writes every non-pointer Go field, zero or not (`generateName: ""`, `stdin: false`),
  where JSON's `omitempty` drops it, while a pointer set to zero (`replicas: 0`,
  `gracePeriodSeconds: 0`) is meaningful and must survive. The descriptors do not say which
  fields are pointers, so `_documents_meaningful_zero` reads the field's description in the
  upstream JSON schema: Kubernetes documents a pointer's absence ("Defaults to 1", "If this
  field is unset"), and a zero is kept when the description does so, unless the documented
  default is that very zero ("Default is false") or the zero is invalid ("Minimum value is
  1"). Fields the schema lists as required keep their zeros; "" is dropped everywhere else.
  Known limits: a pointer whose description says nothing of the kind (`parallelism: 0`,
  `automountServiceAccountToken: false`, `allowPrivilegeEscalation: false`) loses its zero,
  and so does a field without `omitempty` that the installed schemas do not list as required
  (`PriorityClass.value: 0`).

The envelope (`k8s\\x00` + `runtime.Unknown{typeMeta, raw, contentEncoding, contentType}`) is
read by `decode_request`; the typed message inside is found from apiVersion and kind.
"""

from __future__ import annotations

import base64
import functools
import json
import mmap
import os
import re
import shutil
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.schema.definitions import Definitions

if TYPE_CHECKING:  # google.protobuf is imported on the first protobuf request only
    from google.protobuf import descriptor_pb2

__all__ = [
    "CONTENT_TYPE",
    "ENV_BINARY",
    "MAGIC",
    "ProtoField",
    "ProtoMessage",
    "ProtoSchema",
    "ProtobufError",
    "decode_request",
    "extract_descriptors",
    "go_duration",
    "load_default",
]

JSONDict = dict[str, Any]

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
ENV_BINARY = "RECON_PROTOBUF_DESCRIPTORS"


class _T(IntEnum):
    """`FieldDescriptorProto.Type`, the field types of descriptor.proto."""

    DOUBLE, FLOAT, INT64, UINT64, INT32, FIXED64, FIXED32, BOOL = 1, 2, 3, 4, 5, 6, 7, 8
    STRING, GROUP, MESSAGE, BYTES, UINT32, ENUM, SFIXED32, SFIXED64 = 9, 10, 11, 12, 13, 14, 15, 16
    SINT32, SINT64 = 17, 18


_LABEL_REPEATED = 3  # FieldDescriptorProto.Label
_VARINT_TYPES = frozenset({_T.INT32, _T.INT64, _T.UINT32, _T.UINT64})
_VARINT_TYPES |= {_T.SINT32, _T.SINT64, _T.BOOL, _T.ENUM}
_FIXED64_TYPES = frozenset({_T.FIXED64, _T.SFIXED64, _T.DOUBLE})
_FIXED32_TYPES = frozenset({_T.FIXED32, _T.SFIXED32, _T.FLOAT})
_LEN_TYPES = frozenset({_T.STRING, _T.BYTES, _T.MESSAGE})
_FIXED_FORMATS: dict[int, str] = {
    _T.FIXED64: "<Q",
    _T.SFIXED64: "<q",
    _T.DOUBLE: "<d",
    _T.FIXED32: "<I",
    _T.SFIXED32: "<i",
    _T.FLOAT: "<f",
}
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN, _WIRE_FIXED32 = 0, 1, 2, 5

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME, _MICRO_TIME = _META + "Time", _META + "MicroTime"
_DURATION, _FIELDS_V1 = _META + "Duration", _META + "FieldsV1"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITIES = frozenset(
    {
        "k8s.io.apimachinery.pkg.api.resource.Quantity",
        "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
    }
)
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_GO_ZERO_TIME = -62135596800  # time.Time{}.Unix(): 0001-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The Go package of an API group, where it is not `k8s.io.api.<first label of the group>`.
_GROUP_PACKAGES = {
    "": "k8s.io.api.core",
    "internal.apiserver.k8s.io": "k8s.io.api.apiserverinternal",
    "apiextensions.k8s.io": "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "k8s.io.kube_aggregator.pkg.apis.apiregistration",
    "metrics.k8s.io": "k8s.io.metrics.pkg.apis.metrics",
    "meta.k8s.io": "k8s.io.apimachinery.pkg.apis.meta",
}

_GZIP_MEMBER = re.compile(rb"\x1f\x8b\x08")
_PEEK = 4096  # compressed bytes read to see whether a gzip member is a descriptor
_CHUNK = 1 << 18

# How Kubernetes documents a default: "Defaults to 1.", "Default is \"true\"", "The default
# value is 10", "Defaulted to nil", "By default, it is not set", "default false".
_STATED_DEFAULT = re.compile(
    r"\bdefault(?:s|ed)?(?: value)? (?:is|to|of) (?!to\b)\"?([\w.-]+)"
    r"|\bdefault: \"?([\w.-]+)"
    r"|\bby default,? (?:it is )?(not set|unset)"
    r"|\bdefault (true|false|\d+)\b",
    re.I,
)
# How a pointer's absence is documented: "If this field is unset", "When left as null".
_ABSENCE = re.compile(r"\b(?:unset|null|nil)\b")
_ZERO_INVALID = re.compile(
    r"minimum value is 1\b|must be (?:greater than (?:zero|0)|positive|at least 1)\b"
    r"|0 is not allowed|zero is not allowed",
    re.I,
)
_ZERO_WORDS = frozenset({"0", "false", "zero"})


class ProtobufError(ValueError):
    """The body, or the client binary, is not Kubernetes protobuf that can be decoded."""


# -- the schema ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtoField:
    number: int
    name: str  # the .proto name; Kubernetes' are the JSON names but for a few (`uID`)
    type: int  # a `FieldDescriptorProto.Type` value (TYPE_STRING = 9, TYPE_MESSAGE = 11, ...)
    repeated: bool
    type_name: str  # the message's full name without the leading dot, or ""


@dataclass(frozen=True, slots=True)
class ProtoMessage:
    name: str  # full name without the leading dot: "k8s.io.api.core.v1.ConfigMap"
    fields: dict[int, ProtoField]
    map_entry: bool  # a synthetic `map<K, V>` entry: key = 1, value = 2


class ProtoSchema:
    """Every message type of a Go client's embedded descriptors, by full name."""

    def __init__(self, messages: dict[str, ProtoMessage]) -> None:
        self.messages = messages
        self._layout_caches: dict[int, tuple[Definitions, dict[str, _Layout]]] = {}

    @classmethod
    def from_descriptors(cls, files: list[descriptor_pb2.FileDescriptorProto]) -> ProtoSchema:
        messages: dict[str, ProtoMessage] = {}
        for file in files:
            _collect(file.package, file.message_type, messages)
        return cls(messages)

    @classmethod
    def from_binary(cls, path: Path, cache: Path | None = None) -> ProtoSchema:
        """Extract the descriptors a Go client binary embeds (`generated.proto` files only).

        With `cache`, the table is also kept there as JSON, keyed by the binary's size and
        mtime, and read back instead of scanning when they still match."""
        stat = path.stat()
        key = {"binary": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if cache is not None:
            cached = _read_cache(cache, key)
            if cached is not None:
                return cached
        schema = cls.from_descriptors(extract_descriptors(path))
        if not schema.messages:
            raise ProtobufError(f"{path} embeds no Kubernetes protobuf descriptors")
        if cache is not None:
            _write_cache(cache, key, schema)
        return schema

    def to_json(self) -> JSONDict:
        return {
            name: {
                "mapEntry": message.map_entry,
                "fields": [
                    [f.number, f.name, f.type, f.repeated, f.type_name]
                    for f in message.fields.values()
                ],
            }
            for name, message in self.messages.items()
        }

    @classmethod
    def from_json(cls, table: JSONDict) -> ProtoSchema:
        messages: dict[str, ProtoMessage] = {}
        for name, entry in table.items():
            fields = {row[0]: ProtoField(*row) for row in entry["fields"]}
            messages[name] = ProtoMessage(name, fields, bool(entry["mapEntry"]))
        return cls(messages)

    def message_for(self, api_version: str, kind: str) -> ProtoMessage:
        """The message of a kind: `apps/v1` Deployment -> `k8s.io.api.apps.v1.Deployment`;
        the meta kinds every group version registers (DeleteOptions) come from meta.v1."""
        group, _, version = api_version.rpartition("/")
        package = _GROUP_PACKAGES.get(group) or "k8s.io.api." + group.split(".")[0]
        for name in (f"{package}.{version}.{kind}", f"{_META}{kind}"):
            message = self.messages.get(name)
            if message is not None and not message.map_entry:
                return message
        raise ProtobufError(
            f"this client's descriptors have no protobuf message for kind {kind!r} "
            f"in {api_version!r}"
        )

    def _layouts(self, definitions: Definitions) -> dict[str, _Layout]:
        """Each message's decoding decisions under one set of schema definitions (memoised)."""
        entry = self._layout_caches.get(id(definitions))
        if entry is None or entry[0] is not definitions:
            entry = self._layout_caches[id(definitions)] = (definitions, {})
        return entry[1]


def _collect(
    scope: str, types: Iterable[descriptor_pb2.DescriptorProto], into: dict[str, ProtoMessage]
) -> None:
    for message in types:
        full = f"{scope}.{message.name}"
        fields = {
            f.number: ProtoField(
                f.number,
                f.name,
                f.type,
                f.label == _LABEL_REPEATED,
                f.type_name.lstrip("."),
            )
            for f in message.field
        }
        into[full] = ProtoMessage(full, fields, message.options.map_entry)
        _collect(full, message.nested_type, into)


def extract_descriptors(path: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    """The `*/generated.proto` FileDescriptorProtos gzipped into a Go binary, once each.

    Worked example: kubectl 1.32 (57 MB) holds 72 gzip headers, 67 of them such descriptors
    (`k8s.io/api/core/v1/generated.proto`, package `k8s.io.api.core.v1`, 230 messages, ...).
    Only the first 4 KiB of each member is inflated before deciding, so scanning is cheap."""
    from google.protobuf import descriptor_pb2
    from google.protobuf.message import DecodeError

    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for match in _GZIP_MEMBER.finditer(data):
            raw = _inflate_descriptor(data, match.start())
            if raw is None:
                continue
            try:
                file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            except DecodeError:
                continue
            if file.name.endswith("generated.proto"):
                found.setdefault(file.name, file)
    return list(found.values())


def _inflate_descriptor(data: mmap.mmap, start: int) -> bytes | None:
    """The inflated gzip member at `start`, if it begins like a `generated.proto` descriptor."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        head = inflater.decompress(data[start : start + _PEEK])
        # FileDescriptorProto field 1 (name) comes first: 0x0a, length, "k8s.io/.../generated.proto"
        if (
            len(head) < 2
            or head[0] != 0x0A
            or not head[2 : 2 + head[1]].endswith(b"generated.proto")
        ):
            return None
        parts, pos = [head], start + _PEEK
        while not inflater.eof and pos < len(data):
            parts.append(inflater.decompress(data[pos : pos + _CHUNK]))
            pos += _CHUNK
    except zlib.error:
        return None
    return b"".join(parts) if inflater.eof else None


def _read_cache(cache: Path, key: JSONDict) -> ProtoSchema | None:
    try:
        document = json.loads(cache.read_text())
        if document.get("key") != key:
            return None
        return ProtoSchema.from_json(document["messages"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, stale or damaged: scan the binary again


def _write_cache(cache: Path, key: JSONDict, schema: ProtoSchema) -> None:
    temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps({"key": key, "messages": schema.to_json()}))
        temporary.replace(cache)
    except OSError:
        temporary.unlink(missing_ok=True)  # a cache is an optimisation, never a failure


_LOAD_LOCK = threading.Lock()


@functools.cache
def _load_cached(binary: str, cache: Path | None) -> ProtoSchema | None:
    try:
        return ProtoSchema.from_binary(Path(binary), cache)
    except (OSError, ValueError):
        return None


def load_default(cache: Path | None = None) -> ProtoSchema | None:
    """The descriptors of `$RECON_PROTOBUF_DESCRIPTORS`, else of the `kubectl` on PATH, read
    once per process; None when there is no such binary or it embeds no descriptors."""
    binary = os.environ.get(ENV_BINARY) or shutil.which("kubectl")
    if not binary:
        return None
    with _LOAD_LOCK:
        return _load_cached(binary, cache)


# -- the wire format ----------------------------------------------------------------------


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"{where}: malformed varint (longer than 10 bytes)")
    raise ProtobufError(f"{where}: truncated data (a varint runs past the end)")


def _fields(data: bytes, where: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field on the wire, in order; a varint's value
    is an int, a fixed-size or length-delimited one's the raw bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"{where}: malformed data (field number 0)")
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos, where)
            yield number, wire, value
            continue
        if wire == _WIRE_LEN:
            size, pos = _varint(data, pos, where)
        elif wire in (_WIRE_FIXED64, _WIRE_FIXED32):
            size = 8 if wire == _WIRE_FIXED64 else 4
        else:
            raise ProtobufError(f"{where}: unsupported wire type {wire} (field {number})")
        if pos + size > len(data):
            raise ProtobufError(f"{where}: truncated data (field {number} runs past the end)")
        yield number, wire, data[pos : pos + size]
        pos += size


def _by_number(data: bytes, where: str) -> dict[int, int | bytes]:
    """The fields of a small message by number (the last one wins, as in protobuf)."""
    return {number: value for number, _, value in _fields(data, where)}


def _bytes(value: int | bytes, where: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{where}: a varint where bytes were expected")
    return value


def _int(value: int | bytes, where: str) -> int:
    if not isinstance(value, int):
        raise ProtobufError(f"{where}: bytes where a varint was expected")
    return _signed(value)


def _text(value: int | bytes, where: str) -> str:
    try:
        return _bytes(value, where).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtobufError(f"{where}: a string that is not UTF-8") from e


def _signed(value: int) -> int:
    """A varint holding a negative int32/int64 is its 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(field: ProtoField, wire: int, value: int | bytes, where: str) -> Any:
    kind = field.type
    if isinstance(value, int):
        if kind not in _VARINT_TYPES:
            raise ProtobufError(f"{where}: a varint where {_type_label(field)} was expected")
        if kind == _T.BOOL:
            return value != 0
        if kind in (_T.SINT32, _T.SINT64):
            return (value >> 1) ^ -(value & 1)
        if kind in (_T.UINT32, _T.UINT64):
            return value
        return _signed(value)
    fixed_wire = _WIRE_FIXED64 if kind in _FIXED64_TYPES else _WIRE_FIXED32
    if kind in _FIXED_FORMATS and wire == fixed_wire:
        return struct.unpack(_FIXED_FORMATS[kind], value)[0]
    if kind == _T.STRING and wire == _WIRE_LEN:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtobufError(f"{where}: a string that is not UTF-8") from e
    if kind == _T.BYTES and wire == _WIRE_LEN:
        return base64.b64encode(value).decode("ascii")
    raise ProtobufError(f"{where}: wire type {wire} where {_type_label(field)} was expected")


def _packed(field: ProtoField, data: bytes, where: str) -> list[Any]:
    """A packed repeated scalar: the values back to back in one length-delimited field."""
    if field.type in _VARINT_TYPES:
        out, pos = [], 0
        while pos < len(data):
            value, pos = _varint(data, pos, where)
            out.append(_scalar(field, _WIRE_VARINT, value, where))
        return out
    size, wire = (8, _WIRE_FIXED64) if field.type in _FIXED64_TYPES else (4, _WIRE_FIXED32)
    if len(data) % size:
        raise ProtobufError(f"{where}: truncated data (packed {_type_label(field)})")
    return [_scalar(field, wire, data[i : i + size], where) for i in range(0, len(data), size)]


def _type_label(field: ProtoField) -> str:
    try:
        label = _T(field.type).name.lower()
    except ValueError:
        label = f"type-{field.type}"
    return f"{label} field {field.name!r}"


# -- Kubernetes' special types ------------------------------------------------------------


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: 0 -> "0s", 1.5e9 -> "1.5s", 5.4e12 -> "1h30m0s",
    5e8 -> "500ms", 1500 -> "1.5µs" (whole units, fraction without trailing zeros)."""
    if ns == 0:
        return "0s"
    sign, rest = ("-" if ns < 0 else ""), abs(ns)
    if rest < 1_000_000_000:
        digits, unit = (0, "ns") if rest < 1_000 else (3, "µs") if rest < 1_000_000 else (6, "ms")
        whole, fraction = _split_fraction(rest, digits)
        return f"{sign}{whole}{fraction}{unit}"
    seconds, fraction = _split_fraction(rest, 9)
    minutes, seconds = divmod(seconds, 60)
    text = f"{seconds}{fraction}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{hours}h{minutes}m{text}" if hours else f"{minutes}m{text}"
    return sign + text


def _split_fraction(value: int, digits: int) -> tuple[int, str]:
    """123_456_000 with 9 digits -> (0, ".123456"); 2_000_000_000 -> (2, "")."""
    whole, fraction = divmod(value, 10**digits)
    text = f"{fraction:0{digits}d}".rstrip("0") if digits else ""
    return whole, f".{text}" if text else ""


def _time(values: dict[int, int | bytes], micro: bool, where: str) -> str | None:
    """{1: seconds, 2: nanos} as RFC 3339 in UTC; None for Go's zero time (omitted in JSON)."""
    if 1 not in values and 2 not in values:
        return None  # metav1.Time marshals the zero time as an empty message
    seconds = _int(values.get(1, 0), f"{where}.seconds")
    if seconds == _GO_ZERO_TIME:
        return None
    nanos = _int(values.get(2, 0), f"{where}.nanos")
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as e:
        raise ProtobufError(f"{where}: a time out of range ({seconds} s)") from e
    naive = moment.replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if micro else "seconds") + "Z"


def _special(name: str, data: bytes, decoder: _Decoder, where: str) -> tuple[bool, Any]:
    """(True, JSON value or None to omit) for a type JSON renders as a scalar, else (False, _)."""
    if name not in _SPECIAL_NAMES:
        return False, None
    values = _by_number(data, where)
    if name in (_TIME, _MICRO_TIME):
        return True, _time(values, name == _MICRO_TIME, where)
    if name == _DURATION:  # {1: nanoseconds}
        return True, go_duration(_int(values.get(1, 0), where))
    if name == _INT_OR_STRING:  # {1: type (0 int, 1 string), 2: intVal, 3: strVal}
        if _int(values.get(1, 0), where) == 1:
            return True, _text(values.get(3, b""), where)
        return True, _int(values.get(2, 0), where)
    if name in _QUANTITIES:  # {1: string}; the zero Quantity reads "0" in JSON
        return True, _text(values.get(1, b""), where) or "0"
    raw = _bytes(values.get(1, b""), where)  # RawExtension {1: raw}, FieldsV1 {1: Raw}
    if not raw:
        return True, None
    if raw.startswith(MAGIC):
        return True, decoder.request(raw)
    try:
        return True, json.loads(raw)
    except ValueError as e:
        raise ProtobufError(f"{where}: embedded raw object is neither JSON nor protobuf") from e


_SPECIAL_NAMES = frozenset(
    {_TIME, _MICRO_TIME, _DURATION, _INT_OR_STRING, _RAW_EXTENSION, _FIELDS_V1} | _QUANTITIES
)


# -- from protobuf names to JSON ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    json_name: str | None  # None: an inline Go struct, merged into the parent object
    required: bool  # no `omitempty`: JSON has the field even when it is zero
    zero_meaningful: bool  # a pointer whose zero differs from its absence (`replicas: 0`)

    def keeps(self, zero: Any) -> bool:
        """Whether this zero scalar stays: Kubernetes gives "" no meaning apart from absence."""
        return self.required or (self.zero_meaningful and zero != "")


@dataclass(frozen=True, slots=True)
class _Layout:
    slots: dict[int, _Slot]
    string_list: bool  # `message Verbs { repeated string items = 1; }` is a JSON array


def _build_layout(schema: ProtoSchema, definitions: Definitions, message: ProtoMessage) -> _Layout:
    definition, exact = _definition(definitions, message.name)
    fields = list(message.fields.values())
    string_list = (
        definition is None
        and len(fields) == 1
        and fields[0].repeated
        and fields[0].name == "items"
        and fields[0].type == _T.STRING
    )
    properties: JSONDict = (definition or {}).get("properties") or {}
    required = set((definition or {}).get("required") or ())
    by_folded = {_fold(name): name for name in properties}
    slots: dict[int, _Slot] = {}
    for field in fields:
        name: str | None = field.name
        if properties and field.name not in properties:
            name = by_folded.get(_fold(field.name))
            if name is None and not (exact and _inlined(schema, field, by_folded)):
                name = field.name  # a field newer than the schema: keep the client's name
        prop = properties.get(name or "") or {}
        meaningful = _documents_meaningful_zero(str(prop.get("description", "")))
        slots[field.number] = _Slot(name, name in required, meaningful)
    return _Layout(slots, string_list)


def _inlined(schema: ProtoSchema, field: ProtoField, by_folded: dict[str, str]) -> bool:
    """A message field the parent's schema does not list, but whose own fields it lists, is
    an embedded Go struct: `Volume.volumeSource` holds `emptyDir`, a property of `Volume`."""
    target = schema.messages.get(field.type_name)
    return target is not None and any(_fold(f.name) in by_folded for f in target.fields.values())


def _fold(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _definition(definitions: Definitions, message_name: str) -> tuple[JSONDict | None, bool]:
    """(the upstream schema of a message, whether it is that very version's):
    `k8s.io.api.core.v1.Pod` -> `io.k8s.api.core.v1.Pod`, or, for a version the schemas no
    longer carry, the same kind in another version (good for names and defaults, not for
    layout: `node.v1alpha1.RuntimeClass` has a `spec` that v1 flattened)."""
    name = "io.k8s." + message_name.removeprefix("k8s.io.")
    found = definitions.defs.get(name)
    if isinstance(found, dict):
        return found, True
    package, _, kind = name.rpartition(".")
    for other in _versions_of(definitions, package.rpartition(".")[0], kind):
        return definitions.defs[other], False
    return None, False


def _versions_of(definitions: Definitions, group: str, kind: str) -> list[str]:
    prefix, suffix = group + ".", "." + kind
    return sorted(
        name
        for name in definitions.defs
        if name.startswith(prefix)
        and name.endswith(suffix)
        and name.count(".") == group.count(".") + 2
    )


def _documents_meaningful_zero(description: str) -> bool:
    """Whether a zero value of this (optional) field was set on purpose.

    Kubernetes documents pointer fields whose absence means something other than zero:
    "Defaults to 1" (replicas), "Defaults to true" (enableServiceLinks), "By default, it is not
    set" (tolerationSeconds). A non-pointer field that says "Default is false" (stdin) or
    "Defaults to 0" has zero as its default, and one that says "Minimum value is 1"
    (periodSeconds) cannot be zero: in both cases the zero is the unset Go value gogo always
    writes, and JSON would have omitted it."""
    if _ZERO_INVALID.search(description):
        return False
    stated = {
        next(group for group in match.groups() if group).rstrip(".,;:").lower()
        for match in _STATED_DEFAULT.finditer(description)
    }
    if stated & _ZERO_WORDS:
        return False
    return bool(stated) or _ABSENCE.search(description) is not None


# -- decoding -----------------------------------------------------------------------------


class _Decoder:
    def __init__(self, schema: ProtoSchema, definitions: Definitions) -> None:
        self.schema = schema
        self.definitions = definitions
        self.layouts = schema._layouts(definitions)

    def layout(self, message: ProtoMessage) -> _Layout:
        found = self.layouts.get(message.name)
        if found is None:
            found = self.layouts[message.name] = _build_layout(
                self.schema, self.definitions, message
            )
        return found

    def request(self, body: bytes) -> JSONDict:
        """The envelope: `k8s\\x00`, then runtime.Unknown {1: typeMeta {1: apiVersion, 2: kind},
        2: raw (the typed message), 3: contentEncoding, 4: contentType}."""
        if not body.startswith(MAGIC):
            raise ProtobufError(
                "not a Kubernetes protobuf object: the 4-byte 'k8s\\x00' prefix is missing"
            )
        envelope = _by_number(body[len(MAGIC) :], "envelope")
        type_meta = _by_number(_bytes(envelope.get(1, b""), "envelope.typeMeta"), "typeMeta")
        api_version = _text(type_meta.get(1, b""), "typeMeta.apiVersion")
        kind = _text(type_meta.get(2, b""), "typeMeta.kind")
        if not api_version or not kind:
            raise ProtobufError("the protobuf envelope names no apiVersion and kind")
        encoding = _text(envelope.get(3, b""), "envelope.contentEncoding")
        if encoding:
            raise ProtobufError(f"unsupported protobuf content encoding {encoding!r}")
        message = self.schema.message_for(api_version, kind)
        raw = _bytes(envelope.get(2, b""), "envelope.raw")
        obj = self.message(message, raw, kind)
        if not isinstance(obj, dict):
            raise ProtobufError(f"{kind} is not an object kind")
        return {"apiVersion": api_version, "kind": kind, **obj}

    def _message(self, name: str) -> ProtoMessage:
        message = self.schema.messages.get(name)
        if message is None:
            raise ProtobufError(f"the client's descriptors lack {name}")
        return message

    def message(self, message: ProtoMessage, data: bytes, where: str) -> Any:
        """The JSON value of one message (an object, or a list for `[]string` wrappers)."""
        layout = self.layout(message)
        out: JSONDict = {}
        zeros: set[str] = set()
        for number, wire, value in _fields(data, where):
            field = message.fields.get(number)
            if field is None:
                continue  # unknown to these descriptors: nothing JSON could name either
            slot = layout.slots[number]
            path = f"{where}.{slot.json_name or field.name}"
            if field.type == _T.MESSAGE:
                if not isinstance(value, bytes):
                    raise ProtobufError(f"{path}: a varint where a message was expected")
                self._put_message(out, field, slot, value, path)
            elif field.repeated:
                items = (
                    _packed(field, value, path)
                    if wire == _WIRE_LEN
                    and field.type not in _LEN_TYPES
                    and isinstance(value, bytes)
                    else [_scalar(field, wire, value, path)]
                )
                out.setdefault(slot.json_name or field.name, []).extend(items)
            else:
                name = slot.json_name or field.name
                out[name] = scalar = _scalar(field, wire, value, path)
                if scalar in ("", 0, False) and not slot.keeps(scalar):
                    zeros.add(name)
                else:
                    zeros.discard(name)
        for name in zeros:
            if out.get(name) in ("", 0, False):
                del out[name]
        if layout.string_list:
            return out.get("items", [])
        return out

    def _put_message(
        self, out: JSONDict, field: ProtoField, slot: _Slot, data: bytes, where: str
    ) -> None:
        target = self._message(field.type_name)
        name = slot.json_name
        if target.map_entry:
            key, item = self._map_entry(target, data, where)
            out.setdefault(name or field.name, {})[key] = item
            return
        is_special, decoded = _special(target.name, data, self, where)
        if not is_special:
            decoded = self.message(target, data, where)
        if decoded is None:
            return  # the zero time, an empty RawExtension: JSON omits them
        if name is None and isinstance(decoded, dict):
            out.update(decoded)  # an embedded Go struct (`json:",inline"`)
        elif field.repeated:
            out.setdefault(name or field.name, []).append(decoded)
        else:
            out[name or field.name] = decoded

    def _map_entry(self, entry: ProtoMessage, data: bytes, where: str) -> tuple[str, Any]:
        """A map entry's key and value; a value left off the wire is its type's zero."""
        key: Any = ""
        value: Any = ...
        value_field = entry.fields.get(2)
        for number, wire, raw in _fields(data, where):
            field = entry.fields.get(number)
            if field is None:
                continue
            if number == 1:
                key = _scalar(field, wire, raw, where)
            elif number == 2 and field.type == _T.MESSAGE and isinstance(raw, bytes):
                holder: JSONDict = {}
                self._put_message(holder, field, _Slot("value", True, True), raw, f"{where}[{key}]")
                value = holder.get("value")
            elif number == 2:
                value = _scalar(field, wire, raw, f"{where}[{key}]")
        if value is ...:
            value = self._zero(value_field, f"{where}[{key}]")
        return str(key), value

    def _zero(self, field: ProtoField | None, where: str) -> Any:
        if field is None or field.type in (_T.STRING, _T.BYTES):
            return ""
        if field.type == _T.BOOL:
            return False
        if field.type == _T.MESSAGE:
            holder: JSONDict = {}
            self._put_message(holder, field, _Slot("value", True, True), b"", where)
            return holder.get("value")
        return 0


def decode_request(body: bytes, schema: ProtoSchema, definitions: Definitions) -> JSONDict:
    """The JSON object (with apiVersion and kind) that an `application/vnd.kubernetes.protobuf`
    request body encodes, as the same client would have sent it as JSON."""
    return _Decoder(schema, definitions).request(body)
