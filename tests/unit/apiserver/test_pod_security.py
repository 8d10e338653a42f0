"""Pod Security Standards: each check's verdicts and exact words, the aggregate message, and
the namespace labels, against upstream's k8s.io/pod-security-admission at version latest.

Expected strings are upstream's; the comment above each names the file they come from
(under staging/src/k8s.io/pod-security-admission/).
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apiserver.pod_security import (
    LEVELS,
    NamespacePolicy,
    Violation,
    check_pod,
    label_errors,
    namespace_policy,
    violation_text,
)

JSONDict = dict[str, Any]


def c(name: str, **fields: Any) -> JSONDict:
    """A container."""
    return {"name": name, "image": "busybox", **fields}


def sc(name: str, **security: Any) -> JSONDict:
    """A container with a securityContext."""
    return c(name, securityContext=security)


def restricted_c(name: str, **security: Any) -> JSONDict:
    """A container passing every restricted container check, with `security` on top."""
    base: JSONDict = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return sc(name, **{**base, **security})


def restricted_spec(*containers: JSONDict, **spec: Any) -> JSONDict:
    """A pod spec passing the restricted level (pod-level runAsNonRoot and seccomp)."""
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    pod_security.update(spec.pop("securityContext", {}))
    return {
        "containers": list(containers) or [restricted_c("c")],
        "securityContext": pod_security,
        **spec,
    }


def baseline(spec: JSONDict, metadata: JSONDict | None = None) -> list[Violation]:
    return check_pod("baseline", metadata or {}, spec)


def restricted(spec: JSONDict, metadata: JSONDict | None = None) -> list[Violation]:
    return check_pod("restricted", metadata or {}, spec)


# --- levels ------------------------------------------------------------------------------------


def test_levels_and_a_plain_pod() -> None:
    assert LEVELS == ("privileged", "baseline", "restricted")
    plain = {"containers": [c("c")]}
    assert baseline(plain) == []
    assert restricted(restricted_spec()) == []


def test_privileged_allows_everything() -> None:
    spec = {
        "hostNetwork": True,
        "containers": [sc("c", privileged=True, runAsUser=0)],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    assert check_pod("privileged", {}, spec) == []
    assert baseline(spec) != []


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError):
        check_pod("strict", {}, {"containers": []})


def test_null_fields_read_as_unset() -> None:
    spec = {
        "containers": [c("c", securityContext=None, ports=None, lifecycle=None)],
        "initContainers": None,
        "volumes": None,
        "securityContext": None,
    }
    assert baseline(spec) == []
    assert check_pod("baseline", None, spec) == []  # type: ignore[arg-type]


# --- baseline checks ---------------------------------------------------------------------------


def test_host_namespaces() -> None:
    # policy/check_hostNamespaces_test.go
    spec = {"hostNetwork": True, "hostPID": True, "hostIPC": True, "containers": [c("c")]}
    assert baseline(spec) == [
        Violation("host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true")
    ]
    assert baseline({"hostIPC": True, "containers": [c("c")]}) == [
        Violation("host namespaces", "hostIPC=true")
    ]
    allowed = {"hostNetwork": False, "hostPID": False, "hostIPC": False, "containers": [c("c")]}
    assert baseline(allowed) == []


def test_privileged_and_the_visit_order() -> None:
    # policy/check_privileged_test.go; policy/visitor.go: init, regular, ephemeral containers
    spec = {
        "containers": [sc("a", privileged=False), sc("x", privileged=True)],
        "initContainers": [sc("i", privileged=True)],
        "ephemeralContainers": [sc("e", privileged=True)],
    }
    assert baseline(spec) == [
        Violation(
            "privileged",
            'containers "i", "x", "e" must not set securityContext.privileged=true',
        )
    ]
    one = {"containers": [sc("d", privileged=True)]}
    assert baseline(one) == [
        Violation("privileged", 'container "d" must not set securityContext.privileged=true')
    ]
    assert baseline({"containers": [sc("a", privileged=False)]}) == []


def test_capabilities_baseline() -> None:
    # policy/check_capabilities_baseline_test.go
    spec = {
        "containers": [
            sc("a", capabilities={"add": ["FOO", "BAR"]}),
            sc("b", capabilities={"add": ["BAR", "BAZ"]}),
            sc("c", capabilities={"add": ["CHOWN"]}),
        ]
    }
    assert baseline(spec) == [
        Violation(
            "non-default capabilities",
            'containers "a", "b" must not include "BAR", "BAZ", "FOO" in '
            "securityContext.capabilities.add",
        )
    ]
    defaults = ["AUDIT_WRITE", "CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL"]
    assert baseline({"containers": [sc("a", capabilities={"add": defaults})]}) == []


def test_host_path_volumes() -> None:
    # policy/check_hostPathVolumes_test.go
    volumes = [
        {"name": "a", "hostPath": {"path": "/a"}},
        {"name": "b", "hostPath": {"path": "/b"}},
        {"name": "c", "emptyDir": {}},
    ]
    assert baseline({"containers": [c("c")], "volumes": volumes}) == [
        Violation("hostPath volumes", 'volumes "a", "b"')
    ]
    assert baseline({"containers": [c("c")], "volumes": volumes[:1]}) == [
        Violation("hostPath volumes", 'volume "a"')
    ]
    nfs = [{"name": "n", "nfs": {"server": "s", "path": "/"}}]
    assert baseline({"containers": [c("c")], "volumes": nfs}) == []


def test_host_ports() -> None:
    # policy/check_hostPorts_test.go
    one = {"containers": [c("a", ports=[{"containerPort": 80}]), c("b", ports=[{"hostPort": 20}])]}
    assert baseline(one) == [Violation("hostPort", 'container "b" uses hostPort 20')]
    many = {
        "containers": [
            c("a", ports=[{"containerPort": 80, "hostPort": 0}]),
            c("b", ports=[{"hostPort": 10}, {"hostPort": 20}]),
            c("c", ports=[{"hostPort": 20}, {"hostPort": 30}]),
        ]
    }
    assert baseline(many) == [Violation("hostPort", 'containers "b", "c" use hostPorts 10, 20, 30')]
    # the ports are a set of strings upstream, so they sort as strings
    strings = {
        "containers": [c("a", ports=[{"hostPort": 8080}, {"hostPort": 100}, {"hostPort": 20}])]
    }
    assert baseline(strings) == [
        Violation("hostPort", 'container "a" uses hostPorts 100, 20, 8080')
    ]
    assert baseline({"containers": [c("a", ports=[{"containerPort": 80}])]}) == []


def test_host_probes_and_lifecycle() -> None:
    # policy/check_hostProbesAndhostLifecycle_test.go
    spec = {
        "containers": [
            c(
                "a",
                livenessProbe={"httpGet": {"host": "localhost", "port": 80}},
                readinessProbe={"tcpSocket": {"host": "127.0.0.1", "port": 80}},
                startupProbe={"httpGet": {"host": "::1", "port": 80}},
            )
        ]
    }
    assert baseline(spec) == [
        Violation(
            "probe or lifecycle host",
            'container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost"',
        )
    ]
    two = {
        "containers": [
            c("invalid2", lifecycle={"preStop": {"httpGet": {"host": "b.com", "port": 80}}}),
            c("invalid1", lifecycle={"postStart": {"tcpSocket": {"host": "a.com", "port": 80}}}),
            c("valid", livenessProbe={"httpGet": {"host": "", "port": 80}}),
        ]
    }
    assert baseline(two) == [
        Violation(
            "probe or lifecycle host",
            'containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com"',
        )
    ]
    assert baseline({"containers": [c("a", livenessProbe={"httpGet": {"port": 80}})]}) == []


def test_app_armor_fields() -> None:
    # policy/check_appArmorProfile_test.go
    pod = {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [c("c")]}
    assert baseline(pod) == [
        Violation(
            "forbidden AppArmor profile", 'pod must not set AppArmor profile type to "Unconfined"'
        )
    ]
    container = {"containers": [sc("foo", appArmorProfile={"type": "Unconfined"})]}
    assert baseline(container) == [
        Violation(
            "forbidden AppArmor profile",
            'container "foo" must not set AppArmor profile type to "Unconfined"',
        )
    ]
    allowed = {
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [sc("a", appArmorProfile={"type": "Localhost", "localhostProfile": "p"})],
    }
    assert baseline(allowed) == []


def test_app_armor_annotations() -> None:
    # policy/check_appArmorProfile_test.go ("multiple containers")
    prefix = "container.apparmor.security.beta.kubernetes.io/"
    metadata = {
        "annotations": {
            prefix: "bogus",
            prefix + "a": "",
            prefix + "b": "runtime/default",
            prefix + "c": "localhost/",
            prefix + "d": "localhost/foo",
            prefix + "e": "unconfined",
            prefix + "f": "unknown",
            "other": "unconfined",
        }
    }
    assert baseline({"containers": [c("a")]}, metadata) == [
        Violation(
            "forbidden AppArmor profiles",
            "annotations must not set AppArmor profile type to "
            f'"{prefix}="bogus"", "{prefix}e="unconfined"", "{prefix}f="unknown""',
        )
    ]
    # all setters together; the annotation value is quoted as Go's %q
    spec = {
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
        "containers": [sc("c", appArmorProfile={"type": "Unconfined"})],
    }
    metadata = {"annotations": {prefix + "c": 'un"confined'}}
    assert baseline(spec, metadata) == [
        Violation(
            "forbidden AppArmor profiles",
            'pod and container "c" and annotation must not set AppArmor profile type to '
            f'"Unconfined", "{prefix}c="un\\"confined""',
        )
    ]


def test_se_linux_options() -> None:
    # policy/check_seLinuxOptions_test.go
    spec = {
        "securityContext": {"seLinuxOptions": {"type": "foo", "user": "u", "role": "r"}},
        "containers": [
            sc("d", seLinuxOptions={"type": "container_t"}),
            sc("e", seLinuxOptions={"type": "bar"}),
            sc("f", seLinuxOptions={"user": "u"}),
            sc("g", seLinuxOptions={"role": "r"}),
        ],
    }
    assert baseline(spec) == [
        Violation(
            "seLinuxOptions",
            'pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: '
            'types "bar", "foo"; user may not be set; role may not be set',
        )
    ]
    bad_type = {"securityContext": {"seLinuxOptions": {"type": "bad"}}, "containers": [c("c")]}
    assert baseline(bad_type) == [
        Violation("seLinuxOptions", 'pod set forbidden securityContext.seLinuxOptions: type "bad"')
    ]
    allowed = {
        "securityContext": {"seLinuxOptions": {"level": "s0:c1", "type": "container_engine_t"}},
        "containers": [
            sc("a", seLinuxOptions={"type": "container_init_t"}),
            sc("b", seLinuxOptions={"type": "container_kvm_t"}),
            sc("c", seLinuxOptions={}),
        ],
    }
    assert baseline(allowed) == []


def test_proc_mount() -> None:
    # policy/check_procMount_baseline_test.go, policy/check_procMount_restricted_test.go
    spec = {
        "containers": [
            c("a"),
            sc("b", procMount="Default"),
            sc("d", procMount="Unmasked"),
            sc("e", procMount="other"),
        ]
    }
    expected = Violation(
        "procMount",
        'containers "d", "e" must not set securityContext.procMount to "Unmasked", "other"',
    )
    assert baseline(spec) == [expected]
    # a user namespace relaxes baseline (v1.35+) but not restricted, which overrides it
    assert baseline({**spec, "hostUsers": False}) == []
    assert baseline({**spec, "hostUsers": True}) == [expected]
    in_userns = restricted_spec(
        restricted_c("d", procMount="Unmasked"), restricted_c("e", procMount="other")
    )
    assert restricted({**in_userns, "hostUsers": False}) == [expected]
    assert baseline({"containers": [sc("b", procMount="Default")]}) == []


def test_seccomp_baseline() -> None:
    # policy/check_seccompProfile_baseline_test.go (the v1.19+ field check)
    spec = {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [
            sc("a", seccompProfile={"type": "RuntimeDefault"}),
            sc("b"),
            sc("c", seccompProfile={"type": "Unconfined"}),
            sc("d", seccompProfile={"type": "Unconfined"}),
        ],
    }
    assert baseline(spec) == [
        Violation(
            "seccompProfile",
            'pod and containers "c", "d" must not set securityContext.seccompProfile.type to '
            '"Unconfined"',
        )
    ]
    assert baseline({"containers": [sc("c", seccompProfile={"type": "Unconfined"})]}) == [
        Violation(
            "seccompProfile",
            'container "c" must not set securityContext.seccompProfile.type to "Unconfined"',
        )
    ]
    allowed = {
        "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}},
        "containers": [c("a")],
    }
    assert baseline(allowed) == []
    # the alpha annotations are only checked before v1.19, so not at latest
    annotations = {
        "annotations": {
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
        }
    }
    assert baseline({"containers": [c("a")]}, annotations) == []


def test_sysctls() -> None:
    # policy/check_sysctls_test.go; names keep the spec's order
    spec = {
        "securityContext": {
            "sysctls": [
                {"name": "a", "value": "1"},
                {"name": "kernel.shm_rmid_forced", "value": "1"},
                {"name": "b", "value": "1"},
            ]
        },
        "containers": [c("c")],
    }
    assert baseline(spec) == [Violation("forbidden sysctls", "a, b")]
    safe = [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    ]
    allowed = {
        "securityContext": {"sysctls": [{"name": n, "value": "1"} for n in safe]},
        "containers": [c("c")],
    }
    assert baseline(allowed) == []


def test_windows_host_process() -> None:
    # policy/check_windowsHostProcess_test.go
    spec = {
        "securityContext": {"windowsOptions": {"hostProcess": True}},
        "containers": [
            sc("d", windowsOptions={"hostProcess": False}),
            sc("e", windowsOptions={"hostProcess": True}),
            sc("f", windowsOptions={"hostProcess": True}),
        ],
    }
    assert baseline(spec) == [
        Violation(
            "hostProcess",
            'pod and containers "e", "f" must not set '
            "securityContext.windowsOptions.hostProcess=true",
        )
    ]
    allowed = {
        "securityContext": {"windowsOptions": {"hostProcess": False}},
        "containers": [sc("a", windowsOptions={"runAsUserName": "x"})],
    }
    assert baseline(allowed) == []


# --- restricted checks -------------------------------------------------------------------------


def test_restricted_volumes() -> None:
    # policy/check_restrictedVolumes_test.go
    allowed = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    forbidden = [
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
    ]
    volumes = [{"name": f"a{i}", kind: {}} for i, kind in enumerate(allowed, 1)]
    volumes += [{"name": f"b{i}", kind: {}} for i, kind in enumerate(forbidden, 1)]
    volumes.append({"name": "c1"})
    names = ", ".join(f'"b{i}"' for i in range(1, 22))
    assert restricted(restricted_spec(volumes=volumes)) == [
        Violation(
            "restricted volume types",
            f'volumes {names}, "c1" use restricted volume types '
            '"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", '
            '"flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "hostPath", '
            '"iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", '
            '"scaleIO", "storageos", "unknown", "vsphereVolume"',
        )
    ]
    # it replaces baseline's hostPath check
    host_path = [{"name": "h", "hostPath": {"path": "/"}}]
    assert restricted(restricted_spec(volumes=host_path)) == [
        Violation("restricted volume types", 'volume "h" uses restricted volume type "hostPath"')
    ]
    assert restricted(restricted_spec(volumes=volumes[:9])) == []


def test_allow_privilege_escalation() -> None:
    # policy/check_allowPrivilegeEscalation_test.go
    spec = restricted_spec(
        restricted_c("a", allowPrivilegeEscalation=None),
        restricted_c("b", allowPrivilegeEscalation=True),
        sc("c", capabilities={"drop": ["ALL"]}),
        restricted_c("d"),
    )
    assert restricted(spec) == [
        Violation(
            "allowPrivilegeEscalation != false",
            'containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false',
        )
    ]
    # v1.25+: windows pods are exempt
    windows = {"os": {"name": "windows"}, "containers": [c("a")]}
    assert [v.reason for v in restricted(windows)] == ["runAsNonRoot != true"]


def test_capabilities_restricted() -> None:
    # policy/check_capabilities_restricted_test.go
    spec = restricted_spec(
        sc("a", allowPrivilegeEscalation=False, capabilities={"add": ["FOO", "BAR"]}),
        sc("b", allowPrivilegeEscalation=False, capabilities={"add": ["BAR", "BAZ"]}),
        sc(
            "c",
            allowPrivilegeEscalation=False,
            capabilities={"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]},
        ),
    )
    assert restricted(spec) == [
        Violation(
            "unrestricted capabilities",
            'containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; '
            'containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in '
            "securityContext.capabilities.add",
        )
    ]
    no_context = restricted_spec(c("a"))
    assert Violation(
        "unrestricted capabilities",
        'container "a" must set securityContext.capabilities.drop=["ALL"]',
    ) in restricted(no_context)
    bind = restricted_c("a", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    assert restricted(restricted_spec(bind)) == []


def test_run_as_non_root() -> None:
    # policy/check_runAsNonRoot_test.go
    implicit = restricted_spec(securityContext={"runAsNonRoot": None})
    assert restricted(implicit) == [
        Violation(
            "runAsNonRoot != true",
            'pod or container "c" must set securityContext.runAsNonRoot=true',
        )
    ]
    pod_false = restricted_spec(securityContext={"runAsNonRoot": False})
    assert restricted(pod_false) == [
        Violation("runAsNonRoot != true", "pod must not set securityContext.runAsNonRoot=false")
    ]
    containers_false = restricted_spec(
        restricted_c("a"),
        restricted_c("b", runAsNonRoot=True),
        restricted_c("c", runAsNonRoot=False),
        restricted_c("d", runAsNonRoot=False),
    )
    assert restricted(containers_false) == [
        Violation(
            "runAsNonRoot != true",
            'containers "c", "d" must not set securityContext.runAsNonRoot=false',
        )
    ]
    per_container = restricted_spec(
        restricted_c("a"),
        restricted_c("b"),
        restricted_c("c", runAsNonRoot=True),
        securityContext={"runAsNonRoot": None},
    )
    assert restricted(per_container) == [
        Violation(
            "runAsNonRoot != true",
            'pod or containers "a", "b" must set securityContext.runAsNonRoot=true',
        )
    ]
    # v1.35+: any value in a user namespace
    assert restricted({**pod_false, "hostUsers": False}) == []


def test_run_as_user() -> None:
    # policy/check_runAsUser_test.go
    pod_root = restricted_spec(securityContext={"runAsUser": 0})
    assert restricted(pod_root) == [Violation("runAsUser=0", "pod must not set runAsUser=0")]
    containers_root = restricted_spec(
        restricted_c("a", runAsUser=1000),
        restricted_c("b"),
        restricted_c("c", runAsUser=0),
        restricted_c("d", runAsUser=0),
        securityContext={"runAsUser": 0},
    )
    assert restricted(containers_root) == [
        Violation("runAsUser=0", 'pod and containers "c", "d" must not set runAsUser=0')
    ]
    assert restricted(restricted_spec(securityContext={"runAsUser": 1000})) == []
    assert restricted({**pod_root, "hostUsers": False}) == []


def test_seccomp_restricted() -> None:
    # policy/check_seccompProfile_restricted_test.go
    unset = restricted_spec(securityContext={"seccompProfile": None})
    assert restricted(unset) == [
        Violation(
            "seccompProfile",
            'pod or container "c" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost"',
        )
    ]
    unconfined = restricted_spec(securityContext={"seccompProfile": {"type": "Unconfined"}})
    assert restricted(unconfined) == [
        Violation(
            "seccompProfile",
            'pod must not set securityContext.seccompProfile.type to "Unconfined"',
        )
    ]
    # explicit bad values win over containers that set nothing
    mixed = restricted_spec(
        restricted_c("a"),
        restricted_c("b", seccompProfile={"type": "Localhost"}),
        restricted_c("c", seccompProfile={"type": "Unconfined"}),
        restricted_c("d", seccompProfile={"type": "Unconfined"}),
        securityContext={"seccompProfile": None},
    )
    assert restricted(mixed) == [
        Violation(
            "seccompProfile",
            'containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined"',
        )
    ]
    per_container = restricted_spec(
        restricted_c("a", seccompProfile={"type": "RuntimeDefault"}),
        securityContext={"seccompProfile": None},
    )
    assert restricted(per_container) == []


# --- order and the aggregate message -----------------------------------------------------------


NGINX: JSONDict = {"containers": [{"name": "nginx", "image": "nginx"}]}


def test_a_plain_nginx_pod_at_restricted() -> None:
    # admission/admission.go EvaluatePod; policy/checks.go ForbiddenDetail
    violations = restricted(NGINX)
    details = (
        'allowPrivilegeEscalation != false (container "nginx" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "nginx" must set '
        'securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "nginx" must set '
        "securityContext.runAsNonRoot=true), "
        'seccompProfile (pod or container "nginx" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert violation_text("restricted", "latest", violations) == (
        f'violates PodSecurity "restricted:latest": {details}'
    )
    assert violation_text("restricted", "v1.30", violations, would=True) == (
        f'would violate PodSecurity "restricted:v1.30": {details}'
    )
    assert violation_text("baseline", "latest", baseline(NGINX)) == ""


def test_violation_text_without_details() -> None:
    # policy/checks.go: an empty detail drops the parentheses; an empty reason is replaced
    violations = [Violation("host ports", ""), Violation("", "x")]
    assert violation_text("baseline", "latest", violations) == (
        'violates PodSecurity "baseline:latest": host ports, unknown forbidden reason (x)'
    )


def test_checks_run_sorted_by_upstream_check_id() -> None:
    # policy/registry.go: baseline IDs sorted, then restricted IDs sorted; overridden baseline
    # checks (capabilities, hostPath, procMount, seccomp) are left out of restricted
    spec = {
        "hostNetwork": True,
        "securityContext": {
            "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
            "seLinuxOptions": {"user": "u"},
            "windowsOptions": {"hostProcess": True},
            "appArmorProfile": {"type": "Unconfined"},
            "seccompProfile": {"type": "Unconfined"},
            "runAsUser": 0,
            "runAsNonRoot": False,
        },
        "containers": [
            sc("c", privileged=True, procMount="Unmasked", capabilities={"add": ["SYS_ADMIN"]}),
            c("p", ports=[{"hostPort": 80}], livenessProbe={"httpGet": {"host": "h"}}),
        ],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    assert [v.reason for v in baseline(spec)] == [
        "forbidden AppArmor profile",  # appArmorProfile
        "non-default capabilities",  # capabilities_baseline
        "host namespaces",  # hostNamespaces
        "hostPath volumes",  # hostPathVolumes
        "hostPort",  # hostPorts
        "probe or lifecycle host",  # hostProbesAndHostLifecycle
        "privileged",  # privileged
        "procMount",  # procMount
        "seLinuxOptions",  # seLinuxOptions
        "seccompProfile",  # seccompProfile_baseline
        "forbidden sysctls",  # sysctls
        "hostProcess",  # windowsHostProcess
    ]
    assert [v.reason for v in restricted(spec)] == [
        "forbidden AppArmor profile",
        "host namespaces",
        "hostPort",
        "probe or lifecycle host",
        "privileged",
        "seLinuxOptions",
        "forbidden sysctls",
        "hostProcess",
        "allowPrivilegeEscalation != false",  # allowPrivilegeEscalation
        "unrestricted capabilities",  # capabilities_restricted
        "procMount",  # procMount_restricted
        "restricted volume types",  # restrictedVolumes
        "runAsNonRoot != true",  # runAsNonRoot
        "runAsUser=0",  # runAsUser
        "seccompProfile",  # seccompProfile_restricted
    ]


# --- namespace labels --------------------------------------------------------------------------

ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
WARN = "pod-security.kubernetes.io/warn"
WARN_VERSION = "pod-security.kubernetes.io/warn-version"
AUDIT = "pod-security.kubernetes.io/audit"
AUDIT_VERSION = "pod-security.kubernetes.io/audit-version"

LEVEL_ERROR = "must be one of privileged, baseline, restricted"  # api/helpers.go ParseLevel
VERSION_ERROR = 'must be "latest" or "v1.x"'  # api/helpers.go ParseVersion


def test_namespace_policy_defaults_to_privileged_latest() -> None:
    # admission/api/v1/defaults.go
    default = ("privileged", "latest")
    assert namespace_policy({}) == (NamespacePolicy(default, default, default), [])
    assert namespace_policy({"team": "a"}) == (NamespacePolicy(), [])


def test_namespace_policy_reads_each_mode() -> None:
    labels = {
        ENFORCE: "baseline",
        ENFORCE_VERSION: "v1.30",
        WARN: "restricted",
        WARN_VERSION: "latest",
        AUDIT: "restricted",
        AUDIT_VERSION: "v1.0",
    }
    assert namespace_policy(labels) == (
        NamespacePolicy(
            enforce=("baseline", "v1.30"),
            warn=("restricted", "latest"),
            audit=("restricted", "v1.0"),
        ),
        [],
    )
    assert label_errors(labels) == []


def test_warn_follows_a_stricter_enforce() -> None:
    # api/helpers.go PolicyToEvaluate: warn defaults to enforce when enforce is stricter
    policy, _ = namespace_policy({ENFORCE: "restricted", ENFORCE_VERSION: "v1.29"})
    assert policy.warn == ("restricted", "v1.29")
    assert policy.audit == ("privileged", "latest")
    policy, _ = namespace_policy({ENFORCE: "baseline", WARN_VERSION: "v1.20"})
    assert policy.warn == ("baseline", "v1.20")
    policy, _ = namespace_policy({ENFORCE: "restricted", WARN: "privileged"})
    assert policy.warn == ("privileged", "latest")


def test_invalid_labels_fall_back_as_upstream() -> None:
    # api/helpers.go: enforce fails closed (restricted), warn and audit fail open
    # (privileged), versions fall back to latest; errors are field.Invalid errors
    labels = {
        ENFORCE: "strict",
        ENFORCE_VERSION: "v2.0",
        AUDIT: "Restricted",
        WARN: "",
        WARN_VERSION: "v1.05",
    }
    policy, errors = namespace_policy(labels)
    assert policy == NamespacePolicy(
        enforce=("restricted", "latest"),
        warn=("privileged", "latest"),
        audit=("privileged", "latest"),
    )
    assert errors == [
        f'metadata.labels[{ENFORCE}]: Invalid value: "strict": {LEVEL_ERROR}',
        f'metadata.labels[{ENFORCE_VERSION}]: Invalid value: "v2.0": {VERSION_ERROR}',
        f'metadata.labels[{AUDIT}]: Invalid value: "Restricted": {LEVEL_ERROR}',
        f'metadata.labels[{WARN}]: Invalid value: "": {LEVEL_ERROR}',
        f'metadata.labels[{WARN_VERSION}]: Invalid value: "v1.05": {VERSION_ERROR}',
    ]
    assert label_errors(labels) == [
        (ENFORCE, f'Invalid value: "strict": {LEVEL_ERROR}'),
        (ENFORCE_VERSION, f'Invalid value: "v2.0": {VERSION_ERROR}'),
        (AUDIT, f'Invalid value: "Restricted": {LEVEL_ERROR}'),
        (WARN, f'Invalid value: "": {LEVEL_ERROR}'),
        (WARN_VERSION, f'Invalid value: "v1.05": {VERSION_ERROR}'),
    ]


def test_an_invalid_enforce_level_does_not_raise_warn() -> None:
    # api/helpers.go: hasEnforceLevel is false on a parse error, so warn keeps its default
    policy, errors = namespace_policy({ENFORCE: "unknown"})
    assert policy.enforce == ("restricted", "latest")
    assert policy.warn == ("privileged", "latest")
    assert label_errors({ENFORCE: "unknown"}) == [
        (ENFORCE, f'Invalid value: "unknown": {LEVEL_ERROR}')
    ]
    assert len(errors) == 1


@pytest.mark.parametrize("version", ["latest", "v1.0", "v1.9", "v1.35", "v1.100"])
def test_valid_versions(version: str) -> None:
    assert label_errors({ENFORCE_VERSION: version}) == []


@pytest.mark.parametrize(
    "version",
    ["", "Latest", "v1", "1.30", "v1.", "v1.01", "v2.0", "v1.30\n", "v1.99999999999999999999"],
)
def test_invalid_versions(version: str) -> None:
    policy, errors = namespace_policy({ENFORCE_VERSION: version})
    assert policy.enforce == ("privileged", "latest")
    assert len(errors) == 1
    assert label_errors({ENFORCE_VERSION: version})[0][1].endswith(VERSION_ERROR)


def test_label_errors_quote_values_as_go() -> None:
    # field.Error renders a string bad value with Go's %q
    assert label_errors({ENFORCE: 'a"b\n'}) == [
        (ENFORCE, f'Invalid value: "a\\"b\\n": {LEVEL_ERROR}')
    ]
