"""The apiserver's rules beyond the schemas: pure checks, the API server rejecting (and
storing nothing), and `recon validate` naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import InvalidError, NotFoundError
from reconciler.client.inprocess import InProcessClient
from reconciler.manifests.loader import load_paths
from reconciler.schema.manifest_validation import ManifestValidator
from reconciler.schema.semantics import spec_errors

JSONDict = dict[str, Any]


def deployment(**spec: Any) -> JSONDict:
    body: JSONDict = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": body,
    }


def messages(group: str, kind: str, obj: JSONDict) -> list[str]:
    return [f"{c.field}: {c.message}" for c in spec_errors(group, kind, obj)]


def test_a_valid_deployment_has_no_errors() -> None:
    assert messages("apps", "Deployment", deployment()) == []


def test_workload_selector_template_replicas_and_containers() -> None:
    wrong = deployment(selector={"matchLabels": {"app": "api"}})
    assert messages("apps", "Deployment", wrong) == [
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not '
        "match template `labels`"
    ]
    empty = deployment(selector={})
    assert messages("apps", "Deployment", empty) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
    ]
    negative = deployment(replicas=-1)
    assert messages("apps", "Deployment", negative) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]
    twice = deployment()
    twice["spec"]["template"]["spec"]["containers"].append({"name": "web", "image": "x"})
    assert messages("apps", "Deployment", twice) == [
        'spec.template.spec.containers[1].name: Duplicate value: "web"'
    ]
    never = deployment()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert messages("apps", "StatefulSet", never) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    ]


def test_deployment_strategy_rules() -> None:
    recreate = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert messages("apps", "Deployment", recreate) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'"
    ]
    frozen = deployment(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    assert messages("apps", "Deployment", frozen) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when '
        "`maxSurge` is 0"
    ]
    too_much = deployment(strategy={"rollingUpdate": {"maxSurge": "150%"}})
    assert messages("apps", "Deployment", too_much) == [
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "150%": must not be greater than 100%'
    ]


def test_jobs_must_not_restart_always() -> None:
    job = {
        "spec": {"template": {"spec": {"containers": [{"name": "a"}], "restartPolicy": "Always"}}}
    }
    assert messages("batch", "Job", job) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
        '"OnFailure", "Never"'
    ]
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}
    assert messages("batch", "CronJob", cron) == [
        "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "
        '"OnFailure", "Never"'
    ]
    ok = {"spec": {"template": {"spec": {"containers": [], "restartPolicy": "OnFailure"}}}}
    assert messages("batch", "Job", ok) == []
    with_policy = {
        "spec": {
            "podFailurePolicy": {"rules": []},
            "template": {"spec": {"containers": [], "restartPolicy": "OnFailure"}},
        }
    }
    assert messages("batch", "Job", with_policy) == [
        'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
        "supported when podFailurePolicy is specified"
    ]
    per_index = {"spec": {"backoffLimitPerIndex": 2, "template": ok["spec"]["template"]}}
    assert messages("batch", "Job", per_index) == [
        "spec.backoffLimitPerIndex: Invalid value: 2: requires indexed completion mode"
    ]
    ok["spec"]["completionMode"] = "Indexed"
    assert messages("batch", "Job", ok) == [
        "spec.completions: Required value: when completion mode is Indexed"
    ]


def test_a_jobs_manager_and_pod_replacement_policy() -> None:
    template = {"spec": {"containers": [], "restartPolicy": "Never"}}

    def job(**spec: Any) -> JSONDict:
        return {"spec": {**spec, "template": template}}

    assert messages("batch", "Job", job(managedBy="example.com/other")) == []
    assert messages("batch", "Job", job(managedBy="other")) == [
        'spec.managedBy: Invalid value: "other": must be a domain-prefixed path '
        '(such as "acme.io/foo")'
    ]
    assert messages("batch", "Job", job(managedBy="Example.com/x")) == [
        'spec.managedBy: Invalid value: "Example.com": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]
    assert messages("batch", "Job", job(managedBy="example.com/a b")) == [
        'spec.managedBy: Invalid value: "a b": Invalid path (regex used for validation is '
        "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"
    ]
    assert messages("batch", "Job", job(managedBy="example.com/" + "x" * 52)) == [
        "spec.managedBy: Too long: may not be more than 63 bytes"
    ]
    assert messages("batch", "Job", job(podReplacementPolicy="Failed")) == []
    assert messages("batch", "Job", job(podReplacementPolicy="Always")) == [
        'spec.podReplacementPolicy: Unsupported value: "Always": supported values: "Failed", '
        '"TerminatingOrFailed"'
    ]
    with_policy = job(podReplacementPolicy="TerminatingOrFailed", podFailurePolicy={"rules": []})
    assert messages("batch", "Job", with_policy) == [
        'spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: '
        '"Failed"'
    ]


def test_service_ports_and_external_name() -> None:
    service = {
        "spec": {
            "type": "ExternalName",
            "ports": [{"name": "a", "port": 80}, {"port": 80}, {"name": "a", "port": 81}],
        }
    }
    assert messages("", "Service", service) == [
        "spec.ports[1].name: Required value",
        'spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}',
        'spec.ports[2].name: Duplicate value: "a"',
        "spec.externalName: Required value",
    ]
    assert messages("", "Service", {"spec": {"ports": [{"port": 80}]}}) == []


def test_ingress_rules() -> None:
    ingress = {
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {"path": "/", "backend": {"service": {"name": "a", "port": {}}}},
                            {
                                "path": "api",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "a", "port": {"number": 80, "name": "x"}}
                                },
                            },
                            {"path": "/x", "pathType": "Exact", "backend": {}},
                        ]
                    }
                }
            ]
        }
    }
    assert messages("networking.k8s.io", "Ingress", ingress) == [
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
        'spec.rules[0].http.paths[0].backend.service.port: Invalid value: "": port name or '
        "number is required",
        'spec.rules[0].http.paths[1].path: Invalid value: "api": must be an absolute path',
        'spec.rules[0].http.paths[1].backend.service.port: Invalid value: {"name":"x",'
        '"number":80}: cannot set both port name & port number',
        'spec.rules[0].http.paths[2].backend: Invalid value: "": resource or service backend '
        "is required",
    ]
    assert messages("networking.k8s.io", "Ingress", {"spec": {}}) == [
        'spec: Invalid value: "": either `defaultBackend` or `rules` must be specified'
    ]


def test_pdb_and_hpa() -> None:
    both = {"spec": {"minAvailable": 1, "maxUnavailable": "10%"}}
    assert messages("policy", "PodDisruptionBudget", both) == [
        'spec: Invalid value: {"maxUnavailable":"10%","minAvailable":1}: minAvailable and '
        "maxUnavailable cannot be both set"
    ]
    bad = {"spec": {"minAvailable": "abc"}}
    (only,) = messages("policy", "PodDisruptionBudget", bad)
    assert only.startswith('spec.minAvailable: Invalid value: "abc": a valid percent string')
    hpa = {"spec": {"minReplicas": 5, "maxReplicas": 3}}
    assert messages("autoscaling", "HorizontalPodAutoscaler", hpa) == [
        "spec.minReplicas: Invalid value: 5: must be less than or equal to maxReplicas"
    ]
    assert messages("autoscaling", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 0}}) == [
        "spec.maxReplicas: Invalid value: 0: must be greater than or equal to 1"
    ]


def _pod(**spec: Any) -> JSONDict:
    body: JSONDict = {"containers": [{"name": "c", "image": "busybox"}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": body}


def test_host_network_ports_must_be_the_container_ports() -> None:
    ports = [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]
    pod = _pod(hostNetwork=True, containers=[{"name": "c", "image": "x", "ports": ports}])
    assert messages("", "Pod", pod) == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` "
        "when `hostNetwork` is true"
    ]
    pod["spec"]["hostNetwork"] = False
    assert messages("", "Pod", pod) == []
    templated = deployment()
    templated["spec"]["template"]["spec"].update(pod["spec"], hostNetwork=True)
    assert messages("apps", "Deployment", templated) == [
        "spec.template.spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match "
        "`containerPort` when `hostNetwork` is true"
    ]


def test_dns_config_rules() -> None:
    assert messages("", "Pod", _pod(dnsPolicy="None")) == [
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
    ]
    assert messages("", "Pod", _pod(dnsPolicy="None", dnsConfig={"searches": ["a"]})) == [
        "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver "
        "when `dnsPolicy` is None"
    ]
    good = {"nameservers": ["1.1.1.1"], "searches": ["a.b"], "options": [{"name": "ndots"}]}
    assert messages("", "Pod", _pod(dnsPolicy="None", dnsConfig=good)) == []
    bad = {
        "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "dns.example"],
        "searches": [f"s{i}.example" for i in range(33)],
        "options": [{"value": "2"}],
    }
    got = messages("", "Pod", _pod(dnsConfig=bad))
    assert got[0] == (
        'spec.dnsConfig.nameservers: Invalid value: ["1.1.1.1","2.2.2.2","3.3.3.3",'
        '"dns.example"]: must not have more than 3 nameservers'
    )
    assert got[1] == (
        'spec.dnsConfig.nameservers[3]: Invalid value: "dns.example": must be a valid IP '
        "address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    )
    assert got[2].startswith("spec.dnsConfig.searches: Invalid value: [")
    assert got[2].endswith("must not have more than 32 search paths")
    assert got[3:] == ["spec.dnsConfig.options[0]: Required value: Option.Name must not be empty"]
    long = {"searches": ["a" * 1000, "b" * 1000, "c" * 47]}
    assert messages("", "Pod", _pod(dnsConfig=long))[0].endswith(
        "must not have more than 2048 characters (including spaces) in the search list"
    )


async def test_a_host_network_pod_takes_its_container_ports_as_host_ports(
    tmp_path: Path,
) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    try:
        client = InProcessClient(server.service)
        ports = [{"containerPort": 9100}]
        pod = _pod(hostNetwork=True, containers=[{"name": "c", "image": "x", "ports": ports}])
        pod["metadata"]["namespace"] = "default"
        made = await client.create(pod)
        assert made["spec"]["containers"][0]["ports"] == [
            {"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}
        ]
        pod["metadata"]["name"] = "q"
        pod["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9101}]
        with pytest.raises(InvalidError, match="must match `containerPort`"):
            await client.create(pod)
        with pytest.raises(NotFoundError):
            await client.get("v1", "Pod", "q", "default")
    finally:
        await server.stop()


async def test_the_api_server_rejects_and_stores_nothing(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    try:
        client = InProcessClient(server.service)
        wrong = deployment(selector={"matchLabels": {"app": "api"}})
        wrong["metadata"]["namespace"] = "default"
        with pytest.raises(InvalidError) as rejected:
            await client.create(wrong)
        assert "`selector` does not match template `labels`" in str(rejected.value)
        with pytest.raises(NotFoundError):
            await client.get("apps/v1", "Deployment", "web", "default")
        good = deployment()
        good["metadata"]["namespace"] = "default"
        made = await client.create(good)
        made["spec"]["selector"] = {"matchLabels": {"app": "other"}}
        with pytest.raises(InvalidError):
            await client.update(made)
        # A metadata-only change of an object is not held to the spec rules again.
        stored = await client.get("apps/v1", "Deployment", "web", "default")
        stored["metadata"]["labels"] = {"team": "a"}
        await client.update(stored)
    finally:
        await server.stop()


def test_recon_validate_names_file_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        "apiVersion: batch/v1\n"
        "kind: Job\n"
        "metadata:\n"
        "  name: once\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      restartPolicy: Always\n"
        "      containers:\n"
        "        - name: a\n"
        "          image: busybox\n"
    )
    issues = ManifestValidator().validate(load_paths([manifest]).manifests)
    assert [(i.line, i.path, i.message) for i in issues] == [
        (
            8,
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"',
        )
    ]


def test_a_replication_controller_selector_must_match_its_template() -> None:
    rc: JSONDict = {
        "spec": {
            "selector": {"app": "web"},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        }
    }
    found = [(c.field, c.message) for c in spec_errors("", "ReplicationController", rc)]
    assert found == [
        (
            "spec.template.metadata.labels",
            'Invalid value: {"app":"api"}: `selector` does not match template `labels`',
        )
    ]
    rc["spec"]["template"]["metadata"]["labels"] = {"app": "web", "extra": "1"}
    assert spec_errors("", "ReplicationController", rc) == []
    assert [c.message for c in spec_errors("", "ReplicationController", {"spec": {}})] == [
        "Required value",
        "Required value",
    ]
