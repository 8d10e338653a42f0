"""The HorizontalPodAutoscaler controller (autoscaling/v2): replicas follow resource usage.

Every HPA is reconciled when it appears or its spec changes, and then every 15 s (upstream's
--horizontal-pod-autoscaler-sync-period) on the injected clock. A reconcile does what
upstream's `reconcileAutoscaler` does, in order:

1. read the target's `scale` subresource (`spec.scaleTargetRef`: Deployment, ReplicaSet,
   StatefulSet, anything that serves /scale) -> AbleToScale (SucceededGetScale /
   FailedGetScale);
2. replicas 0 with minReplicas > 0: scaling is disabled (ScalingActive False,
   ScalingDisabled); outside [minReplicas, maxReplicas]: back inside at once;
3. otherwise the metrics propose (`hpa_evaluate`, `hpa_math`: pods from the scale's
   selector, PodMetrics from the injected `PodMetricsSource`), and the proposal is
   stabilized and rate-limited (`hpa_behavior`) -> ScalingActive, AbleToScale, ScalingLimited;
4. a new size is written through the scale subresource (SuccessfulRescale / FailedRescale);
5. the status (currentReplicas, desiredReplicas, lastScaleTime, currentMetrics, conditions,
   observedGeneration) is written once, at the end, only when it changed.

Recommendations and scale events live in memory per HPA (as upstream): the stabilization
window starts again, with the current size as its first recommendation, after a restart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, rfc3339
from reconciler.controllers.base import Result, enqueue_self, enqueue_unless_status_only
from reconciler.controllers.hpa_behavior import (
    History,
    Recommendation,
    behavior_from_spec,
    normalize_legacy,
    normalize_with_behavior,
    record_scale,
)
from reconciler.controllers.hpa_evaluate import (
    DEFAULT_METRICS,
    Condition,
    Evaluation,
    Event,
    evaluate,
)
from reconciler.controllers.hpa_metrics import PodMetricsSource
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import SelectorError, parse_label_selector

__all__ = ["SYNC_PERIOD", "HorizontalPodAutoscalerController"]

JSONDict = dict[str, Any]

SYNC_PERIOD = 15.0
"""--horizontal-pod-autoscaler-sync-period, in seconds."""

_NO_METRICS = "no metrics returned from resource metrics API"


@dataclass
class _Run:
    """One reconcile's results, written as the HPA's status and Events at the end."""

    hpa: JSONDict
    now: datetime
    conditions: list[JSONDict]
    status: JSONDict
    events: list[Event] = field(default_factory=list)

    def condition(self, cond: Condition) -> None:
        """Set a condition as upstream's `setCondition`: the transition time moves only
        when the status does."""
        for existing in self.conditions:
            if existing.get("type") == cond.type:
                break
        else:
            existing = {"type": cond.type}
            self.conditions.append(existing)
        if existing.get("status") != cond.status:
            existing["lastTransitionTime"] = rfc3339(self.now)
        existing.update(status=cond.status, reason=cond.reason, message=cond.message)

    def set_status(
        self, current: int, desired: int, metrics: list[JSONDict] | None, rescaled: bool
    ) -> None:
        status: JSONDict = {"currentReplicas": current, "desiredReplicas": desired}
        last = self.status.get("lastScaleTime")
        if rescaled:
            last = rfc3339(self.now)
        if last:
            status["lastScaleTime"] = last
        if metrics:
            status["currentMetrics"] = metrics
        self.status = status

    def final_status(self) -> JSONDict:
        """As upstream serialises it: desiredReplicas always (the schema requires it),
        currentReplicas unless 0."""
        out = {"desiredReplicas": 0, **self.status}
        if not out.get("currentReplicas"):
            out.pop("currentReplicas", None)
        if self.conditions:
            out["conditions"] = self.conditions
        generation = (self.hpa.get("metadata") or {}).get("generation")
        if generation is not None:
            out["observedGeneration"] = generation
        return out


def _target(hpa: JSONDict) -> tuple[str, str, str]:
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""), str(ref.get("name") or "")


class HorizontalPodAutoscalerController:
    name = "horizontalpodautoscaler"

    def __init__(
        self,
        client: Client,
        clock: Clock,
        metrics: PodMetricsSource | None = None,
        sync_period: float = SYNC_PERIOD,
    ) -> None:
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self.sync_period = sync_period
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.recorder = EventRecorder(client, clock, "horizontal-pod-autoscaler")
        self._history: dict[ObjKey, History] = {}
        self.hpas: Informer
        self.pods: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.hpas = factory.informer("autoscaling/v2", "HorizontalPodAutoscaler")
        self.pods = factory.informer("v1", "Pod")  # read on each sync; pod events wake nothing
        mine = enqueue_self(self.queue)
        self.hpas.add_handlers(Handlers(mine, enqueue_unless_status_only(self.queue), mine))

    async def reconcile(self, key: ObjKey) -> Result:
        hpa = self.hpas.get(*key)
        if hpa is None or (hpa.get("metadata") or {}).get("deletionTimestamp"):
            self._history.pop(key, None)
            return Result()
        status = copy.deepcopy(hpa.get("status") or {})
        run = _Run(hpa, self.clock.now(), list(status.pop("conditions", None) or []), status)
        original = copy.deepcopy(hpa.get("status") or {})
        try:
            await self._autoscale(key, run)
        finally:
            for event in run.events:
                self.recorder.record(hpa, event.type, event.reason, event.message)
            await self.recorder.flush()
        final = run.final_status()
        if final != original:
            try:
                await self.client.update({**hpa, "status": final}, subresource="status")
            except NotFoundError:
                return Result()
        return Result(requeue_after=self.sync_period)

    async def _get_scale(self, hpa: JSONDict, run: _Run) -> JSONDict | None:
        api_version, kind, name = _target(hpa)
        namespace = str(hpa["metadata"].get("namespace") or "default")
        problem = ""
        try:
            info = await self.client.resource(api_version, kind)
            if "scale" not in info.subresources:
                problem = (
                    f"spec.scaleTargetRef: {kind} {api_version} has no scale subresource; "
                    "an HPA scales kinds that serve /scale (Deployment, ReplicaSet, "
                    "StatefulSet, ReplicationController, custom resources with a scale "
                    "subresource)"
                )
            else:
                return await self.client.get_scale(api_version, kind, name, namespace)
        except NotFoundError as e:
            problem = f"spec.scaleTargetRef: {e.message}"
        except ClientError as e:
            problem = e.message
        run.events.append(Event("Warning", "FailedGetScale", problem))
        run.condition(
            Condition(
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {problem}",
            )
        )
        return None

    async def _autoscale(self, key: ObjKey, run: _Run) -> None:
        hpa = run.hpa
        spec = hpa.get("spec") or {}
        scale = await self._get_scale(hpa, run)
        if scale is None:
            return
        run.condition(
            Condition(
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            )
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        history = self._history.get(key) or History((Recommendation(current, run.now),))
        minimum = spec.get("minReplicas")
        minimum = 1 if minimum is None else int(minimum)
        maximum = int(spec.get("maxReplicas") or 0)
        metrics: list[JSONDict] | None = None
        reason = ""
        rescale = True
        desired = 0
        if current == 0 and minimum != 0:
            rescale = False
            run.condition(
                Condition(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                )
            )
        elif current > maximum:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", maximum
        elif current < minimum:
            reason, desired = "Current number of replicas below Spec.MinReplicas", minimum
        else:
            found = await self._evaluate(hpa, scale, current, run)
            metrics = found.statuses
            if found.replicas is None:
                run.set_status(current, int(run.status.get("desiredReplicas") or 0), metrics, False)
                self._history[key] = history
                if found.error:
                    run.events.append(Event("Warning", "FailedComputeMetricsReplicas", found.error))
                return
            desired = max(found.replicas, 0)
            if desired > current:
                reason = f"{found.metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            behavior = behavior_from_spec(spec.get("behavior"))
            if behavior is None:
                normalized = normalize_legacy(history, current, desired, minimum, maximum, run.now)
            else:
                normalized = normalize_with_behavior(
                    history, behavior, current, desired, minimum, maximum, run.now
                )
            history = normalized.history
            run.condition(
                Condition("AbleToScale", "True", normalized.able_reason, normalized.able_message)
            )
            run.condition(
                Condition(
                    "ScalingLimited",
                    "True" if normalized.limited else "False",
                    normalized.limited_reason,
                    normalized.limited_message,
                )
            )
            desired = normalized.replicas
            rescale = desired != current
        self._history[key] = history
        if rescale:
            if not await self._rescale(hpa, scale, desired, reason, run):
                run.set_status(current, int(run.status.get("desiredReplicas") or 0), metrics, False)
                return
            behavior = behavior_from_spec(spec.get("behavior"))
            self._history[key] = record_scale(history, behavior, current, desired, run.now)
        else:
            desired = current
        run.set_status(current, desired, metrics, rescale)

    async def _evaluate(
        self, hpa: JSONDict, scale: JSONDict, current: int, run: _Run
    ) -> Evaluation:
        """Read pods and metrics for the scale's selector, and let the metrics propose."""
        spec = hpa.get("spec") or {}
        specs = list(spec.get("metrics") or DEFAULT_METRICS)
        namespace = str(hpa["metadata"].get("namespace") or "default")
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            run.events.append(Event("Warning", "SelectorRequired", "selector is required"))
            message = "the HPA target's scale is missing a selector"
            return self._invalid(
                run,
                Condition("ScalingActive", "False", "InvalidSelector", message),
                "selector is required",
            )
        try:
            selector = parse_label_selector(selector_text)
        except SelectorError as e:
            message = (
                f"couldn't convert selector into a corresponding internal selector object: {e}"
            )
            run.events.append(Event("Warning", "InvalidSelector", message))
            return self._invalid(
                run, Condition("ScalingActive", "False", "InvalidSelector", message), message
            )
        pods = self.pods.list(namespace, selector)
        items: list[JSONDict] | str = _NO_METRICS
        if self.metrics is not None and any(
            s.get("type") in ("Resource", "ContainerResource") for s in specs
        ):
            try:
                items = await self.metrics(namespace, selector_text) or _NO_METRICS
            except Exception as e:  # any failure of the source is a failure to get metrics
                items = f"unable to fetch metrics from resource metrics API: {e}"
        found = evaluate(specs, current, pods, items, run.now)
        run.events.extend(found.events)
        if found.condition is not None:
            run.condition(found.condition)
        return found

    @staticmethod
    def _invalid(run: _Run, condition: Condition, error: str) -> Evaluation:
        run.condition(condition)
        return Evaluation(None, "", [], condition, error)

    async def _rescale(
        self, hpa: JSONDict, scale: JSONDict, desired: int, reason: str, run: _Run
    ) -> bool:
        api_version, kind, name = _target(hpa)
        namespace = str(hpa["metadata"].get("namespace") or "default")
        wanted = {**scale, "spec": {**(scale.get("spec") or {}), "replicas": desired}}
        try:
            await self.client.update_scale(api_version, kind, name, wanted, namespace)
        except ClientError as e:
            run.events.append(
                Event(
                    "Warning",
                    "FailedRescale",
                    f"New size: {desired}; reason: {reason}; error: {e.message}",
                )
            )
            run.condition(
                Condition(
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    f"the HPA controller was unable to update the target scale: {e.message}",
                )
            )
            return False
        run.condition(
            Condition(
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
            )
        )
        run.events.append(
            Event("Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        )
        return True
