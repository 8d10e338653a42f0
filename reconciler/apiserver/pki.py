"""The embedded API server's credentials: its CA, serving certificate, admin token, kubeconfig.

`recon serve --data-dir DIR` speaks HTTPS with bearer-token authentication, like a real
apiserver, so that an unmodified `kubectl` (and the official clients) can be pointed at it with
nothing but a kubeconfig. This module makes sure, before the server listens, that everything
they need exists under `DIR`:

    DIR/pki/ca.crt, ca.key          a self-signed CA, created once and then kept
    DIR/pki/server.crt, server.key  the serving certificate, signed by that CA; re-issued when it
                                    no longer covers the listen host, is close to expiry or was
                                    signed by another CA
    DIR/token                       the admin bearer token (32 random bytes, hex)
    DIR/kubeconfig                  cluster `recon`, user `recon-admin`, context `recon`

It is idempotent: a second start reuses the CA, the token and the kubeconfig, and only rewrites
what no longer matches (for instance the kubeconfig's server URL after a port change), so that a
kubeconfig copied elsewhere keeps working across restarts. Private material (keys, token,
kubeconfig) is written with mode 0600, atomically (temporary file + rename).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CLUSTER_NAME",
    "CONTEXT_NAME",
    "USER_NAME",
    "CredentialsError",
    "ServerCredentials",
    "ensure_credentials",
    "load_ca",
    "server_url",
    "ssl_context",
    "write_private",
]

CLUSTER_NAME = "recon"
USER_NAME = "recon-admin"
CONTEXT_NAME = "recon"
DEFAULT_NAMESPACE = "default"

_CA_VALIDITY = datetime.timedelta(days=3650)
_SERVER_VALIDITY = datetime.timedelta(days=730)
# A serving certificate with less than this left is re-issued at start-up.
_RENEW_BEFORE = datetime.timedelta(days=30)

_PRIVATE = 0o600
_PUBLIC = 0o644

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The `kubernetes` Service in `default`: the first address of the service range, and its names.
MASTER_SERVICE_IP = "10.96.0.1"
MASTER_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
# Key types we create (EC P-256) or accept in an existing CA (EC or RSA, e.g. one a user supplied).
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CredentialsError(RuntimeError):
    """The credentials on disk cannot be used as they are; the message says what to do."""


@dataclass(frozen=True)
class ServerCredentials:
    """Where the server's TLS material lives, and the admin token it must accept."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    token: str
    kubeconfig: Path


def key_usage(
    *, signing: bool = False, enciphering: bool = False, certificates: bool = False
) -> x509.KeyUsage:
    """A KeyUsage with only the bits named: the constructor wants all nine spelled out, and
    a certificate should carry no bit it was not asked for (as Go's x509 writes them)."""
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=enciphering,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_credentials(data_dir: Path, host: str, port: int) -> ServerCredentials:
    """Create whatever is missing (or stale) of the CA, serving cert, token and kubeconfig.

    `host` is the listen host (an IP address, a DNS name, or a wildcard such as `0.0.0.0` or
    `::`); `port` the listen port. Safe to call on every start.
    """
    data_dir = Path(data_dir)
    pki = data_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)

    ca_cert_path, ca_key_path = pki / "ca.crt", pki / "ca.key"
    ca_cert, ca_key = _ensure_ca(ca_cert_path, ca_key_path)

    server_cert_path, server_key_path = pki / "server.crt", pki / "server.key"
    _ensure_server_cert(server_cert_path, server_key_path, ca_cert, ca_key, host)

    token = _ensure_token(data_dir / "token")

    kubeconfig = data_dir / "kubeconfig"
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _ensure_kubeconfig(kubeconfig, server_url(host, port), ca_pem, token)

    return ServerCredentials(
        ca_cert=ca_cert_path,
        server_cert=server_cert_path,
        server_key=server_key_path,
        token=token,
        kubeconfig=kubeconfig,
    )


def ssl_context(creds: ServerCredentials) -> ssl.SSLContext:
    """A server-side TLS context presenting the serving certificate (TLS 1.2+, HTTP/1.1).

    Only `http/1.1` is offered over ALPN: Go clients (kubectl) ask for `h2` first and would
    otherwise assume HTTP/2, which the aiohttp server does not speak. A client may present
    a certificate signed by the cluster CA (one a CertificateSigningRequest got): it is
    verified here and names the user (`authn.certificate_user`); one signed by anyone else
    fails the handshake, as kube-apiserver's `--client-ca-file`.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(creds.server_cert), keyfile=str(creds.server_key))
    ctx.load_verify_locations(cafile=str(creds.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def load_ca(data_dir: Path) -> tuple[x509.Certificate, SigningKey]:
    """The cluster CA (made at the first start): what signs client certificates."""
    pki = Path(data_dir) / "pki"
    return _ensure_ca(pki / "ca.crt", pki / "ca.key")


def server_url(host: str, port: int) -> str:
    """The URL clients use for a listen address: wildcards become 127.0.0.1, IPv6 is bracketed."""
    ip = _parse_ip(host)
    if ip is None:
        name = _strip_brackets(host)
        return f"https://{name or '127.0.0.1'}:{port}"
    if ip.is_unspecified:
        return f"https://127.0.0.1:{port}"
    if ip.version == 6:
        return f"https://[{ip.compressed}]:{port}"
    return f"https://{ip.compressed}:{port}"


# --- the CA ---------------------------------------------------------------------------------


def _ensure_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, SigningKey]:
    """Load the CA, or create it when neither file exists.

    A CA is never replaced silently: clients elsewhere may trust it. A half-present, unreadable
    or mismatched pair is an error the operator resolves.
    """
    if cert_path.exists() or key_path.exists():
        fix = (
            f"restore it, or remove {cert_path.parent} to create a new CA "
            "(clients that trust the old one must then be reconfigured)"
        )
        if not (cert_path.exists() and key_path.exists()):
            missing = key_path if cert_path.exists() else cert_path
            raise CredentialsError(f"{missing} is missing; {fix}")
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except ValueError as e:
            raise CredentialsError(f"cannot load the CA in {cert_path.parent}: {e}; {fix}") from e
        if not isinstance(key, SigningKey) or not _same_public_key(cert, key):
            raise CredentialsError(
                f"{key_path} is not an EC or RSA key matching {cert_path}; {fix}"
            )
        os.chmod(key_path, _PRIVATE)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "recon"),
            x509.NameAttribute(NameOID.COMMON_NAME, "recon-ca"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            key_usage(signing=True, certificates=True),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # The key first: a certificate without its key would be reused and then fail to load.
    _write_file(key_path, _key_pem(key), _PRIVATE)
    _write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC)
    return cert, key


# --- the serving certificate ----------------------------------------------------------------


def _ensure_server_cert(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    ca_key: SigningKey,
    host: str,
) -> None:
    ips, dns = _required_sans(host)
    if _server_cert_usable(cert_path, key_path, ca_cert, ips, dns):
        os.chmod(key_path, _PRIVATE)
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "recon"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "recon-apiserver"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + _SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(signing=True),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_file(key_path, _key_pem(key), _PRIVATE)
    _write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC)


def _required_sans(host: str) -> tuple[list[IPAddress], list[str]]:
    """The SANs a serving certificate must carry for this listen host, and for pods, which
    reach the API as the `kubernetes` Service (its cluster IP and names), as a real
    apiserver's certificate does."""
    ips: list[IPAddress] = [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address(MASTER_SERVICE_IP),
    ]
    dns = ["localhost", *MASTER_SERVICE_NAMES]
    ip = _parse_ip(host)
    if ip is not None:
        if not ip.is_unspecified and ip not in ips:
            ips.append(ip)
    else:
        name = _strip_brackets(host).lower().rstrip(".")
        if name and name not in dns:
            dns.append(name)
    return ips, dns


def _server_cert_usable(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    ips: list[IPAddress],
    dns: list[str],
) -> bool:
    """True when the existing serving cert is ours, current, and covers every required SAN."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError:
        return False
    if not _same_public_key(cert, key):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc - _now() < _RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    have_dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    return all(ip in have_ips for ip in ips) and all(name in have_dns for name in dns)


# --- token and kubeconfig -------------------------------------------------------------------


def _ensure_token(path: Path) -> str:
    if path.exists():
        token = path.read_text().strip()
        if token:
            os.chmod(path, _PRIVATE)
            return token
    token = secrets.token_bytes(32).hex()
    _write_file(path, (token + "\n").encode(), _PRIVATE)
    return token


def _ensure_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str) -> None:
    """Write the kubeconfig, or update only our cluster/user/context entries in an existing one.

    Entries the user added to the file (other contexts, a different current context that still
    exists) are kept.
    """
    config: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict):
            config = loaded
    before = yaml.safe_dump(config, sort_keys=False) if config else None

    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    config.setdefault("preferences", {})
    cluster = {
        "server": server,
        "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
    }
    _upsert(config, "clusters", CLUSTER_NAME, "cluster", cluster)
    _upsert(config, "users", USER_NAME, "user", {"token": token})
    context = {"cluster": CLUSTER_NAME, "user": USER_NAME, "namespace": DEFAULT_NAMESPACE}
    _upsert(config, "contexts", CONTEXT_NAME, "context", context, keep=("namespace",))
    contexts = {c.get("name") for c in config["contexts"] if isinstance(c, dict)}
    if config.get("current-context") not in contexts:
        config["current-context"] = CONTEXT_NAME

    after = yaml.safe_dump(config, sort_keys=False)
    if after != before:
        _write_file(path, after.encode(), _PRIVATE)
    else:
        os.chmod(path, _PRIVATE)


def _upsert(
    config: dict[str, Any],
    section: str,
    name: str,
    field: str,
    wanted: dict[str, Any],
    keep: tuple[str, ...] = (),
) -> None:
    """Make entry `name` of list `section` carry `wanted` (fields in `keep` are not overwritten)."""
    entries = config.get(section)
    if not isinstance(entries, list):
        entries = []
        config[section] = entries
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(field)
            if not isinstance(body, dict):
                body = {}
                entry[field] = body
            for key, value in wanted.items():
                if key in keep and key in body:
                    continue
                body[key] = value
            return
    entries.append({"name": name, field: dict(wanted)})


# --- helpers --------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _strip_brackets(host: str) -> str:
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _parse_ip(host: str) -> IPAddress | None:
    candidate = _strip_brackets(host)
    if candidate == "":
        return ipaddress.ip_address("0.0.0.0")  # an empty host listens everywhere
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return None


def _same_public_key(cert: x509.Certificate, key: object) -> bool:
    if not isinstance(key, SigningKey):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    return cert.public_key().public_bytes(pem, spki) == key.public_key().public_bytes(pem, spki)


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Atomically replace `path` with `data`; the file never exists with looser permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Atomically write private material (mode 0600), as this module writes its own keys."""
    _write_file(path, data, _PRIVATE)
