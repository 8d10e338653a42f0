"""Pod Security Standards: the checks of upstream's Pod Security Admission, at version "latest".

A namespace chooses a level per mode with the `pod-security.kubernetes.io/{enforce,warn,audit}`
labels (and `-version` labels); a pod (or a pod template) is then checked against it. Users
see the results verbatim, so reasons, details and their order are upstream's
(k8s.io/pod-security-admission, `policy/check_*.go`):

- checks run baseline first, then restricted, each group sorted by upstream's check ID
  (`policy/registry.go`), and a restricted check replaces the baseline check it overrides
  (capabilities, hostPath volumes, seccomp and procMount);
- container lists follow upstream's visit order (initContainers, containers,
  ephemeralContainers) and its helpers: `container "a"`, `containers "a", "b"`;
- the aggregate is `violates PodSecurity "restricted:latest": reason (detail), reason`
  (enforce) or `would violate PodSecurity ...` (warn and audit), from `admission/admission.go`.

Versions: a `v1.N` version label is valid, as upstream, but every check is evaluated as at
"latest" (upstream keeps per-version variants — older sysctl lists, no probe-host check
before v1.34, no user-namespace relaxation before v1.35, seccomp annotations before v1.19).
The message still names the requested version, as upstream does.

Pure: the caller passes the pod's metadata and spec, or the namespace's labels, as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LEVELS",
    "NamespacePolicy",
    "Violation",
    "check_pod",
    "label_errors",
    "namespace_policy",
    "violation_text",
]

LEVELS = ("privileged", "baseline", "restricted")
LATEST = "latest"

_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LABEL = _PREFIX + "enforce"
ENFORCE_VERSION_LABEL = _PREFIX + "enforce-version"
AUDIT_LABEL = _PREFIX + "audit"
AUDIT_VERSION_LABEL = _PREFIX + "audit-version"
WARN_LABEL = _PREFIX + "warn"
WARN_VERSION_LABEL = _PREFIX + "warn-version"

# api/helpers.go: ParseLevel and ParseVersion's error details.
_LEVEL_ERROR = "must be one of privileged, baseline, restricted"
_VERSION_ERROR = 'must be "latest" or "v1.x"'
_VERSION_RE = re.compile(r"v1\.([0-9]|[1-9][0-9]*)")
_GO_MAX_INT = 2**63 - 1

# policy/checks.go: the reason used when a check forbids without giving one.
_UNKNOWN_REASON = "unknown forbidden reason"

JSONDict = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    """One forbidding check: upstream's ForbiddenReason and ForbiddenDetail."""

    reason: str
    detail: str


# --- upstream's helpers (policy/helpers.go, policy/visitor.go) ---------------------------------


def _join_quote(items: Iterable[str]) -> str:
    """`"a", "b"`: items wrapped in double quotes without escaping, as upstream's joinQuote."""
    items = list(items)
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


def _pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _go_quote(value: str) -> str:
    """Go's `%q` of a string (strconv.Quote), for the values upstream quotes that way."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _map(value: Any) -> JSONDict:
    """A JSON object, or {} for null/absent (Go's nil pointer reads as unset)."""
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _str(value: Any) -> str:
    """A string field: absent/null is Go's zero value ""."""
    return "" if value is None else str(value)


def _containers(spec: JSONDict) -> Iterator[JSONDict]:
    """Every container in upstream's visit order: init, regular, then ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            yield _map(container)


def _name(container: JSONDict) -> str:
    return _str(container.get("name"))


def _security(obj: JSONDict) -> JSONDict | None:
    """A pod's or container's securityContext, None when unset (as a nil pointer)."""
    value = obj.get("securityContext")
    return value if isinstance(value, Mapping) else None


def _is_true(value: Any) -> bool:
    """A *bool that is set and true."""
    return value is not None and bool(value)


def _is_false(value: Any) -> bool:
    """A *bool that is set and false."""
    return value is not None and not bool(value)


def _is_windows(spec: JSONDict) -> bool:
    return _map(spec.get("os")).get("name") == "windows"


def _in_user_namespace(spec: JSONDict) -> bool:
    """relaxPolicyForUserNamespacePod: `hostUsers: false` relaxes some checks since v1.35."""
    return _is_false(spec.get("hostUsers"))


def _containers_phrase(names: Sequence[str]) -> str:
    return f"{_pluralize('container', 'containers', len(names))} {_join_quote(names)}"


# --- baseline checks ---------------------------------------------------------------------------

CheckFn = Callable[[JSONDict, JSONDict], Violation | None]


def _app_armor_profile(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_appArmorProfile.go: only RuntimeDefault/Localhost profiles, in fields and the
    deprecated beta annotations ('runtime/default', 'localhost/*' or empty)."""
    allowed_types = ("RuntimeDefault", "Localhost")
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    pod_sc = _security(spec)
    if pod_sc is not None and pod_sc.get("appArmorProfile") is not None:
        kind = _str(_map(pod_sc["appArmorProfile"]).get("type"))
        if kind not in allowed_types:
            bad_setters.append("pod")
            bad_values.add(kind)
    bad_containers: list[str] = []
    for container in _containers(spec):
        sc = _security(container)
        if sc is not None and sc.get("appArmorProfile") is not None:
            kind = _str(_map(sc["appArmorProfile"]).get("type"))
            if kind not in allowed_types:
                bad_containers.append(_name(container))
                bad_values.add(kind)
    if bad_containers:
        bad_setters.append(_containers_phrase(bad_containers))
    forbidden_annotations = []
    for key, value in _map(metadata.get("annotations")).items():
        text = _str(value)
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            text == "" or text == "runtime/default" or text.startswith("localhost/")
        ):
            forbidden_annotations.append(f"{key}={_go_quote(text)}")
    bad_list = sorted(bad_values)
    if forbidden_annotations:
        bad_list += sorted(forbidden_annotations)
        bad_setters.append(_pluralize("annotation", "annotations", len(forbidden_annotations)))
    if not bad_setters:
        return None
    return Violation(
        _pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad_list)),
        f"{' and '.join(bad_setters)} must not set AppArmor profile type to "
        f"{_join_quote(bad_list)}",
    )


# check_capabilities_baseline.go: the container runtime's default set.
_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _capabilities_baseline(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_capabilities_baseline.go: nothing beyond the default set may be added."""
    bad_containers: list[str] = []
    non_default: set[str] = set()
    for container in _containers(spec):
        sc = _security(container)
        if sc is None or sc.get("capabilities") is None:
            continue
        added = [_str(c) for c in _list(_map(sc["capabilities"]).get("add"))]
        bad = [c for c in added if c not in _BASELINE_CAPABILITIES]
        if bad:
            non_default.update(bad)
            bad_containers.append(_name(container))
    if not bad_containers:
        return None
    return Violation(
        "non-default capabilities",
        f"{_containers_phrase(bad_containers)} must not include "
        f"{_join_quote(sorted(non_default))} in securityContext.capabilities.add",
    )


def _host_namespaces(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_hostNamespaces.go: no host network, PID or IPC namespace."""
    shared = [
        f"{field}=true"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if _is_true(spec.get(field))
    ]
    if not shared:
        return None
    return Violation("host namespaces", ", ".join(shared))


def _host_path_volumes(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_hostPathVolumes.go: no hostPath volumes (baseline; restricted lists all types)."""
    names = [
        _str(_map(v).get("name"))
        for v in _list(spec.get("volumes"))
        if _map(v).get("hostPath") is not None
    ]
    if not names:
        return None
    return Violation(
        "hostPath volumes", f"{_pluralize('volume', 'volumes', len(names))} {_join_quote(names)}"
    )


def _host_ports(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_hostPorts.go: no hostPort; the ports are listed sorted as strings, as upstream."""
    bad_containers: list[str] = []
    ports: set[str] = set()
    for container in _containers(spec):
        valid = True
        for port in _list(container.get("ports")):
            host_port = _map(port).get("hostPort") or 0
            if host_port != 0:
                valid = False
                ports.add(str(int(host_port)))
        if not valid:
            bad_containers.append(_name(container))
    if not bad_containers:
        return None
    return Violation(
        "hostPort",
        f"{_containers_phrase(bad_containers)} "
        f"{_pluralize('uses', 'use', len(bad_containers))} "
        f"{_pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
    )


def _handler_hosts(handler: Any) -> list[str]:
    """The non-empty `host` of a probe's or lifecycle handler's httpGet and tcpSocket."""
    hosts = []
    for action in ("httpGet", "tcpSocket"):
        host = _str(_map(_map(handler).get(action)).get("host"))
        if host:
            hosts.append(host)
    return hosts


def _host_probes_and_lifecycle(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_hostProbesAndhostLifecycle.go (v1.34+): probes and lifecycle handlers must not
    name a host; containers and hosts are listed sorted and de-duplicated."""
    bad_containers: set[str] = set()
    hosts: set[str] = set()
    for container in _containers(spec):
        lifecycle = _map(container.get("lifecycle"))
        for handler in (
            container.get("livenessProbe"),
            container.get("readinessProbe"),
            container.get("startupProbe"),
            lifecycle.get("postStart"),
            lifecycle.get("preStop"),
        ):
            found = _handler_hosts(handler)
            if found:
                bad_containers.add(_name(container))
                hosts.update(found)
    if not bad_containers:
        return None
    return Violation(
        "probe or lifecycle host",
        f"{_containers_phrase(sorted(bad_containers))} "
        f"{_pluralize('uses', 'use', len(bad_containers))} "
        f"{_pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
        f"{_join_quote(sorted(hosts))}",
    )


def _privileged(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_privileged.go: no privileged containers."""
    bad = [_name(c) for c in _containers(spec) if _is_true(_map(_security(c)).get("privileged"))]
    if not bad:
        return None
    return Violation(
        "privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true"
    )


def _proc_mount_unconditional(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """procMount_1_0: securityContext.procMount unset or "Default" (restricted, since v1.35)."""
    bad_containers: list[str] = []
    types: set[str] = set()
    for container in _containers(spec):
        sc = _security(container)
        if sc is None or sc.get("procMount") is None:
            continue
        proc_mount = _str(sc["procMount"])
        if proc_mount != "Default":
            bad_containers.append(_name(container))
            types.add(proc_mount)
    if not bad_containers:
        return None
    return Violation(
        "procMount",
        f"{_containers_phrase(bad_containers)} must not set securityContext.procMount to "
        f"{_join_quote(sorted(types))}",
    )


def _proc_mount_baseline(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_procMount_baseline.go (v1.35+): any procMount in a user namespace."""
    if _in_user_namespace(spec):
        return None
    return _proc_mount_unconditional(metadata, spec)


# check_seLinuxOptions.go (v1.31+): the allowed SELinux types.
_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _se_linux_options(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_seLinuxOptions.go: a container type only, and never a user or a role."""
    bad_types: set[str] = set()
    set_user = False
    set_role = False

    def valid(options: JSONDict) -> bool:
        nonlocal set_user, set_role
        ok = True
        kind = _str(options.get("type"))
        if kind not in _SELINUX_TYPES:
            ok = False
            bad_types.add(kind)
        if _str(options.get("user")):
            ok = False
            set_user = True
        if _str(options.get("role")):
            ok = False
            set_role = True
        return ok

    bad_setters: list[str] = []
    pod_sc = _security(spec)
    pod_options = _map(pod_sc).get("seLinuxOptions")
    if pod_options is not None and not valid(_map(pod_options)):
        bad_setters.append("pod")
    bad_containers: list[str] = []
    for container in _containers(spec):
        options = _map(_security(container)).get("seLinuxOptions")
        if options is not None and not valid(_map(options)):
            bad_containers.append(_name(container))
    if bad_containers:
        bad_setters.append(_containers_phrase(bad_containers))
    if not bad_setters:
        return None
    bad_data = []
    if bad_types:
        bad_data.append(
            f"{_pluralize('type', 'types', len(bad_types))} {_join_quote(sorted(bad_types))}"
        )
    if set_user:
        bad_data.append("user may not be set")
    if set_role:
        bad_data.append("role may not be set")
    return Violation(
        "seLinuxOptions",
        f"{' and '.join(bad_setters)} set forbidden securityContext.seLinuxOptions: "
        f"{'; '.join(bad_data)}",
    )


_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _seccomp(spec: JSONDict, *, required: bool) -> Violation | None:
    """The seccompProfile field checks (v1.19+; the alpha annotations are no longer checked).

    Baseline forbids an explicit type other than RuntimeDefault/Localhost; restricted also
    requires one, on the pod or on every container."""
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    pod_set = False
    pod_sc = _security(spec)
    if pod_sc is not None and pod_sc.get("seccompProfile") is not None:
        kind = _str(_map(pod_sc["seccompProfile"]).get("type"))
        if kind not in _SECCOMP_TYPES:
            bad_setters.append("pod")
            bad_values.add(kind)
        else:
            pod_set = True
    explicit: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        sc = _security(container)
        if sc is not None and sc.get("seccompProfile") is not None:
            kind = _str(_map(sc["seccompProfile"]).get("type"))
            if kind not in _SECCOMP_TYPES:
                explicit.append(_name(container))
                bad_values.add(kind)
        elif not pod_set:
            implicit.append(_name(container))
    if explicit:
        bad_setters.append(_containers_phrase(explicit))
    if bad_setters:
        return Violation(
            "seccompProfile",
            f"{' and '.join(bad_setters)} must not set securityContext.seccompProfile.type to "
            f"{_join_quote(sorted(bad_values))}",
        )
    if required and implicit:
        return Violation(
            "seccompProfile",
            f"pod or {_containers_phrase(implicit)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"',
        )
    return None


def _seccomp_profile_baseline(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_seccompProfile_baseline.go (v1.19+): Unconfined (or an empty type) is forbidden."""
    return _seccomp(spec, required=False)


# check_sysctls.go (v1.37+): the namespaced, isolated sysctls.
_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)


def _sysctls(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_sysctls.go: only the safe sysctls; listed in spec order, repeats kept."""
    names = [_str(_map(s).get("name")) for s in _list(_map(_security(spec)).get("sysctls"))]
    forbidden = [n for n in names if n not in _SAFE_SYSCTLS]
    if not forbidden:
        return None
    return Violation("forbidden sysctls", ", ".join(forbidden))


def _windows_host_process(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_windowsHostProcess.go: no windowsOptions.hostProcess=true on pod or container."""
    bad_containers = [
        _name(c)
        for c in _containers(spec)
        if _is_true(_map(_map(_security(c)).get("windowsOptions")).get("hostProcess"))
    ]
    setters = []
    if _is_true(_map(_map(_security(spec)).get("windowsOptions")).get("hostProcess")):
        setters.append("pod")
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    if not setters:
        return None
    return Violation(
        "hostProcess",
        f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
    )


# --- restricted checks -------------------------------------------------------------------------


def _allow_privilege_escalation(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_allowPrivilegeEscalation.go (v1.25+): explicitly false; Windows pods exempt."""
    if _is_windows(spec):
        return None
    bad = [
        _name(c)
        for c in _containers(spec)
        if not _is_false(_map(_security(c)).get("allowPrivilegeEscalation"))
    ]
    if not bad:
        return None
    return Violation(
        "allowPrivilegeEscalation != false",
        f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def _capabilities_restricted(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_capabilities_restricted.go (v1.25+): drop ALL, add at most NET_BIND_SERVICE;
    Windows pods exempt."""
    if _is_windows(spec):
        return None
    missing_drop_all: list[str] = []
    adding_forbidden: list[str] = []
    forbidden: set[str] = set()
    for container in _containers(spec):
        sc = _security(container)
        if sc is None or sc.get("capabilities") is None:
            missing_drop_all.append(_name(container))
            continue
        capabilities = _map(sc["capabilities"])
        if "ALL" not in [_str(c) for c in _list(capabilities.get("drop"))]:
            missing_drop_all.append(_name(container))
        bad = [_str(c) for c in _list(capabilities.get("add")) if _str(c) != "NET_BIND_SERVICE"]
        if bad:
            forbidden.update(bad)
            adding_forbidden.append(_name(container))
    details = []
    if missing_drop_all:
        details.append(
            f"{_containers_phrase(missing_drop_all)} must set "
            'securityContext.capabilities.drop=["ALL"]'
        )
    if adding_forbidden:
        details.append(
            f"{_containers_phrase(adding_forbidden)} must not include "
            f"{_join_quote(sorted(forbidden))} in securityContext.capabilities.add"
        )
    if not details:
        return None
    return Violation("unrestricted capabilities", "; ".join(details))


# check_restrictedVolumes.go: the allowed inline volume sources, then the forbidden ones in
# upstream's order (the first one set names the volume's type).
_ALLOWED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_RESTRICTED_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def _restricted_volumes(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_restrictedVolumes.go: only configMap, csi, downwardAPI, emptyDir, ephemeral,
    image, persistentVolumeClaim, projected and secret volumes."""
    bad_volumes: list[str] = []
    bad_types: set[str] = set()
    for raw in _list(spec.get("volumes")):
        volume = _map(raw)
        if any(volume.get(k) is not None for k in _ALLOWED_VOLUME_SOURCES):
            continue
        bad_volumes.append(_str(volume.get("name")))
        kind = next((k for k in _RESTRICTED_VOLUME_SOURCES if volume.get(k) is not None), None)
        bad_types.add(kind or "unknown")
    if not bad_volumes:
        return None
    return Violation(
        "restricted volume types",
        f"{_pluralize('volume', 'volumes', len(bad_volumes))} {_join_quote(bad_volumes)} "
        f"{_pluralize('uses', 'use', len(bad_volumes))} "
        f"{_pluralize('restricted volume type', 'restricted volume types', len(bad_types))} "
        f"{_join_quote(sorted(bad_types))}",
    )


def _run_as_non_root(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_runAsNonRoot.go (v1.35+): runAsNonRoot=true on the pod or every container;
    any value in a user namespace (`hostUsers: false`)."""
    if _in_user_namespace(spec):
        return None
    bad_setters: list[str] = []
    pod_non_root = False
    pod_value = _map(_security(spec)).get("runAsNonRoot")
    if pod_value is not None:
        if not pod_value:
            bad_setters.append("pod")
        else:
            pod_non_root = True
    explicit: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        value = _map(_security(container)).get("runAsNonRoot")
        if value is not None:
            if not value:
                explicit.append(_name(container))
        elif not pod_non_root:
            implicit.append(_name(container))
    if explicit:
        bad_setters.append(_containers_phrase(explicit))
    if bad_setters:
        return Violation(
            "runAsNonRoot != true",
            f"{' and '.join(bad_setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return Violation(
            "runAsNonRoot != true",
            f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true",
        )
    return None


def _is_root(value: Any) -> bool:
    """A *int64 that is set to 0 (a JSON false is not a uid)."""
    return value is not None and not isinstance(value, bool) and value == 0


def _run_as_user(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_runAsUser.go (v1.35+): never runAsUser=0; any value in a user namespace."""
    if _in_user_namespace(spec):
        return None
    setters = []
    if _is_root(_map(_security(spec)).get("runAsUser")):
        setters.append("pod")
    bad = [_name(c) for c in _containers(spec) if _is_root(_map(_security(c)).get("runAsUser"))]
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return None
    return Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")


def _seccomp_profile_restricted(metadata: JSONDict, spec: JSONDict) -> Violation | None:
    """check_seccompProfile_restricted.go (v1.25+): RuntimeDefault or Localhost must be set;
    Windows pods exempt."""
    if _is_windows(spec):
        return None
    return _seccomp(spec, required=True)


# --- the registry (policy/registry.go) ---------------------------------------------------------

# Upstream's check IDs: each level's checks run sorted by ID, baseline before restricted.
_BASELINE_CHECKS: dict[str, CheckFn] = {
    "appArmorProfile": _app_armor_profile,
    "capabilities_baseline": _capabilities_baseline,
    "hostNamespaces": _host_namespaces,
    "hostPathVolumes": _host_path_volumes,
    "hostPorts": _host_ports,
    "hostProbesAndHostLifecycle": _host_probes_and_lifecycle,
    "privileged": _privileged,
    "procMount": _proc_mount_baseline,
    "seLinuxOptions": _se_linux_options,
    "seccompProfile_baseline": _seccomp_profile_baseline,
    "sysctls": _sysctls,
    "windowsHostProcess": _windows_host_process,
}
_RESTRICTED_CHECKS: dict[str, CheckFn] = {
    "allowPrivilegeEscalation": _allow_privilege_escalation,
    "capabilities_restricted": _capabilities_restricted,
    "procMount_restricted": _proc_mount_unconditional,
    "restrictedVolumes": _restricted_volumes,
    "runAsNonRoot": _run_as_non_root,
    "runAsUser": _run_as_user,
    "seccompProfile_restricted": _seccomp_profile_restricted,
}
# The baseline checks a restricted check replaces (its OverrideCheckIDs).
_OVERRIDDEN = frozenset(
    {"capabilities_baseline", "hostPathVolumes", "procMount", "seccompProfile_baseline"}
)

_BY_LEVEL: dict[str, tuple[CheckFn, ...]] = {
    "privileged": (),
    "baseline": tuple(_BASELINE_CHECKS[i] for i in sorted(_BASELINE_CHECKS)),
    "restricted": tuple(
        [_BASELINE_CHECKS[i] for i in sorted(_BASELINE_CHECKS) if i not in _OVERRIDDEN]
        + [_RESTRICTED_CHECKS[i] for i in sorted(_RESTRICTED_CHECKS)]
    ),
}


def check_pod(level: str, metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Violation]:
    """Every check of `level` (and the levels below it) at version latest, in upstream's order;
    empty when allowed. "privileged" allows everything.

    `metadata` and `spec` are a pod's (or a pod template's); null fields read as unset. An
    unknown level raises ValueError: parse labels with `namespace_policy`, which falls back
    as upstream does.
    """
    if level not in _BY_LEVEL:
        raise ValueError(f"unknown Pod Security level {level!r}")
    metadata = _map(metadata)
    spec = _map(spec)
    return [v for check in _BY_LEVEL[level] if (v := check(metadata, spec)) is not None]


def violation_text(
    level: str, version: str, violations: Sequence[Violation], *, would: bool = False
) -> str:
    """Upstream's aggregate message: `violates PodSecurity "L:V": reason (detail), reason`.

    `would=True` gives the warn/audit form (`would violate PodSecurity ...`). This is the part
    after `pods "x" is forbidden: ` (enforce) and the whole warning or audit annotation
    (warn/audit). Empty violations give "" (upstream builds no message for an allowed pod).
    """
    if not violations:
        return ""
    parts = []
    for violation in violations:
        part = violation.reason or _UNKNOWN_REASON
        if violation.detail:
            part += f" ({violation.detail})"
        parts.append(part)
    verb = "would violate" if would else "violates"
    return f"{verb} PodSecurity {_go_quote(f'{level}:{version}')}: {', '.join(parts)}"


# --- namespace labels (api/helpers.go: PolicyToEvaluate) ---------------------------------------

_DEFAULT = ("privileged", LATEST)


@dataclass(frozen=True)
class NamespacePolicy:
    """(level, version) per mode; unset labels leave upstream's default privileged:latest."""

    enforce: tuple[str, str] = _DEFAULT
    warn: tuple[str, str] = _DEFAULT
    audit: tuple[str, str] = _DEFAULT


_STRICTNESS = {"privileged": 0, "baseline": 1, "restricted": 2}


def _parse_version(value: str) -> str | None:
    """ParseVersion: "latest" or "v1.N" (no leading zeros; N must fit Go's int)."""
    if value == LATEST:
        return value
    match = _VERSION_RE.fullmatch(value)
    if match is None or len(match.group(1)) > 19 or int(match.group(1)) > _GO_MAX_INT:
        return None
    return value


def _parse(labels: Mapping[str, str]) -> tuple[NamespacePolicy, list[tuple[str, str, str]]]:
    """The policy and the (label, bad value, detail) errors, in upstream's order."""
    errors: list[tuple[str, str, str]] = []
    enforce, warn, audit = list(_DEFAULT), list(_DEFAULT), list(_DEFAULT)

    def level(key: str, target: list[str], fallback: str) -> bool:
        if key not in labels:
            return False
        value = labels[key]
        if value in _STRICTNESS:
            target[0] = value
            return True
        errors.append((key, value, _LEVEL_ERROR))
        target[0] = fallback
        return False

    def version(key: str, target: list[str]) -> None:
        if key not in labels:
            return
        parsed = _parse_version(labels[key])
        if parsed is None:
            errors.append((key, labels[key], _VERSION_ERROR))
            parsed = LATEST
        target[1] = parsed

    # An invalid enforce level is evaluated as restricted (fail closed); an invalid warn or
    # audit level as privileged (fail open); an invalid version as latest.
    has_enforce_level = level(ENFORCE_LABEL, enforce, "restricted")
    version(ENFORCE_VERSION_LABEL, enforce)
    level(AUDIT_LABEL, audit, "privileged")
    version(AUDIT_VERSION_LABEL, audit)
    has_warn_level = WARN_LABEL in labels
    level(WARN_LABEL, warn, "privileged")
    version(WARN_VERSION_LABEL, warn)
    # Warn defaults to a valid, explicitly set enforce level when that is stricter.
    if not has_warn_level and has_enforce_level and _STRICTNESS[enforce[0]] > _STRICTNESS[warn[0]]:
        warn[0] = enforce[0]
        if WARN_VERSION_LABEL not in labels:
            warn[1] = enforce[1]
    policy = NamespacePolicy(
        enforce=(enforce[0], enforce[1]), warn=(warn[0], warn[1]), audit=(audit[0], audit[1])
    )
    return policy, errors


def namespace_policy(labels: Mapping[str, str]) -> tuple[NamespacePolicy, list[str]]:
    """The namespace's policy from its pod-security.kubernetes.io labels, and upstream's error
    strings for invalid values.

    A valid policy is always returned. Upstream's fallbacks (api/helpers.go PolicyToEvaluate):
    an invalid enforce level is evaluated as "restricted"; an invalid warn or audit level as
    "privileged"; an invalid version as "latest". When `enforce` is set (validly) and stricter
    than `warn`, and no warn label is set, warn takes enforce's level (and its version, unless
    warn-version is set). Errors read as upstream's field errors, e.g.
    `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "x": must be one of
    privileged, baseline, restricted`; upstream records them on pods as the audit annotation
    `pod-security.kubernetes.io/error: Failed to parse policy: <errors>` (one error as is,
    several as `[e1, e2]`). A valid `v1.N` version is kept (messages name it) but `check_pod`
    evaluates every version as latest.
    """
    policy, errors = _parse(_map(labels))
    return policy, [
        f"metadata.labels[{key}]: Invalid value: {_go_quote(value)}: {detail}"
        for key, value, detail in errors
    ]


def label_errors(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label key, message) for each invalid pod-security label value.

    Upstream refuses, it does not merely warn (admission.go ValidateNamespace): creating a
    Namespace with any invalid value is a 422 Invalid, `Namespace "ns" is invalid:
    metadata.labels[<key>]: <message>` (several errors: `is invalid: [<e1>, <e2>]`), with one
    cause per error (field `metadata.labels[<key>]`, message as returned here, e.g.
    `Invalid value: "x": must be "latest" or "v1.x"`). An update is refused only when the new
    labels have errors and they differ from the old object's (invalid labels already stored
    are grandfathered); pods in such a namespace are still evaluated, with
    `namespace_policy`'s fallbacks.
    """
    _, errors = _parse(_map(labels))
    return [(key, f"Invalid value: {_go_quote(value)}: {detail}") for key, value, detail in errors]
