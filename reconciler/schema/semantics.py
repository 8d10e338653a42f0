"""The apiserver's validation rules that no JSON Schema expresses, for the kinds users write
most. Pure; shared by the API server (every write) and `recon validate` (every file in git,
so a `git push` with one of these mistakes is rejected before anything is applied).

The upstream schemas accept a Deployment whose selector does not match its template's
labels, a Job that restarts `Always`, an Ingress path without a `pathType`, a
PodDisruptionBudget with both `minAvailable` and `maxUnavailable`; the real apiserver
rejects each with a field path and a reason, and so do we, in its words (field, then
"Invalid value: ...", "Required value: ...", "Unsupported value: ...", "Duplicate value:
...", "Forbidden: ..."). Anything malformed enough to fail the schema is left to the schema
errors: these checks skip values of the wrong type.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["SpecCause", "spec_errors"]

JSONDict = dict[str, Any]
Part = str | int


@dataclass(frozen=True)
class SpecCause:
    parts: tuple[Part, ...]
    message: str

    @property
    def field(self) -> str:
        text = ""
        for part in self.parts:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text


def _go(value: Any) -> str:
    """A value as it appears in the apiserver's messages (JSON here: close enough to read)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _dict(value: Any) -> JSONDict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_PERCENT = re.compile(r"^[0-9]+%$")


def _int_or_percent(
    value: Any, parts: tuple[Part, ...], out: list[SpecCause]
) -> tuple[int, bool] | None:
    """(amount, is percent) of an IntOrString; a cause for a negative, malformed or > 100%."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if value < 0:
            out.append(
                SpecCause(parts, f"Invalid value: {value}: must be greater than or equal to 0")
            )
            return None
        return value, False
    if isinstance(value, str):
        if not _PERCENT.match(value):
            out.append(
                SpecCause(
                    parts,
                    f"Invalid value: {_go(value)}: a valid percent string must be a numeric "
                    "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
                    "validation is '[0-9]+%')",
                )
            )
            return None
        amount = int(value[:-1])
        if amount > 100:
            out.append(
                SpecCause(parts, f"Invalid value: {_go(value)}: must not be greater than 100%")
            )
            return None
        return amount, True
    return None


# -- pods --------------------------------------------------------------------------------------


def _pod_spec(spec: JSONDict, parts: tuple[Part, ...], out: list[SpecCause]) -> None:
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(_list(spec.get(group))):
            name = _dict(container).get("name")
            if not isinstance(name, str):
                continue
            if name in seen:
                out.append(
                    SpecCause((*parts, group, index, "name"), f"Duplicate value: {_go(name)}")
                )
            seen.add(name)
    if spec.get("hostNetwork") is True:
        _host_network_ports(spec, parts, out)
    _dns_config(spec, parts, out)


def _host_network_ports(spec: JSONDict, parts: tuple[Part, ...], out: list[SpecCause]) -> None:
    """On the host's network a container port is the host port: a different `hostPort` is
    refused (unset is fine: the API defaults it to the container port)."""
    for group in ("initContainers", "containers"):
        for index, container in enumerate(_list(spec.get(group))):
            for number, port in enumerate(_list(_dict(container).get("ports"))):
                host, inside = _dict(port).get("hostPort"), _dict(port).get("containerPort")
                if isinstance(host, int) and host not in (0, inside):
                    out.append(
                        SpecCause(
                            (*parts, group, index, "ports", number, "hostPort"),
                            f"Invalid value: {host}: must match `containerPort` when "
                            "`hostNetwork` is true",
                        )
                    )


MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_CHARS = 2048


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _dns_config(spec: JSONDict, parts: tuple[Part, ...], out: list[SpecCause]) -> None:
    """upstream's `validatePodDNSConfig`: what resolv.conf can hold."""
    where = (*parts, "dnsConfig")
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            out.append(
                SpecCause(
                    where, "Required value: must provide `dnsConfig` when `dnsPolicy` is None"
                )
            )
            return
        if not _list(config.get("nameservers")):
            out.append(
                SpecCause(
                    (*where, "nameservers"),
                    "Required value: must provide at least one DNS nameserver when `dnsPolicy` "
                    "is None",
                )
            )
            return
    if not isinstance(config, dict):
        return
    servers = _list(config.get("nameservers"))
    if len(servers) > MAX_DNS_NAMESERVERS:
        out.append(
            SpecCause(
                (*where, "nameservers"),
                f"Invalid value: {_go(servers)}: must not have more than {MAX_DNS_NAMESERVERS} "
                "nameservers",
            )
        )
    for index, server in enumerate(servers):
        if isinstance(server, str) and not _is_ip(server):
            out.append(
                SpecCause(
                    (*where, "nameservers", index),
                    f"Invalid value: {_go(server)}: must be a valid IP address, (e.g. 10.9.8.7 "
                    "or 2001:db8::ffff)",
                )
            )
    searches = [s for s in _list(config.get("searches")) if isinstance(s, str)]
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        out.append(
            SpecCause(
                (*where, "searches"),
                f"Invalid value: {_go(searches)}: must not have more than "
                f"{MAX_DNS_SEARCH_PATHS} search paths",
            )
        )
    if len(" ".join(searches)) > MAX_DNS_SEARCH_CHARS:
        out.append(
            SpecCause(
                (*where, "searches"),
                f"Invalid value: {_go(searches)}: must not have more than "
                f"{MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list",
            )
        )
    for index, option in enumerate(_list(config.get("options"))):
        if isinstance(option, dict) and not option.get("name"):
            out.append(
                SpecCause(
                    (*where, "options", index),
                    "Required value: Option.Name must not be empty",
                )
            )


def _restart_policy(
    template: JSONDict, parts: tuple[Part, ...], allowed: tuple[str, ...], out: list[SpecCause]
) -> None:
    policy = _dict(template.get("spec")).get("restartPolicy")
    supported = ", ".join(_go(a) for a in allowed)
    where = (*parts, "spec", "restartPolicy")
    if policy is None:
        if "Always" not in allowed:
            out.append(SpecCause(where, f"Required value: valid values: {supported}"))
    elif isinstance(policy, str) and policy not in allowed:
        out.append(
            SpecCause(where, f"Unsupported value: {_go(policy)}: supported values: {supported}")
        )


# -- workloads ---------------------------------------------------------------------------------


def _replicas(spec: JSONDict, out: list[SpecCause]) -> None:
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
        out.append(
            SpecCause(
                ("spec", "replicas"),
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )


def _workload(kind: str, obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    _replicas(spec, out)
    template = _dict(spec.get("template"))
    selector = spec.get("selector")
    if isinstance(selector, dict):
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            out.append(
                SpecCause(
                    ("spec", "selector"),
                    f"Invalid value: {_go(selector)}: empty selector is invalid for {kind.lower()}",
                )
            )
        else:
            try:
                chosen = label_selector_from_spec(selector)
            except SelectorError as exc:
                out.append(
                    SpecCause(("spec", "selector"), f"Invalid value: {_go(selector)}: {exc}")
                )
            else:
                labels = _dict(_dict(template.get("metadata")).get("labels"))
                if template and not chosen.matches({str(k): str(v) for k, v in labels.items()}):
                    out.append(
                        SpecCause(
                            ("spec", "template", "metadata", "labels"),
                            f"Invalid value: {_go(labels)}: `selector` does not match template "
                            "`labels`",
                        )
                    )
    if template:
        _pod_spec(_dict(template.get("spec")), ("spec", "template", "spec"), out)
        _restart_policy(template, ("spec", "template"), ("Always",), out)
    if kind == "Deployment":
        _deployment_strategy(_dict(spec.get("strategy")), out)


def _replication_controller(obj: JSONDict, out: list[SpecCause]) -> None:
    """Upstream's ValidateReplicationControllerSpec: a non-empty label-map selector (the
    API defaults it from the template's labels) that matches the template's labels."""
    spec = _dict(obj.get("spec"))
    _replicas(spec, out)
    selector = _dict(spec.get("selector"))
    if not selector:
        out.append(SpecCause(("spec", "selector"), "Required value"))
    template = _dict(spec.get("template"))
    if not template:
        out.append(SpecCause(("spec", "template"), "Required value"))
        return
    labels = _dict(_dict(template.get("metadata")).get("labels"))
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        out.append(
            SpecCause(
                ("spec", "template", "metadata", "labels"),
                f"Invalid value: {_go(labels)}: `selector` does not match template `labels`",
            )
        )
    _pod_spec(_dict(template.get("spec")), ("spec", "template", "spec"), out)
    _restart_policy(template, ("spec", "template"), ("Always",), out)


def _deployment_strategy(strategy: JSONDict, out: list[SpecCause]) -> None:
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling is not None:
        out.append(
            SpecCause(
                ("spec", "strategy", "rollingUpdate"),
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        )
        return
    if not isinstance(rolling, dict):
        return
    base = ("spec", "strategy", "rollingUpdate")
    unavailable = _int_or_percent(rolling.get("maxUnavailable"), (*base, "maxUnavailable"), out)
    surge = _int_or_percent(rolling.get("maxSurge"), (*base, "maxSurge"), out)
    if unavailable is not None and surge is not None and unavailable[0] == 0 and surge[0] == 0:
        out.append(
            SpecCause(
                (*base, "maxUnavailable"),
                f"Invalid value: {_go(rolling.get('maxUnavailable'))}: may not be 0 when "
                "`maxSurge` is 0",
            )
        )


_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH = re.compile(f"^{_HTTP_PATH_FMT}$")


def _domain_prefixed_path(value: str, where: tuple[Part, ...], out: list[SpecCause]) -> None:
    """upstream's `IsDomainPrefixedPath` (`acme.io/foo`), in its words."""
    if not value:
        out.append(SpecCause(where, "Required value"))
        return
    host, slash, path = value.partition("/")
    if not slash or not host or not path:
        out.append(
            SpecCause(
                where,
                f"Invalid value: {_go(value)}: must be a domain-prefixed path "
                '(such as "acme.io/foo")',
            )
        )
        return
    if len(host) > 253:
        out.append(
            SpecCause(where, f"Invalid value: {_go(host)}: must be no more than 253 characters")
        )
    if not _DNS1123_SUBDOMAIN.match(host):
        out.append(
            SpecCause(
                where,
                f"Invalid value: {_go(host)}: a lowercase RFC 1123 subdomain must consist of lower "
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                f"'{_DNS1123_SUBDOMAIN.pattern[1:-1]}')",
            )
        )
    if not _HTTP_PATH.match(path):
        out.append(
            SpecCause(
                where,
                f"Invalid value: {_go(path)}: Invalid path (regex used for validation is "
                f"'{_HTTP_PATH_FMT}')",
            )
        )


def _job_policies(spec: JSONDict, out: list[SpecCause]) -> None:
    """`managedBy` (a domain-prefixed path of at most 63 bytes) and `podReplacementPolicy`
    (only `Failed` with a `podFailurePolicy`), as upstream's `validateJobSpec`."""
    managed_by = spec.get("managedBy")
    if isinstance(managed_by, str):
        _domain_prefixed_path(managed_by, ("spec", "managedBy"), out)
        if len(managed_by.encode()) > 63:
            out.append(SpecCause(("spec", "managedBy"), "Too long: may not be more than 63 bytes"))
    replacement = spec.get("podReplacementPolicy")
    if isinstance(replacement, str):
        allowed = ["Failed", "TerminatingOrFailed"]
        if spec.get("podFailurePolicy") is not None:
            allowed = ["Failed"]
        if replacement not in allowed:
            supported = ", ".join(_go(a) for a in allowed)
            out.append(
                SpecCause(
                    ("spec", "podReplacementPolicy"),
                    f"Unsupported value: {_go(replacement)}: supported values: {supported}",
                )
            )


def _job(obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    _job_policies(spec, out)
    if spec.get("completionMode", "NonIndexed") != "Indexed":
        for key in ("backoffLimitPerIndex", "maxFailedIndexes", "successPolicy"):
            if spec.get(key) is not None:
                out.append(
                    SpecCause(
                        ("spec", key),
                        f"Invalid value: {_go(spec[key])}: requires indexed completion mode",
                    )
                )
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        out.append(
            SpecCause(("spec", "completions"), "Required value: when completion mode is Indexed")
        )
    template = _dict(spec.get("template"))
    if template:
        _pod_spec(_dict(template.get("spec")), ("spec", "template", "spec"), out)
        before = len(out)
        _restart_policy(template, ("spec", "template"), ("OnFailure", "Never"), out)
        policy = _dict(template.get("spec")).get("restartPolicy")
        if spec.get("podFailurePolicy") is not None and len(out) == before and policy != "Never":
            out.append(
                SpecCause(
                    ("spec", "template", "spec", "restartPolicy"),
                    f'Invalid value: {_go(policy)}: only "Never" is supported when '
                    "podFailurePolicy is specified",
                )
            )


def _cron_job(obj: JSONDict, out: list[SpecCause]) -> None:
    job_spec = _dict(_dict(_dict(obj.get("spec")).get("jobTemplate")).get("spec"))
    template = _dict(job_spec.get("template"))
    base: tuple[Part, ...] = ("spec", "jobTemplate", "spec", "template")
    if template:
        _pod_spec(_dict(template.get("spec")), (*base, "spec"), out)
        _restart_policy(template, base, ("OnFailure", "Never"), out)


def _pod(obj: JSONDict, out: list[SpecCause]) -> None:
    _pod_spec(_dict(obj.get("spec")), ("spec",), out)


# -- networking and policy -----------------------------------------------------------------------


def _service(obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    ports = [_dict(p) for p in _list(spec.get("ports"))]
    seen: set[tuple[Any, str]] = set()
    names: set[str] = set()
    for index, port in enumerate(ports):
        name = port.get("name")
        if len(ports) > 1 and not name:
            out.append(SpecCause(("spec", "ports", index, "name"), "Required value"))
        elif isinstance(name, str) and name:
            if name in names:
                out.append(
                    SpecCause(("spec", "ports", index, "name"), f"Duplicate value: {_go(name)}")
                )
            names.add(name)
        key = (port.get("port"), str(port.get("protocol") or "TCP"))
        if key in seen and key[0] is not None:
            value = {"port": key[0], "protocol": key[1]}
            out.append(SpecCause(("spec", "ports", index), f"Duplicate value: {_go(value)}"))
        seen.add(key)
    if spec.get("type") == "ExternalName" and not spec.get("externalName"):
        out.append(SpecCause(("spec", "externalName"), "Required value"))


def _ingress_backend(backend: JSONDict, parts: tuple[Part, ...], out: list[SpecCause]) -> None:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        out.append(
            SpecCause(parts, 'Invalid value: "": cannot set both resource and service backends')
        )
        return
    if service is None and resource is None:
        out.append(SpecCause(parts, 'Invalid value: "": resource or service backend is required'))
        return
    if isinstance(service, dict):
        port = _dict(service.get("port"))
        where = (*parts, "service", "port")
        if port.get("name") and port.get("number") is not None:
            out.append(
                SpecCause(
                    where, f"Invalid value: {_go(port)}: cannot set both port name & port number"
                )
            )
        elif not port.get("name") and port.get("number") is None:
            out.append(SpecCause(where, 'Invalid value: "": port name or number is required'))


def _ingress(obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    default = spec.get("defaultBackend")
    if isinstance(default, dict):
        _ingress_backend(default, ("spec", "defaultBackend"), out)
    elif not _list(spec.get("rules")):
        out.append(
            SpecCause(
                ("spec",), 'Invalid value: "": either `defaultBackend` or `rules` must be specified'
            )
        )
    for r, rule in enumerate(_list(spec.get("rules"))):
        paths = _list(_dict(_dict(rule).get("http")).get("paths"))
        for p, path in enumerate(paths):
            path = _dict(path)
            parts: tuple[Part, ...] = ("spec", "rules", r, "http", "paths", p)
            path_type = path.get("pathType")
            if path_type is None:
                out.append(
                    SpecCause((*parts, "pathType"), "Required value: pathType must be specified")
                )
            value = path.get("path")
            absolute = isinstance(value, str) and value.startswith("/")
            if path_type in ("Exact", "Prefix") and not absolute:
                out.append(
                    SpecCause(
                        (*parts, "path"),
                        f"Invalid value: {_go(value)}: must be an absolute path",
                    )
                )
            _ingress_backend(_dict(path.get("backend")), (*parts, "backend"), out)


def _pdb(obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    least, most = spec.get("minAvailable"), spec.get("maxUnavailable")
    if least is not None and most is not None:
        out.append(
            SpecCause(
                ("spec",),
                f"Invalid value: {_go(spec)}: minAvailable and maxUnavailable cannot be both set",
            )
        )
    _int_or_percent(least, ("spec", "minAvailable"), out)
    _int_or_percent(most, ("spec", "maxUnavailable"), out)


def _hpa(obj: JSONDict, out: list[SpecCause]) -> None:
    spec = _dict(obj.get("spec"))
    most, least = spec.get("maxReplicas"), spec.get("minReplicas")
    if isinstance(most, int) and most < 1:
        out.append(
            SpecCause(
                ("spec", "maxReplicas"),
                f"Invalid value: {most}: must be greater than or equal to 1",
            )
        )
    if isinstance(least, int):
        if least < 1:
            out.append(
                SpecCause(
                    ("spec", "minReplicas"),
                    f"Invalid value: {least}: must be greater than or equal to 1",
                )
            )
        elif isinstance(most, int) and least > most:
            out.append(
                SpecCause(
                    ("spec", "minReplicas"),
                    f"Invalid value: {least}: must be less than or equal to maxReplicas",
                )
            )


_RULES: Mapping[tuple[str, str], Callable[[JSONDict, list[SpecCause]], None]] = {
    ("apps", "Deployment"): lambda o, out: _workload("Deployment", o, out),
    ("apps", "ReplicaSet"): lambda o, out: _workload("ReplicaSet", o, out),
    ("apps", "StatefulSet"): lambda o, out: _workload("StatefulSet", o, out),
    ("apps", "DaemonSet"): lambda o, out: _workload("DaemonSet", o, out),
    ("", "ReplicationController"): _replication_controller,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
}


def spec_errors(group: str, kind: str, obj: JSONDict) -> list[SpecCause]:
    """What the apiserver would reject in this object beyond its schema; [] when nothing."""
    rule = _RULES.get((group, kind))
    if rule is None:
        return []
    out: list[SpecCause] = []
    rule(obj, out)
    return out
