"""CronJobs on `recon serve --runtime docker`, on the wall clock, driven by the real kubectl.

Two CronJobs run side by side for about three minutes (the wall time of the test):

- `tick`, `* * * * *`, Allow, a Job that exits at once: it must create its Job within 1 s of
  each minute (the Job's `creationTimestamp`, second precision, is the minute itself, and the
  CronJob's `lastScheduleTime` says which minute), three runs in a row, and keep exactly 3
  successful Jobs: a Job made by hand with `kubectl create job --from=cronjob/tick` before the
  first run counts as the fourth and oldest one, and goes once the third run has completed.
- `slow`, `* * * * *`, Forbid, a Job that sleeps past the next minute: the next minute's run
  does not start while it is active (a JobAlreadyActive event says so); it starts late, once
  the first Job has completed, as on Kubernetes without `startingDeadlineSeconds`.

A watch on Jobs, read by a thread of this test, also records when each Job reached a client
(this host's clock), to report the delay as the user sees it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

JSONDict = dict[str, Any]

IMAGE = "recon.local/busybox:latest"
SLOW_SECONDS = 75  # longer than a minute: the slow Job is still running at the next one


def _cronjob(namespace: str, name: str, policy: str, command: str) -> JSONDict:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "terminationGracePeriodSeconds": 1,
                            "containers": [
                                {
                                    "name": "run",
                                    "image": IMAGE,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["sh", "-c", command],
                                }
                            ],
                        }
                    },
                }
            },
        },
    }


@dataclass
class JobWatch:
    """A watch on the namespace's Jobs (the server's REST API, streamed): when each Job was
    first seen here, by this host's clock."""

    server: ReconServer
    namespace: str
    seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        path = f"/apis/batch/v1/namespaces/{self.namespace}/jobs?watch=1&timeoutSeconds=600"
        req = urllib.request.Request(self.server.url + path)
        req.add_header("Authorization", f"Bearer {self.server.token}")
        with urllib.request.urlopen(req, context=self.server.ssl_context(), timeout=600) as resp:
            for line in resp:
                if self._stop.is_set():
                    return
                if not line.strip():
                    continue
                arrived = time.time()
                event = json.loads(line)
                name = str(event["object"]["metadata"]["name"])
                if event["type"] == "ADDED":
                    self.seen.setdefault(name, arrived)

    def stop(self) -> None:
        self._stop.set()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _minute_of(job_name: str) -> datetime:
    """`<cronjob>-<minutes since the epoch>` -> the scheduled minute."""
    return datetime.fromtimestamp(int(job_name.rsplit("-", 1)[1]) * 60, tz=UTC)


def _complete(job: JSONDict) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


@pytest.mark.timeout(330)
def test_cronjobs_fire_on_the_minute_forbid_overlap_and_keep_three(
    docker_server: ReconServer,
) -> None:
    kubectl = Kubectl(docker_server)
    namespace = f"cron-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(namespace)
    kubectl.run("create", "namespace", namespace)
    watch = JobWatch(docker_server, namespace)
    watch.start()

    def jobs() -> list[JSONDict]:
        items: list[JSONDict] = kubectl.json("-n", namespace, "get", "jobs")["items"]
        return items

    def of(cronjob: str) -> list[JSONDict]:
        return sorted(
            (
                j
                for j in jobs()
                if any(r.get("name") == cronjob for r in j["metadata"].get("ownerReferences", []))
            ),
            key=lambda j: str(j["metadata"]["creationTimestamp"]),
        )

    try:
        # Not in the last seconds of a minute: the first run must not race the creation.
        while time.time() % 60 > 55:
            time.sleep(0.5)
        for manifest in (
            _cronjob(namespace, "tick", "Allow", "echo tick"),
            _cronjob(namespace, "slow", "Forbid", f"sleep {SLOW_SECONDS}"),
        ):
            kubectl.run("apply", "-f", "-", input=json.dumps(manifest))
        created = _time(
            kubectl.json("-n", namespace, "get", "cronjob", "tick")["metadata"]["creationTimestamp"]
        )
        first_minute = created.timestamp() // 60 * 60 + 60

        # A run by hand, before the first scheduled one: kubectl create job --from, wait.
        out = kubectl.run("-n", namespace, "create", "job", "--from=cronjob/tick", "tick-manual")
        assert "job.batch/tick-manual created" in out.stdout
        wait = ["wait", "--for=condition=complete", "job/tick-manual", "--timeout=90s"]
        kubectl.run("-n", namespace, *wait, timeout=100)

        # Three scheduled runs of tick, each completed; then the history holds exactly 3.
        minutes = [first_minute + 60 * i for i in range(3)]
        scheduled = [f"tick-{int(m // 60)}" for m in minutes]

        def three_runs_and_trimmed() -> list[str]:
            names = [j["metadata"]["name"] for j in of("tick") if _complete(j)]
            return names if names == scheduled else []

        wait_until(
            three_runs_and_trimmed,
            timeout=minutes[-1] - time.time() + 60,
            what=f"Jobs {scheduled} completed and tick-manual trimmed",
            interval=1,
        )
        tick = kubectl.json("-n", namespace, "get", "cronjob", "tick")
        slow_jobs = of("slow")
        slow = kubectl.json("-n", namespace, "get", "cronjob", "slow")
        events = kubectl.json(
            "-n", namespace, "get", "events", "--field-selector", "involvedObject.name=slow"
        )["items"]
    finally:
        watch.stop()

    # Within 1 s of each minute: created during the scheduled second (second precision).
    delays = []
    for name, minute in zip(scheduled, minutes, strict=True):
        job = next(j for j in jobs() if j["metadata"]["name"] == name)
        assert _time(job["metadata"]["creationTimestamp"]).timestamp() == minute, name
        assert _minute_of(name).timestamp() == minute
        delays.append(round(watch.seen.get(name, float("nan")) - minute, 3))
    print(f"\ntick Jobs seen by a watch {delays} s after their minute")
    assert tick["status"]["lastScheduleTime"] == _iso(minutes[-1])
    assert "lastSuccessfulTime" in tick["status"]
    # Exactly 3 successful Jobs, and nothing else of tick's left.
    assert [j["metadata"]["name"] for j in of("tick")] == scheduled

    # Forbid: the first slow run started on time; the next minute's run waited for it to end
    # (the runs never overlap) and started late, as the Kubernetes controller does.
    first_slow = f"slow-{int(minutes[0] // 60)}"
    assert slow_jobs[0]["metadata"]["name"] == first_slow
    assert _time(slow_jobs[0]["metadata"]["creationTimestamp"]).timestamp() == minutes[0]
    seen = watch.seen.get(first_slow, float("nan")) - minutes[0]
    print(f"slow Job {first_slow} seen by a watch {seen:.3f} s after its minute")
    assert any(e["reason"] == "JobAlreadyActive" for e in events), events
    for earlier, later in itertools.pairwise(slow_jobs):
        assert _complete(earlier), earlier
        finished = _time(earlier["status"]["completionTime"])
        assert _time(later["metadata"]["creationTimestamp"]) >= finished, (earlier, later)
    assert len(slow_jobs) >= 2, "the skipped run did not start once the first one ended"
    assert slow_jobs[1]["metadata"]["name"] == f"slow-{int(minutes[1] // 60)}"
    assert _time(slow_jobs[1]["metadata"]["creationTimestamp"]).timestamp() > minutes[1] + 10
    assert len([j for j in slow_jobs if not _complete(j)]) <= 1
    assert slow["status"]["lastScheduleTime"] == _iso(minutes[1])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
