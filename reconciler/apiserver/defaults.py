"""Defaulting on write, as the Kubernetes apiserver does it before storing an object.

Users and tools rely on these: `kubectl get deploy -o yaml` shows `strategy.rollingUpdate`
at 25 %, a Pod without `restartPolicy` restarts Always, a Service port without
`targetPort` targets the same port. Controllers read the defaulted fields, and `kubectl diff`
compares against defaulted dry-run results, so defaulting happens in one place: here.
Pure functions; each mutates the fresh copy it is given.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from reconciler.limit_ranges import default_item

JSONDict = dict[str, Any]


def _container(c: JSONDict) -> None:
    image = str(c.get("image", ""))
    if "imagePullPolicy" not in c:
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_name)
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            http = probe.get("httpGet")
            if isinstance(http, dict):
                http.setdefault("path", "/")
                http.setdefault("scheme", "HTTP")


def pod_spec(spec: JSONDict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _container(c)
                if spec.get("hostNetwork") is True:
                    _host_network_ports(c)


def _host_network_ports(container: JSONDict) -> None:
    """On the host's network a container port is a host port (upstream's
    defaultHostNetworkPorts), so the scheduler counts it."""
    for port in container.get("ports") or []:
        if isinstance(port, dict) and not port.get("hostPort") and "containerPort" in port:
            port["hostPort"] = port["containerPort"]


def _template(obj: JSONDict) -> None:
    template = obj.get("spec", {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        if isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])


def pod(obj: JSONDict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    pod_spec(spec)
    # A pod (not a template) requests what it limits unless it says otherwise, as
    # upstream's SetDefaults_Pod: the scheduler and quotas count the requests.
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            resources = c.get("resources") if isinstance(c, dict) else None
            if not isinstance(resources, dict):
                continue
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = resources.setdefault("requests", {})
                if isinstance(requests, dict):
                    for name, value in limits.items():
                        requests.setdefault(name, value)


def _status_counts(obj: JSONDict, *fields: str) -> None:
    """Status counts a Kubernetes object always carries (its Go fields have no `omitempty`,
    so a new StatefulSet reads `status: {replicas: 0, availableReplicas: 0}`), and which its
    schema requires: without them a controller's first partial status write is invalid."""
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        for name in fields:
            status.setdefault(name, 0)


def deployment(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    _template(obj)


def replicaset(obj: JSONDict) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _template(obj)


def replication_controller(obj: JSONDict) -> None:
    """Upstream's SetDefaults_ReplicationController: the selector, and the RC's own labels,
    default to its template's labels (the RC of an old tutorial names no selector); one
    replica."""
    spec = obj.setdefault("spec", {})
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    _template(obj)


def statefulset(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    _template(obj)
    _status_counts(obj, "replicas", "availableReplicas")


def daemonset(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    _template(obj)
    _status_counts(
        obj,
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
    )


def job(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1  # neither given: one pod to completion
    spec.setdefault("parallelism", 1)  # parallelism alone: a work queue, completions unset
    # each index has its own limit: the Job's is then the largest int32, as upstream's
    spec.setdefault("backoffLimit", 6 if spec.get("backoffLimitPerIndex") is None else 2**31 - 1)
    # a podFailurePolicy judges failed pods: replacements wait until a pod failed
    spec.setdefault(
        "podReplacementPolicy",
        "TerminatingOrFailed" if spec.get("podFailurePolicy") is None else "Failed",
    )
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    _template(obj)


def job_selector(obj: JSONDict) -> None:
    """Jobs select their pods by the Job's uid, unless `manualSelector` says otherwise."""
    spec = obj.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    meta = obj.get("metadata") or {}
    labels = {
        "batch.kubernetes.io/controller-uid": meta.get("uid", ""),
        "batch.kubernetes.io/job-name": meta.get("name", ""),
        "controller-uid": meta.get("uid", ""),
        "job-name": meta.get("name", ""),
    }
    if "selector" not in spec:
        spec["selector"] = {
            "matchLabels": {"batch.kubernetes.io/controller-uid": meta.get("uid", "")}
        }
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}


def cronjob(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        job(job_template)


def service(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if "targetPort" not in port and "port" in port:
            port["targetPort"] = port["port"]
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    # Static defaults only; cluster IPs, node ports and IP families depend on what is
    # taken and on the previous version, so service_alloc.py sets them.
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        if isinstance(config, dict):
            config.setdefault("clientIP", {}).setdefault("timeoutSeconds", 10800)


def namespace(obj: JSONDict) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def secret(obj: JSONDict) -> None:
    """`stringData` is write-only convenience: it is merged into `data`, base64-encoded."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()


PVC_PROTECTION = "kubernetes.io/pvc-protection"


def pvc(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def hpa(obj: JSONDict) -> None:
    """autoscaling/v2's defaults: one replica at least, and 80 % CPU when no metric is set."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]


def limit_range(obj: JSONDict) -> None:
    for item in (obj.get("spec") or {}).get("limits") or []:
        if isinstance(item, dict):
            default_item(item)


def persistent_volume(obj: JSONDict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def storage_class(obj: JSONDict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def priority_class(obj: JSONDict) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


DEFAULTERS: dict[tuple[str, str], Callable[[JSONDict], None]] = {
    ("", "Pod"): pod,
    ("", "Service"): service,
    ("", "Namespace"): namespace,
    ("", "Secret"): secret,
    ("", "PersistentVolumeClaim"): pvc,
    ("apps", "Deployment"): deployment,
    ("apps", "ReplicaSet"): replicaset,
    ("", "ReplicationController"): replication_controller,
    ("apps", "StatefulSet"): statefulset,
    ("apps", "DaemonSet"): daemonset,
    ("batch", "Job"): job,
    ("batch", "CronJob"): cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa,
    ("scheduling.k8s.io", "PriorityClass"): priority_class,
    ("", "LimitRange"): limit_range,
    ("", "PersistentVolume"): persistent_volume,
    ("storage.k8s.io", "StorageClass"): storage_class,
}


def after_uid(group: str, kind: str, obj: JSONDict) -> None:
    """Defaults applied once, at creation (some need the object's uid)."""
    if (group, kind) == ("batch", "Job"):
        job_selector(obj)
    elif (group, kind) == ("", "PersistentVolumeClaim"):
        # The StorageObjectInUseProtection admission plugin's finalizer: the claim outlives
        # its deletion while a pod uses it (controllers/pvc_protection.py removes it).
        finalizers = obj.setdefault("metadata", {}).setdefault("finalizers", [])
        if PVC_PROTECTION not in finalizers:
            finalizers.append(PVC_PROTECTION)


def apply_defaults(group: str, kind: str, obj: JSONDict) -> None:
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)
