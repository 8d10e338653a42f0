"""`ignoreDifferences`: fields of live objects an Application leaves to someone else.

An HPA scales a Deployment, a mutating webhook injects a sidecar image, a controller fills
in `caBundle`: the live value is right and git's is not, and the user says so with JSON
pointers per group/kind/name (the Application's `spec.ignoreDifferences`, as in Argo CD).
Sync status, `recon diff`, self-heal and the apply itself must all agree on what that
means, or self-heal keeps reverting what diff says is fine. This module is the one place
that decides it, for all of them:

- `respect_ignored(desired, live, pointers)` rewrites desired so that kubectl's three-way
  apply leaves every ignored field as live has it (Argo's `RespectIgnoreDifferences`): the
  applier, the dry-run diff and the drift check (`gitops.drift`) all apply *that* object;
- `strip_ignored(obj, pointers)` removes the ignored fields, for a comparison or a diff
  that should not show them at all.

Pointers are RFC 6901 (`/spec/template/spec/containers/0/image`, `~1` for `/` and `~0` for
`~` in a key). Array indexes are positions in each object as it is, as Argo uses them: if
a webhook put a sidecar first in live, `/containers/0` is the sidecar there. A pointer that
does not resolve in an object ignores nothing in it; one that is not a pointer at all is a
mistake in the Application and raises `ValueError` naming it, when the rules are parsed.

Purely computational: no I/O, inputs are never changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.merge.three_way import last_applied_of

__all__ = [
    "IgnoreRule",
    "live_keeper",
    "parse_pointer",
    "parse_rules",
    "respect_ignored",
    "rules_for",
    "strip_ignored",
]

JSONDict = dict[str, Any]
Tokens = tuple[str, ...]

WILDCARD: Final = "*"


# --------------------------------------------------------------------------------------------
# pointers


@functools.lru_cache(maxsize=1024)
def parse_pointer(pointer: str) -> Tokens:
    """The reference tokens of an RFC 6901 pointer, unescaped: `/a~1b/0` → `("a/b", "0")`.

    Cached: the same few pointers are resolved against every object of every sync. Raises
    `ValueError` naming the pointer when it is not one: it must start with `/` (the empty
    pointer, the whole object, is refused too: ignoring a whole object is not a difference
    to ignore but an object not to manage), and `~` must be followed by `0` or `1`.
    """
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer: it must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        rest = raw.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise ValueError(
                f"{pointer!r} is not a JSON pointer: '~' must be written '~0' (and '/' '~1')"
            )
        # `~1` first would turn `~01` (the key `~1`) into `/`: RFC 6901 section 4 order.
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def _index(token: str, items: list[Any]) -> int | None:
    """The list position `token` names in `items`, or None (`-`, `01`, `x`, out of range)."""
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        return None
    position = int(token)
    return position if position < len(items) else None


def _child(container: Any, token: str) -> tuple[bool, Any]:
    """(found, value) of one step down."""
    if isinstance(container, dict):
        return (True, container[token]) if token in container else (False, None)
    if isinstance(container, list):
        position = _index(token, container)
        return (False, None) if position is None else (True, container[position])
    return False, None


def _get(obj: Any, tokens: Tokens) -> tuple[bool, Any]:
    """(found, value) at `tokens` in `obj`."""
    current = obj
    for token in tokens:
        found, current = _child(current, token)
        if not found:
            return False, None
    return True, current


def _copy(value: Any) -> Any:
    """A deep copy of decoded JSON (only dicts and lists nest), far cheaper than deepcopy."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# rules


def _group_of(api_version: str) -> str:
    """`apps/v1` → `apps`; `v1` → `` (the core group)."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True)
class IgnoreRule:
    """One `spec.ignoreDifferences` entry.

    `group` is the API group without version (`apps`; empty for the core group, so a rule
    for ConfigMaps names no group); `name` and `namespace` empty match any object. `*` as
    group or kind matches any, as Argo CD allows.
    """

    kind: str
    json_pointers: tuple[str, ...]
    group: str = ""
    name: str = ""
    namespace: str = ""

    @classmethod
    def from_spec(cls, entry: Mapping[str, Any], where: str = "ignoreDifferences") -> IgnoreRule:
        """Parse and check one entry; `where` prefixes errors so users find the entry.

        Every pointer is parsed here, once, so a typo is reported against the Application
        when it is read rather than silently ignoring nothing on every sync.
        """
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: must be an object, not {type(entry).__name__}")
        kind = entry.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"{where}.kind: required, a kind such as 'Deployment'")
        pointers = entry.get("jsonPointers")
        if not isinstance(pointers, list | tuple):
            raise ValueError(f"{where}.jsonPointers: required, a list of JSON pointers")
        for position, pointer in enumerate(pointers):
            try:
                parse_pointer(pointer)
            except (ValueError, TypeError) as e:
                message = str(e) if isinstance(e, ValueError) else f"{pointer!r} is not a string"
                raise ValueError(f"{where}.jsonPointers[{position}]: {message}") from e
        fields = {}
        for key in ("group", "name", "namespace"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.{key}: must be a string")
            fields[key] = value or ""
        return cls(kind=kind, json_pointers=tuple(pointers), **fields)

    def matches(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        """Does this rule apply to the object `api_version`/`kind` `namespace`/`name`?"""
        return (
            self.kind in (WILDCARD, kind)
            and self.group in (WILDCARD, _group_of(api_version))
            and self.name in ("", name)
            and self.namespace in ("", namespace)
        )


def parse_rules(entries: Iterable[Mapping[str, Any]] | None) -> tuple[IgnoreRule, ...]:
    """All rules of an Application's `spec.ignoreDifferences` (errors name the entry)."""
    return tuple(
        IgnoreRule.from_spec(entry, f"ignoreDifferences[{position}]")
        for position, entry in enumerate(entries or ())
    )


def rules_for(rules: Iterable[IgnoreRule], obj: Mapping[str, Any]) -> list[str]:
    """The pointers ignored in `obj` (a manifest or a live object), each once, in order."""
    meta = obj.get("metadata") or {}
    api_version = str(obj.get("apiVersion") or "")
    kind = str(obj.get("kind") or "")
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "")
    pointers: dict[str, None] = {}
    for rule in rules:
        if rule.matches(api_version, kind, name, namespace):
            pointers.update(dict.fromkeys(rule.json_pointers))
    return list(pointers)


# --------------------------------------------------------------------------------------------
# rewriting objects


def _leaves_at_map_key(obj: Any, tokens: Tokens) -> bool:
    """True when `tokens` is missing from `obj` and the first missing step is a map key.

    Such a field is one the merge keeps from live on its own (maps merge key by key), so
    desired need not name it. Missing inside a list is different: lists are mostly
    replaced whole, and the live element would be lost.
    """
    current = obj
    for token in tokens:
        found, child = _child(current, token)
        if not found:
            return isinstance(current, dict)
        current = child
    return False


def _set(obj: JSONDict, tokens: Tokens, value: Any, live: JSONDict) -> None:
    """Put `value` at `tokens` in `obj`, creating the maps on the way that live has.

    A list position is replaced, or appended when it is the next one; a step that cannot
    be made (a scalar, or a list too short, in obj where live has a container) is left.
    """
    current: Any = obj
    live_at: Any = live
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        _, live_at = _child(live_at, token)
        if isinstance(current, dict):
            if last:
                current[token] = value
                return
            if token not in current:
                if not isinstance(live_at, dict):
                    return  # a list cannot be made up element by element
                current[token] = {}
            current = current[token]
        elif isinstance(current, list):
            position = _index(token, current)
            if position is None and token == str(len(current)) and token.isdigit():
                if not last:
                    return
                current.append(value)
                return
            if position is None:
                return
            if last:
                current[position] = value
                return
            current = current[position]
        else:
            return


def _remove(obj: JSONDict, tokens: Tokens, live: JSONDict | None) -> None:
    """Delete `tokens` from `obj`; then drop the maps it left empty that live lacks too.

    Leaving `strategy: {}` behind would make the apply add an empty map live never had.
    With `live` None nothing but the field itself is removed.
    """
    found, parent = _get(obj, tokens[:-1])
    if not found:
        return
    token = tokens[-1]
    if isinstance(parent, dict):
        parent.pop(token, None)
    elif isinstance(parent, list):
        position = _index(token, parent)
        if position is None:
            return
        del parent[position]
    if live is None:
        return
    for depth in range(len(tokens) - 1, 0, -1):
        _, container = _get(obj, tokens[:depth])
        _, holder = _get(obj, tokens[: depth - 1])
        if container != {} or not isinstance(holder, dict) or _get(live, tokens[:depth])[0]:
            return
        holder.pop(tokens[depth - 1], None)


def _removal_order(tokens: Tokens) -> tuple[tuple[int, int, str], ...]:
    """Sort key: removing in descending order never shifts a list position still to come."""
    return tuple((0, int(t), "") if t.isdigit() and t.isascii() else (1, 0, t) for t in tokens)


def _remove_all(obj: JSONDict, paths: Iterable[Tokens], live: JSONDict | None) -> None:
    for tokens in sorted(set(paths), key=_removal_order, reverse=True):
        _remove(obj, tokens, live)


def respect_ignored(
    desired: JSONDict,
    live: JSONDict,
    pointers: Sequence[str],
    *,
    last_applied: JSONDict | None = None,
) -> JSONDict:
    """`desired` rewritten so that applying it leaves every ignored field as it is in live.

    For each pointer that resolves in live, the result holds live's value there; for each
    that does not, the result lacks it. Applied with kubectl's three-way merge, an ignored
    field then neither changes nor disappears, whatever the patch strategy of the fields
    around it. One exception, on purpose: a field that neither desired nor the last applied
    configuration names, reached through a map, is left out of desired: the merge keeps it
    anyway (it is "set by others"), and writing it into the last-applied annotation would
    make a later apply *delete* it once the rule is removed (an HPA-scaled Deployment
    whose git omits `replicas` would drop to one replica), and rewrite the annotation on
    every scale.

    `last_applied` is the configuration the three-way merge uses as "original"; by default
    the one recorded on live, as `Applier.apply_one` uses it.
    """
    out: JSONDict = _copy(desired)
    if not pointers:
        return out
    applied = last_applied if last_applied is not None else last_applied_of(live)
    removals = []
    for pointer in pointers:
        tokens = parse_pointer(pointer)
        found, value = _get(live, tokens)
        if not found:
            removals.append(tokens)
        elif (
            _get(desired, tokens)[0]
            or (applied is not None and _get(applied, tokens)[0])
            or not _leaves_at_map_key(desired, tokens)
        ):
            _set(out, tokens, _copy(value), live)
    _remove_all(out, removals, live)
    return out


def strip_ignored(obj: JSONDict, pointers: Sequence[str]) -> JSONDict:
    """A copy of `obj` without the ignored fields, for comparing or showing a diff.

    Positions refer to `obj` as given: stripping `/args/1` and `/args/2` removes both.
    """
    out: JSONDict = _copy(obj)
    _remove_all(out, (parse_pointer(pointer) for pointer in pointers), None)
    return out


def live_keeper(
    rules: Sequence[IgnoreRule],
) -> Callable[..., JSONDict] | None:
    """The `keep_live` hook of `gitops.apply.Applier` for an Application's rules.

    None without rules, so an Application that ignores nothing pays nothing. With `whole`
    (a `Replace=true` write, which keeps nothing of live on its own) every ignored field
    live has is taken, git naming it or not.
    """
    if not rules:
        return None

    def keep(desired: JSONDict, live: JSONDict, *, whole: bool = False) -> JSONDict:
        pointers = rules_for(rules, desired)
        return respect_ignored(desired, live, pointers, last_applied=live if whole else None)

    return keep
