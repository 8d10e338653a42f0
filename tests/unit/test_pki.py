"""The API server's credentials: CA, serving certificate, token and kubeconfig on first start.

What matters is what clients see: the serving cert verifies against the CA for the names they
dial, the kubeconfig is one `kubectl` reads, and restarts do not invalidate either.
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from reconciler.apiserver.pki import (
    CredentialsError,
    ServerCredentials,
    ensure_credentials,
    server_url,
    ssl_context,
)

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

# What pods call the API by (the `kubernetes` Service's names).
IN_CLUSTER = {
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kubeconfig(creds: ServerCredentials) -> dict[str, Any]:
    loaded = yaml.safe_load(creds.kubeconfig.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return ips, set(san.get_values_for_type(x509.DNSName))


@contextmanager
def _tls_server(creds: ServerCredentials) -> Iterator[int]:
    """A TLS listener on 127.0.0.1 that completes handshakes and closes; yields its port."""
    ctx = ssl_context(creds)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so that the loop notices `stop` promptly
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass  # the client rejected us: that is what some tests expect

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _handshake(creds: ServerCredentials, port: int, server_hostname: str) -> bytes:
    client = ssl.create_default_context(cafile=str(creds.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(2)


class TestFirstStart:
    def test_creates_every_file_with_private_modes(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)

        assert creds.ca_cert == tmp_path / "pki" / "ca.crt"
        assert creds.server_cert == tmp_path / "pki" / "server.crt"
        assert creds.server_key == tmp_path / "pki" / "server.key"
        assert creds.kubeconfig == tmp_path / "kubeconfig"
        for private in (
            tmp_path / "pki" / "ca.key",
            creds.server_key,
            tmp_path / "token",
            creds.kubeconfig,
        ):
            assert _mode(private) == 0o600, private
        assert (tmp_path / "token").read_text().strip() == creds.token
        assert len(creds.token) == 64
        int(creds.token, 16)  # hex

    def test_serving_cert_is_signed_by_the_ca_and_is_not_a_ca(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
        cert = x509.load_pem_x509_certificate(creds.server_cert.read_bytes())

        cert.verify_directly_issued_by(ca)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    @pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
    def test_tls_handshake_verifies_against_the_ca(self, tmp_path: Path, name: str) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        with _tls_server(creds) as port:
            assert _handshake(creds, port, name) == b"ok"

    def test_tls_handshake_rejects_a_name_not_in_the_cert(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        with _tls_server(creds) as port, pytest.raises(ssl.SSLCertVerificationError):
            _handshake(creds, port, "elsewhere.example")

    def test_kubeconfig_names_cluster_user_and_context(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 7443)
        config = _kubeconfig(creds)

        assert config["current-context"] == "recon"
        [cluster] = config["clusters"]
        assert cluster["name"] == "recon"
        assert cluster["cluster"]["server"] == "https://127.0.0.1:7443"
        ca_pem = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
        assert ca_pem == creds.ca_cert.read_bytes()
        [user] = config["users"]
        assert user == {"name": "recon-admin", "user": {"token": creds.token}}
        [context] = config["contexts"]
        assert context == {
            "name": "recon",
            "context": {"cluster": "recon", "user": "recon-admin", "namespace": "default"},
        }


class TestListenHosts:
    @pytest.mark.parametrize(
        ("host", "url"),
        [
            ("127.0.0.1", "https://127.0.0.1:6443"),
            ("0.0.0.0", "https://127.0.0.1:6443"),
            ("::", "https://127.0.0.1:6443"),
            ("", "https://127.0.0.1:6443"),
            ("::1", "https://[::1]:6443"),
            ("[::1]", "https://[::1]:6443"),
            ("fd00::10", "https://[fd00::10]:6443"),
            ("192.168.7.9", "https://192.168.7.9:6443"),
            ("recon.example.test", "https://recon.example.test:6443"),
        ],
    )
    def test_server_url(self, host: str, url: str) -> None:
        assert server_url(host, 6443) == url

    def test_wildcard_host_gets_the_loopback_and_in_cluster_names(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "0.0.0.0", 6443)
        ips, dns = _sans(creds.server_cert)
        assert ips == {"127.0.0.1", "::1", "10.96.0.1"}
        assert dns == {"localhost", *IN_CLUSTER}

    def test_ip_host_is_added_to_the_sans(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "fd00::10", 6443)
        ips, _ = _sans(creds.server_cert)
        assert ips == {"127.0.0.1", "::1", "10.96.0.1", "fd00::10"}
        assert _kubeconfig(creds)["clusters"][0]["cluster"]["server"] == "https://[fd00::10]:6443"

    def test_dns_host_is_added_to_the_sans_and_verifies(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "Recon.Example.Test", 6443)
        _, dns = _sans(creds.server_cert)
        assert dns == {"localhost", "recon.example.test", *IN_CLUSTER}
        with _tls_server(creds) as port:
            assert _handshake(creds, port, "recon.example.test") == b"ok"


class TestRestart:
    def test_second_start_changes_nothing(self, tmp_path: Path) -> None:
        first = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
        before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}

        second = ensure_credentials(tmp_path, "127.0.0.1", 6443)

        assert second == first
        assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files
        assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before

    def test_port_change_rewrites_only_the_server_url(self, tmp_path: Path) -> None:
        first = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        ca, cert = first.ca_cert.read_bytes(), first.server_cert.read_bytes()

        second = ensure_credentials(tmp_path, "127.0.0.1", 7443)

        assert second.token == first.token
        assert second.ca_cert.read_bytes() == ca
        assert second.server_cert.read_bytes() == cert
        cluster = _kubeconfig(second)["clusters"][0]["cluster"]
        assert cluster["server"] == "https://127.0.0.1:7443"

    def test_new_listen_host_reissues_the_serving_cert_under_the_same_ca(
        self, tmp_path: Path
    ) -> None:
        first = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        ca, cert = first.ca_cert.read_bytes(), first.server_cert.read_bytes()

        second = ensure_credentials(tmp_path, "10.11.12.13", 6443)

        assert second.ca_cert.read_bytes() == ca
        assert second.server_cert.read_bytes() != cert
        assert "10.11.12.13" in _sans(second.server_cert)[0]
        assert _mode(second.server_key) == 0o600
        with _tls_server(second) as port:
            assert _handshake(second, port, "127.0.0.1") == b"ok"

    def test_covered_host_keeps_the_serving_cert(self, tmp_path: Path) -> None:
        first = ensure_credentials(tmp_path, "0.0.0.0", 6443)
        cert = first.server_cert.read_bytes()
        ensure_credentials(tmp_path, "localhost", 6443)
        ensure_credentials(tmp_path, "::1", 6443)
        assert first.server_cert.read_bytes() == cert

    def test_serving_cert_from_another_ca_is_replaced(self, tmp_path: Path) -> None:
        other = ensure_credentials(tmp_path / "other", "127.0.0.1", 6443)
        mine = ensure_credentials(tmp_path / "mine", "127.0.0.1", 6443)
        shutil.copy(other.server_cert, mine.server_cert)
        shutil.copy(other.server_key, mine.server_key)

        ensure_credentials(tmp_path / "mine", "127.0.0.1", 6443)

        ca = x509.load_pem_x509_certificate(mine.ca_cert.read_bytes())
        x509.load_pem_x509_certificate(mine.server_cert.read_bytes()).verify_directly_issued_by(ca)

    def test_user_additions_to_the_kubeconfig_survive(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        config = _kubeconfig(creds)
        config["contexts"].append(
            {"name": "mine", "context": {"cluster": "recon", "user": "recon-admin"}}
        )
        config["contexts"][0]["context"]["namespace"] = "team-a"
        config["current-context"] = "mine"
        creds.kubeconfig.write_text(yaml.safe_dump(config))

        ensure_credentials(tmp_path, "127.0.0.1", 7443)

        after = _kubeconfig(creds)
        assert after["current-context"] == "mine"
        assert [c["name"] for c in after["contexts"]] == ["recon", "mine"]
        assert after["contexts"][0]["context"]["namespace"] == "team-a"
        assert after["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"
        assert _mode(creds.kubeconfig) == 0o600

    def test_loose_permissions_are_tightened(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        for path in (tmp_path / "token", creds.server_key, tmp_path / "pki" / "ca.key"):
            path.chmod(0o644)
        ensure_credentials(tmp_path, "127.0.0.1", 6443)
        for path in (tmp_path / "token", creds.server_key, tmp_path / "pki" / "ca.key"):
            assert _mode(path) == 0o600

    def test_a_ca_without_its_key_is_an_error_not_a_new_ca(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "127.0.0.1", 6443)
        ca = creds.ca_cert.read_bytes()
        (tmp_path / "pki" / "ca.key").unlink()

        with pytest.raises(CredentialsError, match=r"ca\.key is missing"):
            ensure_credentials(tmp_path, "127.0.0.1", 6443)
        assert creds.ca_cert.read_bytes() == ca


@needs_kubectl
class TestKubectl:
    def _config_view(self, kubeconfig: Path, jsonpath: str) -> str:
        assert KUBECTL is not None
        command = [KUBECTL, "config", "view", "--kubeconfig", str(kubeconfig), "--raw"]
        command += ["-o", f"jsonpath={jsonpath}"]
        out = subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout

    def test_kubectl_reads_server_and_token(self, tmp_path: Path) -> None:
        creds = ensure_credentials(tmp_path, "::1", 6443)
        server = self._config_view(
            creds.kubeconfig, '{.clusters[?(@.name=="recon")].cluster.server}'
        )
        token = self._config_view(creds.kubeconfig, '{.users[?(@.name=="recon-admin")].user.token}')
        context = self._config_view(creds.kubeconfig, "{.current-context}")
        assert server == "https://[::1]:6443"
        assert token == creds.token
        assert context == "recon"

    def test_kubectl_trusts_the_server_and_sends_the_token(self, tmp_path: Path) -> None:
        """A real kubectl request over TLS: CA trust, SAN match, ALPN and bearer token."""
        seen: list[str | None] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        port = server.server_address[1]
        creds = ensure_credentials(tmp_path, "127.0.0.1", port)
        server.socket = ssl_context(creds).wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            assert KUBECTL is not None
            out = subprocess.run(
                [KUBECTL, "--kubeconfig", str(creds.kubeconfig), "get", "--raw", "/version"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["gitVersion"] == "v1.32.0"
        assert seen and all(h == f"Bearer {creds.token}" for h in seen)
