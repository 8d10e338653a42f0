"""`kubectl debug` and `kubectl attach`, the real client against `recon serve --runtime
docker`: an ephemeral container in a running pod's namespaces (with piped stdin, and
detached then exec'd into), its status through `-o jsonpath`, `--copy-to`, and attaching to
a container started with `stdin: true`, with and without a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
import uuid

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, require_kubectl
from tests.e2e.support import wait_until

pytestmark = pytest.mark.e2e

IMAGE = "recon.local/busybox:latest"
APP = (
    "mkdir -p /tmp/www && echo hello from the app > /tmp/www/index.html && "
    "httpd -p 127.0.0.1:8080 -h /tmp/www && exec sleep 3601"
)


def _pod(name: str, namespace: str, containers: str, restart: str = "Always") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {{app: {name}}}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
{containers}
"""


def _container(name: str, command: list[str], extra: str = "") -> str:
    quoted = ", ".join(repr(c) for c in command)
    return f"""    - name: {name}
      image: {IMAGE}
      imagePullPolicy: IfNotPresent
      command: [{quoted}]
{extra}"""


@pytest.fixture
def namespace(docker_server: ReconServer) -> str:
    name = f"dbg-{uuid.uuid4().hex[:6]}"
    docker_server.namespaces.append(name)
    Kubectl(docker_server).run("create", "namespace", name)
    return name


def _kubectl(server: ReconServer, namespace: str, *args: str) -> list[str]:
    return [require_kubectl(), "--kubeconfig", str(server.kubeconfig), "-n", namespace, *args]


def _jsonpath(kubectl: Kubectl, namespace: str, pod: str, path: str) -> str:
    """`kubectl get pod -o jsonpath={PATH}`."""
    return kubectl.run("-n", namespace, "get", "pod", pod, "-o", f"jsonpath={{{path}}}").stdout


def test_kubectl_debug_with_a_target_and_piped_stdin(
    docker_server: ReconServer, namespace: str
) -> None:
    kubectl = Kubectl(docker_server)
    pod = _pod("web", namespace, _container("app", ["sh", "-c", APP]))
    kubectl.run("apply", "-f", "-", input=pod)
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/web", "--timeout=60s")

    debug = [
        "debug", "-i", "web", f"--image={IMAGE}", "--image-pull-policy=IfNotPresent",
        "--target=app", "--container=debugger", "--", "sh",
    ]  # fmt: skip
    shell = subprocess.run(
        _kubectl(docker_server, namespace, *debug),
        input="ps; echo ---; wget -qO- http://127.0.0.1:8080/; exit 0\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    processes, _, fetched = shell.stdout.partition("---\n")
    assert "sleep 3601" in processes and "httpd" in processes  # the target's processes
    assert fetched == "hello from the app\n"  # the pod's network, on localhost

    # The status, as `kubectl get -o jsonpath` shows it: terminated, and never restarted.
    def first(path: str) -> str:
        return _jsonpath(kubectl, namespace, "web", f".status.ephemeralContainerStatuses[0]{path}")

    wait_until(lambda: first(".state.terminated.exitCode") == "0", 30, "the debugger's exit 0")
    assert first(".name") == "debugger" and first(".restartCount") == "0"
    assert first(".state.terminated.reason") == "Completed" and first(".ready") == "false"
    assert first(".containerID").startswith("docker://")
    target = ".spec.ephemeralContainers[0].targetContainerName"
    assert _jsonpath(kubectl, namespace, "web", target) == "app"
    logs = kubectl.run("-n", namespace, "logs", "web", "-c", "debugger").stdout
    assert "hello from the app" in logs

    # Detached: kubectl only adds it; then exec and logs reach it like any container.
    kubectl.run(
        "-n", namespace, "debug", "web", f"--image={IMAGE}", "--image-pull-policy=IfNotPresent",
        "--target=app", "--container=sleeper", "--", "sh", "-c", "echo up; exec sleep 3600",
    )  # fmt: skip
    running = ".status.ephemeralContainerStatuses[?(@.name=='sleeper')].state.running.startedAt"
    wait_until(lambda: _jsonpath(kubectl, namespace, "web", running), 60, "sleeper running")
    seen = kubectl.run("-n", namespace, "exec", "web", "-c", "sleeper", "--", "ps").stdout
    assert "sleep 3601" in seen and "sleep 3600" in seen
    wait_until(
        lambda: kubectl.run("-n", namespace, "logs", "web", "-c", "sleeper").stdout == "up\n",
        10,
        "the sleeper's output",
    )
    # The pod is as it was: one app container, ready, never restarted.
    row = kubectl.run("-n", namespace, "get", "pod", "web", "--no-headers").stdout.split()
    assert row[:4] == ["web", "1/1", "Running", "0"], row
    # Ephemeral containers only ever come through the subresource: the pod refuses them.
    refused = kubectl.run(
        "-n", namespace, "patch", "pod", "web", "--type=json",
        "-p", '[{"op":"remove","path":"/spec/ephemeralContainers/0"}]',
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "pod updates may not change fields" in refused.stderr


def test_kubectl_debug_copy_to(docker_server: ReconServer, namespace: str) -> None:
    kubectl = Kubectl(docker_server)
    kubectl.run(
        "apply", "-f", "-", input=_pod("orig", namespace, _container("app", ["sleep", "3601"]))
    )
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/orig", "--timeout=60s")
    kubectl.run(
        "-n", namespace, "debug", "orig", "--copy-to=orig-debug", "--share-processes",
        f"--image={IMAGE}", "--image-pull-policy=IfNotPresent", "--container=debugger",
        "--", "sleep", "3600",
    )  # fmt: skip
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/orig-debug", "--timeout=60s")
    names = _jsonpath(kubectl, namespace, "orig-debug", ".spec.containers[*].name")
    assert names.split() == ["app", "debugger"]
    seen = kubectl.run("-n", namespace, "exec", "orig-debug", "-c", "debugger", "--", "ps")
    assert "sleep 3601" in seen.stdout  # --share-processes: one PID namespace for the copy
    assert _jsonpath(kubectl, namespace, "orig", ".status.phase") == "Running"


def test_kubectl_attach_to_a_container_with_stdin(
    docker_server: ReconServer, namespace: str
) -> None:
    kubectl = Kubectl(docker_server)
    shell = _container("shell", ["sh"], "      stdin: true\n")
    kubectl.run("apply", "-f", "-", input=_pod("talk", namespace, shell, restart="Never"))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/talk", "--timeout=60s")
    attached = subprocess.run(
        _kubectl(docker_server, namespace, "attach", "-i", "talk", "-c", "shell"),
        input="echo attached to $(hostname); exit 3\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (attached.returncode, attached.stdout) == (0, "attached to talk\n"), attached.stderr
    code = ".status.containerStatuses[0].state.terminated.exitCode"
    wait_until(lambda: _jsonpath(kubectl, namespace, "talk", code) == "3", 30, "exit 3")


def test_kubectl_attach_with_a_terminal(docker_server: ReconServer, namespace: str) -> None:
    """`kubectl attach -it` needs a terminal of its own: a pseudo-terminal of 41 rows and
    123 columns here, whose size reaches the container's terminal."""
    kubectl = Kubectl(docker_server)
    shell = _container("shell", ["sh"], "      stdin: true\n      tty: true\n")
    kubectl.run("apply", "-f", "-", input=_pod("term", namespace, shell, restart="Never"))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", "pod/term", "--timeout=60s")
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 123, 0, 0))
    proc = subprocess.Popen(
        _kubectl(docker_server, namespace, "attach", "-it", "term", "-c", "shell"),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    try:
        deadline = time.monotonic() + 60
        typed = False
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    output += os.read(controller, 4096)
                except OSError:
                    break
            if not typed and b"/ # " in output:  # the shell's prompt, through the terminal
                os.write(controller, b"echo $((6 * 7)); stty size\r")
                os.write(controller, b"exit\r")
                typed = True
        assert proc.wait(10) == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(controller)
    assert b"\r\n42\r\n41 123\r\n" in output, output
