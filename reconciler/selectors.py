"""Kubernetes label and field selectors: parsing, matching and canonical strings.

Why this exists: `kubectl get -l app=web`, `--field-selector spec.nodeName=n1`, a Service's
`spec.selector`, a Deployment's `spec.selector.matchExpressions` and every controller that
adopts pods all ask one question, "does this object match?", and must answer it exactly as
Kubernetes does. The API server uses this module to filter list/watch results (turning a
`SelectorError` into a 400), and the controllers use it to find the objects they own.

It is pure: strings and dicts in, frozen values out, no I/O.

Behaviour follows `k8s.io/apimachinery/pkg/labels` and `.../fields`:

- Label query grammar: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
  `k>3`/`k<3` (integer compare, as the Go parser also accepts), joined by `,` (AND).
  Whitespace between tokens is ignored; values cannot contain whitespace. `k in ()` means
  the value set `{""}`. Requirements are kept sorted by key, so `String()` is canonical.
- `!=` and `notin` match objects that lack the label; `in`, `=` need the label.
- An empty selector matches everything; `label_selector_from_spec(None)` (a nil selector in
  Go) matches nothing.
- Field selectors are `f=v`, `f==v`, `f!=v` joined by unescaped `,`; values escape `\\`,
  `\\,` and `\\=`. A field name is *not* trimmed (Kubernetes does not trim it either, so
  `a = b` names the field `"a "` and the server rejects it as unsupported).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "field_value",
    "label_selector_from_spec",
    "parse_field_selector",
    "parse_label_selector",
    "selector_to_string",
    "supported_field",
]


class SelectorError(ValueError):
    """A selector that does not parse or validate; the API server answers 400 Bad Request."""


class Operator(StrEnum):
    """Requirement operators, spelled as `k8s.io/apimachinery/pkg/selection` spells them."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# ---------------------------------------------------------------------------------------------
# Label key and value validation (IsQualifiedName / IsValidLabelValue)

_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid label key (`[prefix/]name`), or None when it is."""
    parts = key.split("/")
    if len(parts) > 2:
        return f"a qualified name {_NAME_RULE}, with an optional DNS subdomain prefix and '/'"
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253:
            return "prefix part must be no more than 253 characters"
        if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            return "prefix part must be a lowercase RFC 1123 subdomain (e.g. 'example.com')"
    else:
        name = parts[0]
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME_PART.fullmatch(name):
        return f"name part {_NAME_RULE}"
    return None


def _check_key(key: str) -> None:
    problem = _label_key_problem(key)
    if problem is not None:
        raise SelectorError(f"invalid label key {key!r}: {problem}")


def _check_value(key: str, value: str) -> None:
    if len(value) > 63:
        raise SelectorError(f"invalid value {value!r} for label {key!r}: more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        raise SelectorError(
            f"invalid value {value!r} for label {key!r}: a label value must be empty or "
            f"{_NAME_RULE.removeprefix('must ')}"
        )


# ---------------------------------------------------------------------------------------------
# Label selectors


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key. Build through the parse/spec functions (they validate)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        op = self.operator
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return present and value in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present or value not in self.values
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        # gt / lt: both sides must be integers, else no match (as in Go).
        if not present or len(self.values) != 1:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


def _requirement(key: str, op: Operator, values: list[str]) -> Requirement:
    """Validate and build, with the rules of Go's `labels.NewRequirement`."""
    _check_key(key)
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        raise SelectorError(f"label {key!r}: for 'in', 'notin' operators, values can't be empty")
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        raise SelectorError(f"label {key!r}: exact-match compatibility requires one single value")
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        raise SelectorError(f"label {key!r}: values must be empty for Exists and DoesNotExist")
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            raise SelectorError(f"label {key!r}: 'gt' and 'lt' need exactly one value")
        try:
            int(values[0])
        except ValueError:
            raise SelectorError(
                f"label {key!r}: for 'gt', 'lt' the value must be an integer, not {values[0]!r}"
            ) from None
    for value in values:
        _check_value(key, value)
    return Requirement(key, op, tuple(values))


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements, sorted by key; `matches_nothing` is Go's `labels.Nothing()`."""

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing (it matches every object)."""
        return not self.matches_nothing and not self.requirements

    def __str__(self) -> str:
        return selector_to_string(self)


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda r: r.key))


def selector_to_string(selector: LabelSelector) -> str:
    """Canonical form, as Go's `Selector.String()`: `a in (x,y),b!=c,!d` (keys sorted)."""
    return ",".join(str(r) for r in selector.requirements)


_OPERATOR_SPEC = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def label_selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """The object form (`matchLabels` + `matchExpressions`) as Go's `LabelSelectorAsSelector`.

    `None` (an absent selector) matches nothing; `{}` matches everything.
    """
    if spec is None:
        return LabelSelector(matches_nothing=True)
    if not isinstance(spec, Mapping):
        raise SelectorError(f"a label selector must be an object, not {type(spec).__name__}")
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise SelectorError("matchLabels must be an object and matchExpressions a list")
    requirements = [
        _requirement(str(k), Operator.EQUALS, [_as_str(v, str(k))]) for k, v in match_labels.items()
    ]
    for i, expr in enumerate(expressions):
        if not isinstance(expr, Mapping):
            raise SelectorError(f"matchExpressions[{i}] must be an object")
        raw_op = expr.get("operator")
        op = _OPERATOR_SPEC.get(raw_op) if isinstance(raw_op, str) else None
        if op is None:
            raise SelectorError(
                f"matchExpressions[{i}].operator: {raw_op!r} is not a valid label selector "
                "operator (In, NotIn, Exists, DoesNotExist)"
            )
        key = expr.get("key")
        if not isinstance(key, str):
            raise SelectorError(f"matchExpressions[{i}].key must be a string")
        values = expr.get("values") or []
        if not isinstance(values, list):
            raise SelectorError(f"matchExpressions[{i}].values must be a list")
        requirements.append(_requirement(key, op, [_as_str(v, key) for v in values]))
    return LabelSelector(_sorted(requirements))


def _as_str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise SelectorError(f"label {key!r}: value {value!r} must be a string")
    return value


# --- the query-string parser ------------------------------------------------------------------
#
# Tokens: identifiers run until whitespace or one of = ! ( ) , > <. Operators are the longest
# run of those symbols that is a known operator ("!=" before "!", "==" before "=").
# "in"/"notin" are keywords after a key but plain identifiers where a value is expected, so
# `x in (in,notin)` parses.

_SYMBOLS = frozenset("=!(),><")
_SYMBOL_TOKENS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")
_END = ""  # the end-of-input token
_IDENT = "ident"


@dataclass
class _Token:
    kind: str  # one of _SYMBOL_TOKENS, "in", "notin", _IDENT or _END
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            tokens.append(_Token(_END, "end of string"))
            return tokens
        if text[i] in _SYMBOLS:
            for symbol in _SYMBOL_TOKENS:
                if text.startswith(symbol, i):
                    tokens.append(_Token(symbol, symbol))
                    i += len(symbol)
                    break
            continue
        start = i
        while i < n and text[i] not in _SYMBOLS and text[i] not in " \t\r\n":
            i += 1
        word = text[start:i]
        tokens.append(_Token(word if word in ("in", "notin") else _IDENT, word))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, as_value: bool = True) -> _Token:
        return self._view(self.tokens[self.pos], as_value)

    def take(self, as_value: bool = True) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return self._view(token, as_value)

    @staticmethod
    def _view(token: _Token, as_value: bool) -> _Token:
        if as_value and token.kind in ("in", "notin"):
            return _Token(_IDENT, token.text)
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if self.peek().kind == _END:
            return requirements
        while True:
            token = self.peek()
            if token.kind not in (_IDENT, "!"):
                raise SelectorError(
                    f"found '{token.text}', expected: !, identifier, or end of string"
                )
            requirements.append(self.requirement())
            after = self.take()
            if after.kind == _END:
                return requirements
            if after.kind != ",":
                raise SelectorError(f"found '{after.text}', expected: ',' or end of string")
            if self.peek().kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{self.peek().text}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = self.peek().kind == "!"
        if negated:
            self.take()
        key_token = self.take()
        if key_token.kind != _IDENT:
            raise SelectorError(f"found '{key_token.text}', expected: identifier")
        key = key_token.text
        _check_key(key)
        if negated:
            return _requirement(key, Operator.DOES_NOT_EXIST, [])
        if self.peek().kind in (_END, ","):
            return _requirement(key, Operator.EXISTS, [])
        op_token = self.take(as_value=False)
        op = {
            "=": Operator.EQUALS,
            "==": Operator.DOUBLE_EQUALS,
            "!=": Operator.NOT_EQUALS,
            "in": Operator.IN,
            "notin": Operator.NOT_IN,
            ">": Operator.GREATER_THAN,
            "<": Operator.LESS_THAN,
        }.get(op_token.kind)
        if op is None:
            raise SelectorError(
                f"found '{op_token.text}' after label {key!r}, expected: in, notin, =, ==, !=, >, <"
            )
        values = self.value_set() if op in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        return _requirement(key, op, sorted(values))

    def exact_value(self) -> set[str]:
        if self.peek().kind in (_END, ","):
            return {""}
        token = self.take()
        if token.kind != _IDENT:
            raise SelectorError(f"found '{token.text}', expected: identifier")
        return {token.text}

    def value_set(self) -> set[str]:
        opening = self.take()
        if opening.kind != "(":
            raise SelectorError(f"found '{opening.text}', expected: '('")
        values: set[str] = set()
        expect_value = True  # at the start and after each comma, a value may be given
        while True:
            token = self.take()
            if token.kind == ")":
                if expect_value:
                    values.add("")  # `()` and a trailing comma stand for the empty value
                return values
            if token.kind == "," and expect_value:
                values.add("")
                continue
            if token.kind == "," or (token.kind == _IDENT and expect_value):
                if token.kind == _IDENT:
                    values.add(token.text)
                expect_value = token.kind == ","
                continue
            raise SelectorError(f"found '{token.text}', expected: ',', ')' or identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the `labelSelector` query parameter (`kubectl get -l ...`)."""
    try:
        requirements = _LabelParser(text).parse()
    except SelectorError as e:
        raise SelectorError(f"unable to parse label selector {text!r}: {e}") from None
    return LabelSelector(_sorted(requirements))


# ---------------------------------------------------------------------------------------------
# Field selectors


@dataclass(frozen=True)
class FieldRequirement:
    """`field` compared with `value`; operator is "=" (also for "==") or "!="."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """An AND of field requirements; the empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(r.field for r in self.requirements)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for r in self.requirements:
            equal = field_value(obj, r.field) == r.value
            if equal != (r.operator == "="):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str, term: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: bad escape '\\{ch}' in {term!r}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(
                f"invalid field selector: unescaped '{ch}' in the value of {term!r}"
            )
        else:
            out.append(ch)
    if escaped:
        raise SelectorError(f"invalid field selector: lone '\\' at the end of {term!r}")
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse the `fieldSelector` query parameter. Terms are kept sorted, as Go sorts them."""
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_unescaped_commas(text)):
        if term == "":
            continue
        # The first position where "!=", "==" or "=" starts splits field from value.
        for i in range(len(term)):
            op = next((o for o in ("!=", "==", "=") if term.startswith(o, i)), None)
            if op is not None:
                name, raw = term[:i], term[i + len(op) :]
                break
        else:
            raise SelectorError(
                f"invalid field selector {text!r}: can't understand {term!r} "
                "(expected field=value, field==value or field!=value)"
            )
        value = _unescape(raw, term)
        requirements.append(FieldRequirement(name, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(requirements))


# Which fields each kind lets a client select on (the API's field label conversion funcs).
# Kinds not listed accept only metadata.name and metadata.namespace.
_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    "Pod": _METADATA_FIELDS
    | {
        "spec.nodeName",
        "spec.host",  # old clients' name for spec.nodeName
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    "Event": _METADATA_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Secret": _METADATA_FIELDS | {"type"},
    "Service": _METADATA_FIELDS | {"spec.clusterIP", "spec.type"},
    # Cluster-scoped: Kubernetes rejects metadata.namespace for these two.
    "Namespace": frozenset({"metadata.name", "status.phase"}),
    "Node": frozenset({"metadata.name", "spec.unschedulable"}),
    "ReplicaSet": _METADATA_FIELDS | {"status.replicas"},
    "ReplicationController": _METADATA_FIELDS | {"status.replicas"},
    "Job": _METADATA_FIELDS | {"status.successful"},
    "CertificateSigningRequest": _METADATA_FIELDS | {"spec.signerName"},
}


def supported_field(kind: str, field: str) -> bool:
    """Whether a field selector on `field` is allowed for `kind` (else the server says 400)."""
    return field in _SUPPORTED_FIELDS.get(kind, _METADATA_FIELDS)


def _dotted(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares for `field` on `obj` ("" when absent).

    Mostly the dotted path; a few selectable fields are computed, as in Kubernetes: a Pod's
    `status.podIP` falls back to the first `status.podIPs` entry, `spec.host` is `spec.nodeName`,
    booleans and counters are printed with their zero value, a Job's `status.successful` is
    `status.succeeded`, an Event's `source` falls back to `reportingComponent`.
    """
    kind = obj.get("kind")
    if kind == "Pod":
        if field == "spec.host":
            field = "spec.nodeName"
        elif field == "status.podIP":
            # status.podIP wins over status.podIPs[0] when both are set (v1 conversion rule).
            ip = _scalar(_dotted(obj, "status.podIP"))
            ips = _dotted(obj, "status.podIPs")
            if not ip and isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
                ip = _scalar(ips[0].get("ip"))
            return ip
        elif field == "status.podIPs":
            return ""  # accepted by the API, but not a selectable value there either
        elif field == "spec.hostNetwork":
            return "true" if _dotted(obj, field) is True else "false"
    elif kind == "Event":
        if field == "source":
            component = _scalar(_dotted(obj, "source.component"))
            return component or _scalar(obj.get("reportingComponent"))
    elif kind == "Node" and field == "spec.unschedulable":
        return "true" if _dotted(obj, field) is True else "false"
    elif kind in ("ReplicaSet", "ReplicationController") and field == "status.replicas":
        return _scalar(_dotted(obj, field) or 0)
    elif kind == "Job" and field == "status.successful":
        return _scalar(_dotted(obj, "status.succeeded") or 0)
    return _scalar(_dotted(obj, field))
