"""A Job's `podFailurePolicy`: what a failed pod means for the Job. Pure.

Batch users tell a bug from bad luck this way: exit code 42 (the program's own "invalid
input") fails the Job at once instead of retrying six times, a pod evicted or preempted
(`DisruptionTarget`) is retried without spending the back-off limit. As upstream's Job
controller, for each failed pod the rules are tried in order and the first that matches
decides:

- `FailJob`: the Job fails (condition Failed, reason `PodFailurePolicy`, upstream's message
  naming the container, exit code or condition and the rule's index) and its running pods
  are deleted;
- `Ignore`: the failure counts neither towards `backoffLimit` nor in `status.failed`; the
  pod is replaced;
- `Count` (and no rule matching): counted as any failure;
- `FailIndex`: for Indexed Jobs with `backoffLimitPerIndex`: the pod's index is given up at
  once (`job.py`).

A rule matches on `onExitCodes` (the named container, or any app container, terminated
with a code `In` the values, or a non-zero code `NotIn` them) or on `onPodConditions` (a
condition of that type with that status, True by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Decision", "decide"]

Action = Literal["FailJob", "Ignore", "Count", "FailIndex"]


@dataclass(frozen=True)
class Decision:
    action: Action
    message: str = ""
    """For FailJob: the Failed condition's message."""


def _exit_match(rule: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[str, int] | None:
    """(container, exit code) of the first terminated container the rule's `onExitCodes`
    matches."""
    spec = rule.get("onExitCodes") or {}
    name = spec.get("containerName")
    values = {int(v) for v in spec.get("values") or []}
    operator = spec.get("operator", "In")
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if name and status.get("name") != name:
            continue
        terminated = (status.get("state") or {}).get("terminated") or {}
        if "exitCode" not in terminated:
            continue
        code = int(terminated["exitCode"])
        if (operator == "In" and code in values) or (
            operator == "NotIn" and code != 0 and code not in values
        ):
            return str(status.get("name")), code
    return None


def _condition_match(rule: Mapping[str, Any], pod: Mapping[str, Any]) -> str | None:
    conditions = (pod.get("status") or {}).get("conditions") or []
    for wanted in rule.get("onPodConditions") or []:
        status = str(wanted.get("status") or "True")
        for condition in conditions:
            if condition.get("type") == wanted.get("type") and condition.get("status") == status:
                return str(wanted.get("type"))
    return None


def decide(policy: Mapping[str, Any] | None, pod: Mapping[str, Any]) -> Decision:
    """What the Job's policy makes of a failed `pod`."""
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    for index, rule in enumerate((policy or {}).get("rules") or []):
        action: Action = rule.get("action", "Count")
        if rule.get("onExitCodes") is not None:
            found = _exit_match(rule, pod)
            if found is None:
                continue
            container, code = found
            message = (
                f"Container {container} for pod {where} failed with exit code {code} "
                f"matching {action} rule at index {index}"
            )
        elif rule.get("onPodConditions") is not None:
            kind = _condition_match(rule, pod)
            if kind is None:
                continue
            message = f"Pod {where} has condition {kind} matching {action} rule at index {index}"
        else:
            continue
        return Decision(action, message if action == "FailJob" else "")
    return Decision("Count")
