"""`kubectl logs`, `kubectl exec` and `kubectl cp`, the real client against `recon serve
--runtime docker`."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, require_kubectl
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"


def _pod(name: str, namespace: str, containers: str, restart: str = "Always") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
{containers}
"""


def _container(name: str, script: str) -> str:
    return f"""    - name: {name}
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", {script!r}]
"""


@pytest.fixture
def namespace(docker_server: ReconServer) -> str:
    name = f"io-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(name)
    Kubectl(docker_server).run("create", "namespace", name)
    return name


def test_logs_with_container_tail_since_timestamps_and_follow(
    docker_server: ReconServer, namespace: str
) -> None:
    kubectl = Kubectl(docker_server)
    talker = _container("talker", "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600")
    quiet = _container("quiet", "echo from quiet; exec sleep 3600")
    kubectl.run("apply", "-f", "-", input=_pod("chatty", namespace, talker + quiet))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/chatty", "--timeout=60s")

    def logs(*args: str) -> str:
        return kubectl.run("-n", namespace, "logs", "chatty", *args).stdout

    lines = "".join(f"line {i}\n" for i in range(1, 6))
    assert wait_until(lambda: logs("-c", "talker") == lines, 10, "five lines")
    assert logs("-c", "quiet") == "from quiet\n"
    assert logs("-c", "talker", "--tail=2") == "line 4\nline 5\n"
    assert logs("-c", "talker", "--since=1h") == lines
    stamped = logs("-c", "talker", "--timestamps").splitlines()
    assert len(stamped) == 5 and stamped[0].endswith(" line 1") and stamped[0][:4].isdigit()
    # No -c: kubectl picks the first container and says so.
    defaulted = kubectl.run("-n", namespace, "logs", "chatty")
    assert defaulted.stdout == lines and 'Defaulted container "talker"' in defaulted.stderr
    missing = kubectl.run("-n", namespace, "logs", "chatty", "-c", "nope", check=False)
    assert (
        missing.returncode != 0 and "container nope is not valid for pod chatty" in missing.stderr
    )

    counter = _container("c", "for i in 1 2 3; do echo n$i; sleep 0.7; done")
    kubectl.run("apply", "-f", "-", input=_pod("counter", namespace, counter, restart="Never"))
    wait_until(
        lambda: (
            kubectl.json("-n", namespace, "get", "pod", "counter")["status"].get("phase")
            == "Running"
        ),
        60,
        "counter running",
    )
    followed = kubectl.run("-n", namespace, "logs", "-f", "counter", timeout=30)
    assert followed.stdout == "n1\nn2\nn3\n"


def test_logs_previous_on_a_crash_loop(docker_server: ReconServer, namespace: str) -> None:
    """The first run crashes, the second stays up: `--previous` is the first one's output."""
    kubectl = Kubectl(docker_server)
    script = (
        "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; "
        "echo run $n; [ $n -ge 2 ] && exec sleep 3600; exit 1"
    )
    manifest = _pod("crashy", namespace, _container("app", script)) + (
        "      volumeMounts: [{name: state, mountPath: /state}]\n"
        "  volumes: [{name: state, emptyDir: {}}]\n"
    )
    kubectl.run("apply", "-f", "-", input=manifest)
    before = kubectl.run("-n", namespace, "logs", "crashy", "--previous", check=False)
    assert before.returncode != 0
    # The crash is followed by a 10 s back-off, then the second run.
    wait_until(
        lambda: (
            kubectl.json("-n", namespace, "get", "pod", "crashy")["status"]
            .get("containerStatuses", [{}])[0]
            .get("restartCount")
            == 1
        ),
        60,
        "one restart",
    )
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/crashy", "--timeout=30s")
    assert wait_until(
        lambda: kubectl.run("-n", namespace, "logs", "crashy").stdout == "run 2\n", 10, "run 2"
    )
    previous = kubectl.run("-n", namespace, "logs", "crashy", "--previous")
    assert previous.stdout == "run 1\n"
    row = kubectl.run("-n", namespace, "get", "pod", "crashy", "--no-headers").stdout.split()
    assert row[:4] == ["crashy", "1/1", "Running", "1"], row  # RESTARTS 1 (Ns ago)


def test_exec_output_exit_code_and_stdin(docker_server: ReconServer, namespace: str) -> None:
    kubectl = Kubectl(docker_server)
    pair = _container("main", "exec sleep 3600") + _container("side", "exec sleep 3600")
    kubectl.run("apply", "-f", "-", input=_pod("shell", namespace, pair))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/shell", "--timeout=60s")

    ok = kubectl.run("-n", namespace, "exec", "shell", "-c", "side", "--", "echo", "hello")
    assert ok.stdout == "hello\n"
    failed = kubectl.run(
        "-n", namespace, "exec", "shell", "-c", "main", "--",
        "sh", "-c", "echo out; echo err >&2; exit 3",
        check=False,
    )  # fmt: skip
    assert failed.returncode == 3
    assert failed.stdout == "out\n"
    assert "err\n" in failed.stderr and "command terminated with exit code 3" in failed.stderr
    # Containers share the pod's network and nothing else: hostname is the pod's name.
    assert kubectl.run("-n", namespace, "exec", "shell", "-c", "main", "--", "hostname").stdout == (
        "shell\n"
    )
    piped = subprocess.run(
        [
            require_kubectl(), "--kubeconfig", str(docker_server.kubeconfig),
            "-n", namespace, "exec", "-i", "shell", "-c", "main", "--", "sh", "-c", "tr a-z A-Z",
        ],
        input="piped through\n",
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert (piped.returncode, piped.stdout) == (0, "PIPED THROUGH\n"), piped.stderr
    nope = kubectl.run("-n", namespace, "exec", "shell", "-c", "nope", "--", "true", check=False)
    assert nope.returncode != 0 and "nope" in nope.stderr


def test_kubectl_cp_both_ways(docker_server: ReconServer, namespace: str, tmp_path: Path) -> None:
    """`kubectl cp` is tar over `kubectl exec` with stdin: a directory into the pod and a
    file back out."""
    kubectl = Kubectl(docker_server)
    kubectl.run(
        "apply", "-f", "-", input=_pod("box", namespace, _container("c", "exec sleep 3600"))
    )
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/box", "--timeout=60s")
    source = tmp_path / "site"
    (source / "img").mkdir(parents=True)
    (source / "index.html").write_text("<h1>hello</h1>\n")
    (source / "img" / "logo.bin").write_bytes(bytes(range(256)) * 64)
    kubectl.run("cp", str(source), f"{namespace}/box:/tmp/site")
    listed = kubectl.run("-n", namespace, "exec", "box", "--", "find", "/tmp/site", "-type", "f")
    assert sorted(listed.stdout.split()) == ["/tmp/site/img/logo.bin", "/tmp/site/index.html"]
    kubectl.run(
        "-n", namespace, "exec", "box", "--", "sh", "-c", "echo changed >> /tmp/site/index.html"
    )
    back = tmp_path / "back.html"
    kubectl.run("cp", f"{namespace}/box:/tmp/site/index.html", str(back))
    assert back.read_text() == "<h1>hello</h1>\nchanged\n"
    out = tmp_path / "logo.bin"
    kubectl.run("cp", f"{namespace}/box:/tmp/site/img/logo.bin", str(out))
    assert out.read_bytes() == bytes(range(256)) * 64
