"""The cluster DNS: the wire format (pure), the answers from Services and Endpoints (pure),
and the server over real UDP/TCP on 127.0.0.1 with a fake upstream and a fake peer (real
pods asking through Docker's embedded DNS are in tests/e2e/test_cluster_dns_on_docker.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.node.cluster_dns import DNS_ADDRESS, ClusterView, answer
from reconciler.node.dns_forward import exchange, fallback_resolvers, host_resolvers
from reconciler.node.dns_peers import DnsPeers
from reconciler.node.dns_server import ClusterDnsServer
from reconciler.node.dns_wire import (
    Query,
    Question,
    Rcode,
    Record,
    Rtype,
    WireError,
    a_record,
    cname_record,
    decode_query,
    decode_response,
    encode_query,
    encode_response,
)
from reconciler.node.pod_sandbox import sandbox_spec
from tests.unit.node.conftest import NodeHarness

JSONDict = dict[str, Any]

# -- the wire --------------------------------------------------------------------------------


def test_the_worked_example_byte_for_byte() -> None:
    query = encode_query(0x1234, Question("web.shop.svc.cluster.local", Rtype.A))
    assert query[:12] == bytes.fromhex("1234 0100 0001 0000 0000 0000")
    assert query[12:] == b"\x03web\x04shop\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"
    parsed = decode_query(query)
    assert parsed.id == 0x1234 and parsed.question == Question("web.shop.svc.cluster.local", 1)
    reply = encode_response(
        parsed, Rcode.NOERROR, (a_record(parsed.question.name, "10.96.4.7", 5),)
    )
    assert reply[:4] == bytes.fromhex("1234 8580")  # QR AA RD RA, NOERROR
    assert reply[-14:] == bytes.fromhex("0001 0001 00000005 0004 0a600407")


def test_names_are_read_lower_case_and_through_compression_pointers() -> None:
    # An upstream answer: question `Pypi.ORG`, then `pypi.org CNAME edge.pypi.org` and
    # `edge.pypi.org A 203.0.113.80`, both names compressed against the question's.
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0)
    question = b"\x04Pypi\x03ORG\x00\x00\x01\x00\x01"
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 7) + b"\x04edge\xc0\x0c"
    a = b"\xc0\x26" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([203, 0, 113, 80])
    message = header + question + cname + a
    assert message[0x26:0x2B] == b"\x04edge"  # where the pointer in `a` leads
    response = decode_response(message)
    assert response.id == 7 and response.rcode == Rcode.NOERROR
    assert response.answers == (
        cname_record("pypi.org", "edge.pypi.org", 60),
        Record("edge.pypi.org", Rtype.A, 60, bytes([203, 0, 113, 80])),
    )
    assert decode_query(header[:4] + b"\0\1\0\0\0\0\0\0" + question).question.name == "pypi.org"


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01",  # shorter than a header
        struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + b"\0\0\1\0\1" * 2,  # two questions
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",  # a label past the end
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",  # a pointer loop
    ],
)
def test_broken_queries_are_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_query(data)


def test_long_answers_are_truncated_for_udp_and_edns_raises_the_limit() -> None:
    question = Question("big.shop.svc.cluster.local", Rtype.A)
    records = tuple(a_record(question.name, f"10.0.0.{i}", 5) for i in range(20))
    plain = Query(1, 0x0100, question)
    short = encode_response(plain, Rcode.NOERROR, records, max_size=512)
    assert len(short) <= 512 and short[2] & 0x02  # TC: ask again over TCP
    assert struct.unpack_from("!H", short, 6)[0] < 20
    full = encode_response(plain, Rcode.NOERROR, records)  # TCP: no limit
    assert struct.unpack_from("!H", full, 6)[0] == 20 and not full[2] & 0x02
    # A query with an OPT record (EDNS, 1232 bytes) gets them all over UDP, and an OPT back.
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    edns = decode_query(
        encode_query(1, question)[:11] + b"\x01" + encode_query(1, question)[12:] + opt
    )
    assert edns.edns and edns.udp_size == 1232
    reply = encode_response(edns, Rcode.NOERROR, records, max_size=edns.udp_size)
    assert struct.unpack_from("!HHH", reply, 6) == (20, 0, 1) and not reply[2] & 0x02


# -- the answers -----------------------------------------------------------------------------


def _svc(name: str, **spec: Any) -> JSONDict:
    return {"metadata": {"name": name, "namespace": "shop"}, "spec": spec}


SERVICES = {
    "web": _svc("web", clusterIP="10.96.4.7", ports=[{"name": "http", "port": 80}]),
    "dns": _svc(
        "dns", clusterIP="10.96.5.3", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]
    ),
    "db": _svc("db", clusterIP="None", ports=[{"name": "pg", "port": 5432}]),
    "all": _svc("all", clusterIP="None", publishNotReadyAddresses=True),
    "empty": _svc("empty", clusterIP="None"),
    "ext": _svc("ext", type="ExternalName", externalName="Pypi.org."),
    "alias": _svc("alias", type="ExternalName", externalName="web.shop.svc.cluster.local"),
    "dangling": _svc("dangling", type="ExternalName", externalName="gone.shop.svc.cluster.local"),
    "loop": _svc("loop", type="ExternalName", externalName="loop.shop.svc.cluster.local"),
}
_DB_ENDPOINTS = {
    "subsets": [
        {
            "addresses": [{"ip": "10.0.3.6"}, {"ip": "10.0.3.5", "hostname": "db-0"}],
            "notReadyAddresses": [{"ip": "10.0.3.7", "hostname": "db-1"}],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        }
    ]
}
ENDPOINTS = {
    "db": _DB_ENDPOINTS,
    "all": _DB_ENDPOINTS,
    "empty": {"subsets": [{"notReadyAddresses": [{"ip": "10.0.3.9"}]}]},
}
VIEW = ClusterView(
    service=lambda ns, name: SERVICES.get(name) if ns == "shop" else None,
    endpoints=lambda ns, name: ENDPOINTS.get(name) if ns == "shop" else None,
    has_namespace=lambda ns: ns == "shop",
)
Z = "svc.cluster.local"


def _a(name: str, *ips: str) -> tuple[str, ...]:
    return tuple(f"{name} A {ip}" for ip in ips)


def _show(record: Record) -> str:
    if record.rtype == Rtype.A:
        return f"{record.name} A {ipaddress.IPv4Address(record.rdata)}"
    if record.rtype == Rtype.CNAME:
        return f"{record.name} CNAME {_labels(record.rdata)}"
    if record.rtype == Rtype.SRV:
        priority, weight, port = struct.unpack_from("!HHH", record.rdata)
        return f"{record.name} SRV {priority} {weight} {port} {_labels(record.rdata[6:])}"
    return f"{record.name} {record.rtype}"


def _labels(data: bytes) -> str:
    out, i = [], 0
    while data[i]:
        out.append(data[i + 1 : i + 1 + data[i]].decode())
        i += 1 + data[i]
    return ".".join(out)


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "records"),
    [
        # ClusterIP: its cluster IP; nothing for AAAA (the name exists: NOERROR).
        (f"web.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"web.shop.{Z}", "10.96.4.7")),
        (f"WEB.shop.{Z}.", Rtype.A, Rcode.NOERROR, _a(f"web.shop.{Z}", "10.96.4.7")),
        (f"web.shop.{Z}", Rtype.AAAA, Rcode.NOERROR, ()),
        # Headless: the ready endpoints, in address order; pods by hostname or address.
        (f"db.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"db.shop.{Z}", "10.0.3.5", "10.0.3.6")),
        (f"db.shop.{Z}", Rtype.AAAA, Rcode.NOERROR, ()),
        (f"db-0.db.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"db-0.db.shop.{Z}", "10.0.3.5")),
        (f"10-0-3-6.db.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"10-0-3-6.db.shop.{Z}", "10.0.3.6")),
        (f"db-1.db.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),  # not ready
        (f"db-0.web.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),  # web is not headless
        # publishNotReadyAddresses: the not-ready ones too.
        (
            f"all.shop.{Z}",
            Rtype.A,
            Rcode.NOERROR,
            _a(f"all.shop.{Z}", "10.0.3.5", "10.0.3.6", "10.0.3.7"),
        ),
        (f"db-1.all.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"db-1.all.shop.{Z}", "10.0.3.7")),
        # No ready endpoint: NXDOMAIN (the DNS spec, kube-dns and CoreDNS agree).
        (f"empty.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),
        # ExternalName: a CNAME (lower case, no trailing dot); the server asks upstream.
        (f"ext.shop.{Z}", Rtype.A, Rcode.NOERROR, (f"ext.shop.{Z} CNAME pypi.org",)),
        (f"ext.shop.{Z}", Rtype.CNAME, Rcode.NOERROR, (f"ext.shop.{Z} CNAME pypi.org",)),
        # ... to a cluster name: followed here.
        (
            f"alias.shop.{Z}",
            Rtype.A,
            Rcode.NOERROR,
            (f"alias.shop.{Z} CNAME web.shop.{Z}", *_a(f"web.shop.{Z}", "10.96.4.7")),
        ),
        (
            f"dangling.shop.{Z}",
            Rtype.A,
            Rcode.NXDOMAIN,
            (f"dangling.shop.{Z} CNAME gone.shop.{Z}",),
        ),
        (f"loop.shop.{Z}", Rtype.A, Rcode.SERVFAIL, ()),
        # SRV per named port.
        (
            f"_http._tcp.web.shop.{Z}",
            Rtype.SRV,
            Rcode.NOERROR,
            (f"_http._tcp.web.shop.{Z} SRV 0 100 80 web.shop.{Z}",),
        ),
        (
            f"_pg._tcp.db.shop.{Z}",
            Rtype.SRV,
            Rcode.NOERROR,
            (
                f"_pg._tcp.db.shop.{Z} SRV 0 50 5432 db-0.db.shop.{Z}",
                f"_pg._tcp.db.shop.{Z} SRV 0 50 5432 10-0-3-6.db.shop.{Z}",
            ),
        ),
        (f"_http._udp.web.shop.{Z}", Rtype.SRV, Rcode.NXDOMAIN, ()),
        # A UDP-only Service is a ClusterIP Service like any other.
        (f"dns.shop.{Z}", Rtype.A, Rcode.NOERROR, _a(f"dns.shop.{Z}", "10.96.5.3")),
        (
            f"_dns._udp.dns.shop.{Z}",
            Rtype.SRV,
            Rcode.NOERROR,
            (f"_dns._udp.dns.shop.{Z} SRV 0 100 53 dns.shop.{Z}",),
        ),
        (f"_dns._tcp.dns.shop.{Z}", Rtype.SRV, Rcode.NXDOMAIN, ()),
        # Pods by dashed address.
        (
            "10-0-3-5.shop.pod.cluster.local",
            Rtype.A,
            Rcode.NOERROR,
            _a("10-0-3-5.shop.pod.cluster.local", "10.0.3.5"),
        ),
        ("nine.shop.pod.cluster.local", Rtype.A, Rcode.NXDOMAIN, ()),
        # The zone's structure exists; anything else in it does not.
        ("cluster.local", Rtype.A, Rcode.NOERROR, ()),
        (Z, Rtype.A, Rcode.NOERROR, ()),
        (f"shop.{Z}", Rtype.A, Rcode.NOERROR, ()),
        (f"other.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),
        (f"nothere.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),
        (f"web.other.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),
        (f"pypi.org.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),  # a search-list try
        ("web.cluster.local", Rtype.A, Rcode.NXDOMAIN, ()),
        (f"a.b.c.d.web.shop.{Z}", Rtype.A, Rcode.NXDOMAIN, ()),
    ],
)
def test_answers(name: str, qtype: int, rcode: int, records: tuple[str, ...]) -> None:
    found = answer(Question(name, qtype), VIEW)
    assert found is not None
    assert (found.rcode, tuple(_show(r) for r in found.answers)) == (rcode, records)
    if rcode != Rcode.SERVFAIL and not records:
        assert [r.rtype for r in found.authority] == [Rtype.SOA]  # negative caching


def test_external_cname_targets_and_srv_additionals() -> None:
    ext = answer(Question(f"ext.shop.{Z}", Rtype.A), VIEW)
    assert ext is not None and ext.external == "pypi.org"
    srv = answer(Question(f"_pg._tcp.db.shop.{Z}", Rtype.SRV), VIEW)
    assert srv is not None
    assert [_show(r) for r in srv.additional] == [
        *_a(f"db-0.db.shop.{Z}", "10.0.3.5"),
        *_a(f"10-0-3-6.db.shop.{Z}", "10.0.3.6"),
    ]


def test_names_outside_the_zone_are_not_ours() -> None:
    for name in ("pypi.org", "cluster.local.example.com", "localcluster.local", "web"):
        assert answer(Question(name, Rtype.A), VIEW) is None


def test_a_service_being_deleted_has_no_name() -> None:
    gone = {**SERVICES["web"], "metadata": {"name": "web", "deletionTimestamp": "now"}}
    view = ClusterView(lambda ns, n: gone, lambda ns, n: None)
    found = answer(Question(f"web.shop.{Z}", Rtype.A), view)
    assert found is not None and found.rcode == Rcode.NXDOMAIN


# -- where pods send their queries -----------------------------------------------------------


def test_pods_ask_the_cluster_dns_then_the_hosts_resolvers(tmp_path: Path) -> None:
    pod = {"metadata": {"name": "p", "namespace": "shop", "uid": "u"}, "spec": {}}
    spec = sandbox_spec(pod, "recon-shop", "pause", 0)
    assert spec.dns_servers == (DNS_ADDRESS, *fallback_resolvers())
    assert DNS_ADDRESS == "10.111.0.1" and 1 <= len(spec.dns_servers) <= 3
    default = {**pod, "spec": {"dnsPolicy": "Default"}}
    assert sandbox_spec(default, "recon-shop", "pause", 0).dns_servers == ()

    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n"
        "nameserver 10.111.0.1\nnameserver fe80::1%eth0\nnameserver bogus\n"
    )
    assert host_resolvers(conf, exclude=("10.111.0.1",)) == (
        ("127.0.0.53", 53),  # the server runs on the host: loopback resolvers work there
        ("10.255.255.53", 53),
        ("fe80::1", 53),
    )
    assert host_resolvers(tmp_path / "missing") == (("8.8.8.8", 53), ("8.8.4.4", 53))


# -- the server ------------------------------------------------------------------------------


def _free_udp_and_tcp_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class _FakeResolver(asyncio.DatagramProtocol):
    """Answers A queries with `address`; NXDOMAIN for names with `nothere` in them."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = decode_query(data)
        self.asked.append(query.question.name)
        if "nothere" in query.question.name:
            reply = encode_response(query, Rcode.NXDOMAIN, authoritative=False)
        elif query.question.qtype == Rtype.A:
            record = a_record(query.question.name, self.address, 60)
            reply = encode_response(query, Rcode.NOERROR, (record,), authoritative=False)
        else:
            reply = encode_response(query, Rcode.NOERROR, authoritative=False)
        self.transport.sendto(reply, addr)


async def _udp_server(protocol: _FakeResolver) -> tuple[Any, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: protocol, local_addr=("127.0.0.1", 0)
    )
    return transport, int(transport.get_extra_info("sockname")[1])


class _Dns:
    def __init__(self, server: ClusterDnsServer, upstream: _FakeResolver, tmp: Path) -> None:
        self.server = server
        self.upstream = upstream
        self.peers_dir = tmp

    async def ask(
        self, name: str, qtype: int = Rtype.A, *, tcp: bool = False
    ) -> tuple[int, list[str]]:
        reply = await exchange(
            (self.server.address, self.server.port),
            encode_query(42, Question(name, qtype)),
            tcp=tcp,
        )
        assert reply is not None, f"no answer for {name}"
        response = decode_response(reply)
        assert response.id == 42
        return response.rcode, [_show(r) for r in response.answers]


@pytest.fixture
async def dns(node: NodeHarness, tmp_path: Path) -> AsyncIterator[_Dns]:
    upstream = _FakeResolver("203.0.113.80")
    transport, upstream_port = await _udp_server(upstream)
    server = ClusterDnsServer(
        node.client,
        agent_id="me",
        address="127.0.0.1",
        port=_free_udp_and_tcp_port(),
        upstreams=(("127.0.0.1", upstream_port),),
        peers_dir=tmp_path / "peers",
        clock=node.clock,
    )
    await server.start()
    try:
        await asyncio.wait_for(server.bound.wait(), 5)
        await server.services.synced.wait()
        await server.endpoints.synced.wait()
        yield _Dns(server, upstream, tmp_path / "peers")
    finally:
        await server.stop()
        transport.close()


async def _create(node: NodeHarness, kind: str, name: str, **body: Any) -> JSONDict:
    return await node.client.create(
        {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default"},
            **body,
        }
    )


async def test_server_answers_from_the_api_and_forwards_the_rest(
    node: NodeHarness, dns: _Dns
) -> None:
    await _create(node, "Service", "db", spec={"clusterIP": "None", "ports": [{"port": 5432}]})
    await _create(node, "Service", "ext", spec={"type": "ExternalName", "externalName": "pypi.org"})
    await _create(
        node,
        "Endpoints",
        "db",
        subsets=[{"addresses": [{"ip": "10.0.3.5"}], "ports": [{"port": 5432}]}],
    )
    db = f"db.default.{Z}"

    async def listed() -> bool:
        return await dns.ask(db) == (Rcode.NOERROR, list(_a(db, "10.0.3.5")))

    await node.eventually(listed, what="the headless Service's pod")
    assert await dns.ask(db, tcp=True) == (Rcode.NOERROR, list(_a(db, "10.0.3.5")))

    # An endpoint more: the next answer lists it (no cache to wait out).
    await node.client.patch(
        "v1",
        "Endpoints",
        "db",
        {
            "subsets": [
                {"addresses": [{"ip": "10.0.3.5"}, {"ip": "10.0.3.6"}], "ports": [{"port": 5432}]}
            ]
        },
        namespace="default",
    )

    async def both() -> bool:
        return await dns.ask(db) == (Rcode.NOERROR, list(_a(db, "10.0.3.5", "10.0.3.6")))

    await node.eventually(both, what="two pods")

    # ExternalName: the CNAME, and what upstream says about its target.
    assert await dns.ask(f"ext.default.{Z}") == (
        Rcode.NOERROR,
        [f"ext.default.{Z} CNAME pypi.org", "pypi.org A 203.0.113.80"],
    )
    # Unknown cluster names: NXDOMAIN here, never asked upstream.
    asked = len(dns.upstream.asked)
    assert await dns.ask(f"pypi.org.default.{Z}") == (Rcode.NXDOMAIN, [])
    assert len(dns.upstream.asked) == asked
    # Everything else: upstream's answer, as it gave it.
    assert await dns.ask("pypi.org") == (Rcode.NOERROR, ["pypi.org A 203.0.113.80"])
    assert await dns.ask("nothere.example") == (Rcode.NXDOMAIN, [])
    assert dns.upstream.asked[-2:] == ["pypi.org", "nothere.example"]


async def test_server_asks_its_peers_before_nxdomain(node: NodeHarness, dns: _Dns) -> None:
    """Another `recon serve` on the engine knows `theirs.other…`; ours does not."""
    peer = _FakeResolver("10.0.9.9")
    transport, port = await _udp_server(peer)
    try:
        # A peer that died without withdrawing is skipped (and its file removed).
        DnsPeers(dns.peers_dir, "dead").publish(1)
        (dns.peers_dir / "dead").write_text("1 999999999\n")
        DnsPeers(dns.peers_dir, "other").publish(port)
        name = f"theirs.other.{Z}"
        assert await dns.ask(name) == (Rcode.NOERROR, list(_a(name, "10.0.9.9")))
        assert peer.asked == [name]
        assert not (dns.peers_dir / "dead").exists()
        # What no peer knows stays NXDOMAIN.
        assert await dns.ask(f"nothere.other.{Z}") == (Rcode.NXDOMAIN, [])
        # The server answers its peers from its own Services only, and forwards nothing.
        mine = dns.server.peers.directory / "me"
        own_port = int(mine.read_text().split()[0])
        reply = await exchange(("127.0.0.1", own_port), encode_query(5, Question("pypi.org", 1)))
        assert reply is not None and decode_response(reply).rcode == Rcode.REFUSED
    finally:
        transport.close()


async def test_server_refuses_nonsense_politely(dns: _Dns) -> None:
    address = (dns.server.address, dns.server.port)
    broken = struct.pack("!HHHHHH", 9, 0x0100, 2, 0, 0, 0)
    reply = await exchange(address, broken, timeout=1)
    assert reply is not None and reply[:2] == b"\x00\x09" and reply[3] & 0xF == Rcode.FORMERR
    notify = bytearray(encode_query(10, Question("web", Rtype.SOA)))
    notify[2] |= 4 << 3  # opcode NOTIFY
    reply = await exchange(address, bytes(notify), timeout=1)
    assert reply is not None and reply[3] & 0xF == Rcode.NOTIMP
    # Another server's answers arriving here (a response, not a query) get no reply.
    stray = encode_response(decode_query(encode_query(11, Question("a", 1))), Rcode.NOERROR)
    assert await exchange(address, stray, timeout=0.3) is None


async def test_a_second_server_waits_for_the_port(
    node: NodeHarness, dns: _Dns, tmp_path: Path
) -> None:
    second = ClusterDnsServer(
        node.client,
        agent_id="second",
        address=dns.server.address,
        port=dns.server.port,
        upstreams=(("127.0.0.1", 9),),
        peers_dir=dns.peers_dir,
        clock=node.clock,
        retry_interval=5,
    )
    await second.start()
    try:
        await node.settle()
        assert not second.bound.is_set()
        assert (dns.peers_dir / "second").exists()  # a peer meanwhile
        await dns.server.stop()
        await node.advance(5)
        await asyncio.wait_for(second.bound.wait(), 5)
    finally:
        await second.stop()
    assert not (dns.peers_dir / "second").exists()


def test_only_this_users_own_peer_files_are_believed(tmp_path: Path) -> None:
    mine, other = DnsPeers(tmp_path / "peers", "me"), DnsPeers(tmp_path / "peers", "other")
    other.publish(5353)
    assert mine.ports() == [5353]
    assert (tmp_path / "peers").stat().st_mode & 0o777 == 0o700
    (tmp_path / "peers" / "other").chmod(0o666)  # anyone could have written it
    assert mine.ports() == []
    (tmp_path / "peers" / "other").chmod(0o600)
    (tmp_path / "peers").chmod(0o777)  # anyone could have put it there
    assert mine.ports() == []
