"""Whole-daemon FAULT tests for sparrowd, with real sockets on loopback.

One sparrowd listens on 127.0.0.1:<free port>; every peer connects from its
own 127.0.x.y address (passive sparrowd peers, multihop 64). A real BIRD
("bird-healthy", 127.0.0.2, 20 IPv4 + 5 IPv6 routes) stays connected for the
whole module: after every fault the test checks that sparrowd still runs and
that this session neither reset (uptime) nor lost a route (accepted counts and
route lookups).

  1. malformed messages/UPDATEs from a raw speaker (fault_cases.CASES), RFC 4271 / 7606
     reactions; the same bytes through ExaBGP for two treat-as-withdraw cases
  2. session down (TCP close, Cease NOTIFICATION) removes the peer's routes
  3. hold timer expiry -> NOTIFICATION 4/0, routes removed
  4. max-prefix warn / teardown
  5. TCP-MD5: right password establishes; wrong or no password never does
  6. a multi-message sanity case: valid routes accepted exactly
  plus: OPEN-phase faults (bad AS / hold / identifier / version / parameter, FSM order),
  an unconfigured source address, silent connections vs the listener, a second
  connection from an Established peer, the 4096-octet boundary and RFC 8654,
  and a reference check of the fault bytes against BIRD as the receiver
  (independent of sparrowd: proves the byte construction).

Binaries: $SPARROW_BIN (default <repo>/target/release). Logs of every process
are under pytest's tmp dir and are printed for failed tests.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fault_cases as fc  # noqa: E402
import rawbgp as rb  # noqa: E402
from fault_lab import ESTABLISHED, LOCAL_ASN, FaultLab, PeerSpec, lab_nh4  # noqa: E402
from harness import ROOT, Bird, ExaBgp, Lab, free_port, loopback_peer_config, sparrow_bin_dir, wait_until  # noqa: E402


# --------------------------------------------------------------------------- peers

CASE_PEERS = {c.id: PeerSpec(f"raw-{c.id}", f"127.0.1.{10 + i}", 65100 + i) for i, c in enumerate(fc.CASES)}
DOWN = {
    "tcp-close": PeerSpec("raw-down-close", "127.0.3.10", 65210),
    "cease": PeerSpec("raw-down-cease", "127.0.3.11", 65211),
    "close-mid-message": PeerSpec("raw-down-midmsg", "127.0.3.18", 65218),
}
HOLD = PeerSpec("raw-hold", "127.0.3.12", 65212, {"hold_time": 3})
MAXP_WARN = PeerSpec("raw-maxpfx-warn", "127.0.3.13", 65213,
                     {"max_prefix": {"ipv4": {"limit": 5, "action": "warn"}}})
MAXP_TEARDOWN = PeerSpec("raw-maxpfx-teardown", "127.0.3.14", 65214,
                         {"max_prefix": {"ipv4": {"limit": 5, "action": "teardown"}}})
SANITY = PeerSpec("raw-sanity", "127.0.3.15", 65215)
EXA = {
    "as-path-segment-overrun": PeerSpec("exa-aspath", "127.0.3.20", 65220),
    "origin-bad-value": PeerSpec("exa-origin", "127.0.3.21", 65221),
}
MD5 = {
    "right": PeerSpec("bird-md5-right", "127.0.4.10", 65410, {"password": "right"}),
    "wrong": PeerSpec("bird-md5-wrong", "127.0.4.11", 65411, {"password": "right"}),
    "none": PeerSpec("bird-md5-none", "127.0.4.12", 65412, {"password": "right"}),
}
OPEN_PEERS = {c.id: PeerSpec(f"raw-{c.id}", f"127.0.6.{10 + i}", 65600 + i) for i, c in enumerate(fc.OPEN_CASES)}
SIZE = PeerSpec("raw-size", "127.0.3.16", 65216)
EXTMSG = PeerSpec("raw-extmsg", "127.0.3.17", 65217)
UNKNOWN_PEER_ADDR = "127.0.5.5"   # deliberately not configured
SILENT_ADDRS = [f"127.0.5.{i}" for i in range(10, 15)]  # not configured either
AFTER_SILENT = PeerSpec("raw-after-silent", "127.0.3.19", 65219)
COLLISION = PeerSpec("raw-collision", "127.0.3.22", 65222)
SQUAT = PeerSpec("raw-squat", "127.0.3.23", 65223)  # only ever opens a silent TCP connection
MAIN_PEERS = [*CASE_PEERS.values(), *DOWN.values(), HOLD, MAXP_WARN, MAXP_TEARDOWN, SANITY, *EXA.values(),
              *OPEN_PEERS.values(), SIZE, EXTMSG, AFTER_SILENT, COLLISION, SQUAT]


def _need_binaries():
    for b in (sparrow_bin_dir() / "sparrowd", sparrow_bin_dir() / "sparrowctl"):
        if not b.exists():
            pytest.fail(f"{b} missing: run `cargo build --release` or set SPARROW_BIN")


def _dump_on_failure(request, lab: FaultLab, extra=()):
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\n===== sparrowd log tail ({lab.d.log}) =====\n{lab.d.log_tail(60)}")
        for x in extra:
            print(x)


@pytest.fixture(scope="module")
def flab(tmp_path_factory):
    """sparrowd with every peer of this module + the healthy BIRD peer."""
    _need_binaries()
    lab = FaultLab(tmp_path_factory.mktemp("faults"), MAIN_PEERS)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def fl(flab, request):
    """Per test: restart sparrowd if an earlier test killed it; dump its log on failure."""
    flab.ensure_running()
    yield flab
    _dump_on_failure(request, flab)


def send_tolerant(peer, data: bytes) -> bool:
    """Send bytes that may hit an already-closed session; False if the peer had closed."""
    try:
        peer.s.send_raw(data)
        return True
    except OSError:
        return False


# =========================================================================== 6. sanity

@pytest.mark.sparrowd
def test_valid_routes_accepted_exactly(fl):
    """Multi-message session: IPv4 NLRI and IPv6 MP_REACH, several prefixes per UPDATE,
    4-octet ASNs, AS_SET, MED/communities, origins, withdrawals (classic and MP_UNREACH),
    several messages in one segment and one message split over several writes,
    End-of-RIB. Every announced-and-not-withdrawn route is accepted, exactly."""
    with fl.raw_session(SANITY.name) as p:
        asn = SANITY.asn
        v4_a = ["10.30.0.0/16", "10.31.1.0/24", "10.31.2.128/25", "10.31.3.7/32"]
        v4_b = ["10.32.0.0/17", "10.33.0.0/24"]
        v4_c = ["11.0.0.0/8"]
        v6_a = ["2001:db8:30::/48", "2001:db8:31:1::/64", "2001:db8:31:2::1/128"]
        v6_b = ["2001:db8:32::/32"]
        msgs = [
            rb.announce4(v4_a, [asn, 65300], p.nh4),
            rb.update(attrs=rb.origin(1) + rb.as_path([asn, 4200000000, 65301]) + rb.next_hop(p.nh4)
                      + rb.med(50) + rb.communities([(65215 << 16) | 1]), nlri_bytes=rb.nlri(v4_b)),
            rb.keepalive(),
            rb.update(attrs=rb.origin(2) + rb.attr(rb.ATTR_AS_PATH, rb.as_path_value([asn])
                                                   + rb.as_path_value([65400, 65401], seg_type=rb.AS_SET))
                      + rb.next_hop(p.nh4), nlri_bytes=rb.nlri(v4_c)),
            rb.announce6(v6_a, [asn, 65302], p.nh6),
        ]
        p.s.send_raw(b"".join(msgs))  # five messages in one write
        split = rb.announce6(v6_b, [asn], p.nh6)
        for i in range(0, len(split), 7):  # one message over several writes
            p.s.send_raw(split[i:i + 7])
            time.sleep(0.01)
        p.announced.update(v4_a + v4_b + v4_c + v6_a + v6_b)
        # withdraw one of each family
        p.s.send_raw(rb.withdraw4(["10.31.1.0/24"]) + rb.withdraw6(["2001:db8:31:1::/64"]))
        p.s.send_raw(rb.end_of_rib(rb.AFI_IPV4) + rb.end_of_rib(rb.AFI_IPV6))
        want4 = [x for x in v4_a + v4_b + v4_c if x != "10.31.1.0/24"]
        want6 = [x for x in v6_a + v6_b if x != "2001:db8:31:1::/64"]

        def counts_ok():
            q = fl.d.peer(SANITY.name)
            return q["accepted"] == {"ipv4": len(want4), "ipv6": len(want6)} and q
        q = wait_until(counts_ok, 10, desc="exact accepted counts")
        assert q["received"]["ipv4"] >= len(want4) and q["received"]["ipv6"] >= len(want6), q
        assert q["state"] == ESTABLISHED
        eor = q.get("eor")
        if isinstance(eor, dict) and eor:
            wait_until(lambda: all(fl.d.peer(SANITY.name)["eor"].get(k) for k in ("ipv4", "ipv6")), 5,
                       desc=f"End-of-RIB seen for both families (eor={eor})")
        p.wait_routes(want4 + want6)
        assert not fl.d.has_route("10.31.1.0/24", SANITY.name), "withdrawn IPv4 route still present"
        assert not fl.d.has_route("2001:db8:31:1::/64", SANITY.name), "withdrawn IPv6 route still present"

        def path(prefix):
            ps = fl.d.paths_from(prefix, SANITY.name)
            assert len(ps) == 1, f"{prefix}: {ps}"
            return ps[0]
        x = path("10.30.0.0/16")
        assert x["as_path"] == f"{asn} 65300" and str(x["origin"]).lower() == "igp" and x["next_hop"] == p.nh4, x
        assert x.get("peer_address") in (None, SANITY.address), x
        x = path("10.32.0.0/17")
        assert x["as_path"] == f"{asn} 4200000000 65301" and str(x["origin"]).lower() == "egp", x
        x = path("11.0.0.0/8")
        assert re.fullmatch(rf"{asn} \{{65400[ ,]65401\}}", x["as_path"]), x
        assert str(x["origin"]).lower() == "incomplete", x
        x = path("2001:db8:31:2::1/128")
        assert x["as_path"] == f"{asn} 65302", x
        assert ipaddress.ip_address(x["next_hop"]) == ipaddress.ip_address(p.nh6), x
        x = path("2001:db8:32::/32")
        assert x["as_path"] == str(asn), x
        assert not p.s.notifications() and not p.s.closed.is_set(), p.s.received


# =========================================================================== 1. malformed

def _case_prefixes(i: int):
    return f"10.1.{i}.0/24", f"10.2.{i}.0/24", f"2001:db8:1:{i:x}::/64"


@pytest.mark.sparrowd
@pytest.mark.parametrize("case", fc.CASES, ids=fc.CASE_IDS)
def test_malformed(fl, case: fc.Case):
    """Announce a victim route per family, send the malformed message, then a valid
    probe UPDATE. RESET: NOTIFICATION with the expected code, session closed, all the
    peer's routes gone. WITHDRAW: session stays up, the probe is accepted (so the fault
    was processed), the attacked victim is gone, the other family's victim stays."""
    i = fc.CASE_IDS.index(case.id)
    spec = CASE_PEERS[case.id]
    victim4, probe4, victim6 = _case_prefixes(i)
    base = fl.healthy_baseline()
    p = fl.raw(spec.name)
    try:
        p.announce4([victim4])
        p.announce6([victim6])
        p.wait_routes([victim4, victim6])
        up_before = fl.d.peer(spec.name)["uptime_secs"]
        ctx = fc.Ctx(spec.asn, p.nh4, p.nh6, victim4, victim6)
        send_tolerant(p, case.build(ctx))
        if send_tolerant(p, rb.announce4([probe4], [spec.asn], p.nh4)):
            p.announced.add(probe4)

        # whichever comes first: the session closes, or the probe is accepted
        outcome = wait_until(lambda: ("reset" if p.s.closed.is_set() else
                                      "up" if fl.d.has_route(probe4, spec.name) else None),
                             10, desc="session reset or probe route accepted")
        notes = p.s.notifications()
        print(f"{case.id}: outcome={outcome} notifications={[str(n) for n in notes]}")
        if case.expect == fc.RESET:
            assert outcome == "reset", f"expected a reset, session stayed up (notifications: {notes})"
        elif case.expect in (fc.WITHDRAW, fc.ACCEPT):
            assert outcome == "up", (f"expected the session to stay up ({case.expect}), it was reset "
                                     f"(notifications: {[str(n) for n in notes]}, close: {p.s.close_reason})")

        if outcome == "reset":
            assert notes, f"session closed without a NOTIFICATION ({p.s.close_reason})"
            n = notes[0]
            assert case.code_ok(n.code, n.subcode), f"got {n}, expected one of {case.codes}"
            if case.data is not None:
                assert n.data == case.data(ctx), f"NOTIFICATION data {n.data.hex()}, RFC wants {case.data(ctx).hex()}"
            wait_until(lambda: fl.d.state(spec.name) != ESTABLISHED, 5, desc="peer to leave Established")
            p.wait_routes_gone([victim4, victim6], 5)
            q = fl.d.peer(spec.name)
            assert q["last_error"], f"reset session has no last_error: {q}"
        elif case.expect == fc.ACCEPT:
            assert not notes and not p.s.closed.is_set(), f"unexpected {notes} / close {p.s.close_reason}"
            target = victim4 if case.afi == rb.AFI_IPV4 else victim6
            wait_until(lambda: [x["as_path"] for x in fl.d.paths_from(target, spec.name)] == [f"{spec.asn} 65999"],
                       5, desc=f"{target} re-announced with AS_PATH '{spec.asn} 65999'")
            x = fl.d.paths_from(target, spec.name)[0]
            assert str(x["origin"]).lower() == "igp", f"first ORIGIN not kept: {x}"
            assert fl.d.has_route(victim6 if target == victim4 else victim4, spec.name)
            assert fl.d.state(spec.name) == ESTABLISHED
        else:
            assert not notes and not p.s.closed.is_set(), f"unexpected {notes} / close {p.s.close_reason}"
            attacked, other = (victim4, victim6) if case.afi == rb.AFI_IPV4 else (victim6, victim4)
            p.wait_routes_gone([attacked], 5)
            assert fl.d.has_route(other, spec.name), f"{other} (not in the malformed UPDATE) was removed too"
            q = fl.d.peer(spec.name)
            assert q["state"] == ESTABLISHED, q
            assert q["uptime_secs"] >= up_before, f"session was reset: {q}"
            # the session still processes UPDATEs after the fault: the victim can come back
            p.announce4([victim4])
            p.announce6([victim6])
            p.wait_routes([victim4, victim6])
    finally:
        p.close()
    fl.assert_healthy(base)


# ExaBGP: the same treat-as-withdraw faults through a third-party speaker. ExaBGP's
# generic attribute `attribute [ 0xCODE 0xFLAGS 0xVALUE ]` replaces its own attribute
# of that code, so the AS_PATH / ORIGIN bytes go out exactly as written. ExaBGP cannot
# produce header/length-level faults (it frames every message itself), so the reset
# cases are covered by the raw speaker only.
EXA_FAULTS = {
    "as-path-segment-overrun": lambda s, v: (f"announce route {v} next-hop {lab_nh4(s.address)} "
                                             f"attribute [ 0x02 0x40 0x0205{s.asn:08x} ]"),
    "origin-bad-value": lambda s, v: (f"announce route {v} next-hop {lab_nh4(s.address)} as-path [ {s.asn} ] "
                                      f"attribute [ 0x01 0x40 0x03 ]"),
}


@pytest.mark.sparrowd
@pytest.mark.parametrize("kind", list(EXA_FAULTS))
def test_exabgp_malformed_treat_as_withdraw(fl, kind, request):
    spec = EXA[kind]
    n = list(EXA_FAULTS).index(kind)
    victim, probe = f"10.40.{n}.0/24", f"10.41.{n}.0/24"
    base = fl.healthy_baseline()
    x = ExaBgp.api_peer(fl, spec.name, local_ip=spec.address, asn=spec.asn, peer_ip="127.0.0.1",
                        peer_port=fl.port, peer_asn=LOCAL_ASN).start()
    try:
        wait_until(lambda: fl.d.state(spec.name) == ESTABLISHED, 30, interval=0.25,
                   desc=f"ExaBGP {spec.name} Established")
        x.send(f"announce route {victim} next-hop {lab_nh4(spec.address)} as-path [ {spec.asn} ]")
        wait_until(lambda: fl.d.has_route(victim, spec.name), 10, desc="ExaBGP victim route")
        up = fl.d.peer(spec.name)["uptime_secs"]
        t0 = time.monotonic()
        x.send(EXA_FAULTS[kind](spec, victim))
        x.send(f"announce route {probe} next-hop {lab_nh4(spec.address)} as-path [ {spec.asn} ]")
        wait_until(lambda: fl.d.has_route(probe, spec.name), 10, desc="ExaBGP probe route after the fault")
        wait_until(lambda: not fl.d.has_route(victim, spec.name), 5, desc="victim treated as withdrawn")
        q = fl.d.peer(spec.name)
        assert q["state"] == ESTABLISHED, q
        assert q["uptime_secs"] >= up + int(time.monotonic() - t0) - 1, f"ExaBGP session was reset: {q}"
        assert x.alive(), x.output()
    finally:
        if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
            print(f"\n===== ExaBGP {spec.name} =====\n{x.output()}")
        x.stop()
    fl.assert_healthy(base)


@pytest.mark.sparrowd
@pytest.mark.parametrize("case", fc.OPEN_CASES, ids=fc.OPEN_CASE_IDS)
def test_open_phase_fault(fl, case: fc.OpenCase):
    """Faults before Established: bad OPEN fields and messages out of FSM order ->
    NOTIFICATION with the expected code, connection closed, never Established."""
    spec = OPEN_PEERS[case.id]
    rid = spec.address.replace("127.", "10.", 1)
    base = fl.healthy_baseline()
    s = rb.RawBgp.connect("127.0.0.1", fl.port, source=spec.address)
    try:
        s.send_raw(case.first(spec.asn, rid))
        if case.after_open is not None:
            m = s.recv_until(lambda m: m.type in (rb.OPEN, rb.NOTIFICATION), 5)
            assert m.type == rb.OPEN, f"daemon refused our valid OPEN: {rb.parse_notification(m.body)}"
            s.send_raw(case.after_open(spec.asn, rid))
        n = s.wait_notification(10)
        assert n is not None, f"closed without a NOTIFICATION ({s.close_reason}); got {s.received}"
        print(f"{case.id}: {n}")
        assert case.code_ok(n.code, n.subcode), f"got {n}, expected one of {case.codes}"
        if case.data is not None:
            assert n.data == case.data, f"NOTIFICATION data {n.data.hex()}, RFC wants {case.data.hex()}"
        assert s.wait_closed(5), "connection still open after the NOTIFICATION"
        if case.after_open is None:
            assert not any(m.type == rb.KEEPALIVE for m in s.received), "daemon sent KEEPALIVE: it accepted the OPEN"
        q = fl.d.peer(spec.name)
        assert q["state"] != ESTABLISHED, q
    finally:
        s.close()
    fl.assert_healthy(base)


@pytest.mark.sparrowd
def test_unconfigured_peer_rejected(fl):
    """A connection from an address no peer is configured for is closed (a Cease, if
    any NOTIFICATION) and changes nothing."""
    base = fl.healthy_baseline()
    paths = fl.d.total_paths()
    s = rb.RawBgp.connect("127.0.0.1", fl.port, source=UNKNOWN_PEER_ADDR)
    try:
        try:
            s.send_raw(rb.open_msg(65555, 90, "10.5.5.5"))
        except OSError:
            pass
        assert s.wait_closed(10), f"connection from an unconfigured address left open; got {s.received}"
        notes = s.notifications()
        assert all(n.code == 6 for n in notes), f"expected no NOTIFICATION or a Cease, got {[str(n) for n in notes]}"
        assert not any(m.type in (rb.OPEN, rb.KEEPALIVE) for m in s.received), s.received
    finally:
        s.close()
    assert fl.d.total_paths() == paths
    fl.assert_healthy(base)


@pytest.mark.sparrowd
def test_silent_connections_do_not_block_listener(fl):
    """Five TCP connections that never send a byte (from unconfigured addresses) and one
    from a configured peer's address must not stop another peer from establishing; the
    unconfigured ones are closed by the daemon."""
    base = fl.healthy_baseline()
    import socket
    silent = []
    try:
        for a in SILENT_ADDRS:
            c = socket.socket()
            c.bind((a, 0))
            c.settimeout(5)
            c.connect(("127.0.0.1", fl.port))
            silent.append(c)
        squat = socket.socket()  # from a configured (passive) peer's address, silent
        squat.bind((SQUAT.address, 0))
        squat.settimeout(5)
        squat.connect(("127.0.0.1", fl.port))
        silent.append(squat)
        t0 = time.monotonic()
        p = fl.raw(AFTER_SILENT.name)
        took = time.monotonic() - t0
        try:
            p.announce4(["10.95.0.0/24"])
            p.wait_routes(["10.95.0.0/24"])
        finally:
            p.close()
        assert took < 5, f"establishing took {took:.1f}s with silent connections open"

        def closed(c):
            c.settimeout(0.05)
            try:
                return c.recv(1) == b""
            except socket.timeout:
                return False
            except OSError:
                return True
        wait_until(lambda: all(closed(c) for c in silent[:-1]), 10, interval=0.2,
                   desc="daemon to close silent connections from unconfigured addresses")
    finally:
        for c in silent:
            c.close()
    fl.assert_healthy(base)


@pytest.mark.sparrowd
def test_second_connection_does_not_reset_established(fl):
    """RFC 4271 §6.8: a new connection from the address of an Established peer is
    closed (Cease, typically 6/7) and the Established session, its uptime and routes
    are untouched."""
    with fl.raw_session(COLLISION.name) as p:
        routes = ["10.96.0.0/24", "10.96.1.0/24", "10.96.2.0/24"]
        p.announce4(routes)
        p.wait_routes(routes)
        up = fl.d.peer(COLLISION.name)["uptime_secs"]
        t0 = time.monotonic()
        s2 = rb.RawBgp.connect("127.0.0.1", fl.port, source=COLLISION.address)
        try:
            try:
                s2.send_raw(rb.open_msg(COLLISION.asn, 90, "10.0.3.22"))
                s2.send_raw(rb.keepalive())
            except OSError:
                pass
            assert s2.wait_closed(10), f"second connection left open: {s2.received}"
            notes = s2.notifications()
            assert all(n.code == 6 for n in notes), [str(n) for n in notes]
        finally:
            s2.close()
        assert not p.s.closed.is_set() and not p.s.notifications(), \
            f"the Established session was closed: {p.s.notifications()} {p.s.close_reason}"
        q = fl.d.peer(COLLISION.name)
        assert q["state"] == ESTABLISHED, q
        assert q["uptime_secs"] >= up + int(time.monotonic() - t0) - 1, f"session reset: {q}"
        p.wait_routes(routes, 2)
        # and it still works
        p.announce4(["10.96.3.0/24"])
        p.wait_routes(["10.96.3.0/24"])


def _fill_update(asn: int, nh4: str, size: int, third: int) -> tuple[bytes, list[str]]:
    """A valid UPDATE of exactly `size` octets: /24s plus at most three /32s to pad."""
    attrs = rb.origin(0) + rb.as_path([asn]) + rb.next_hop(nh4)
    room = size - rb.HEADER_LEN - 4 - len(attrs)
    # k /32s (5 octets) and m /24s (4 octets) with 5k + 4m = room
    k = next(k for k in range(4) if (room - 5 * k) % 4 == 0)
    m = (room - 5 * k) // 4
    prefixes = [f"10.{third}.{j // 256}.{j % 256}/32" for j in range(k)]
    prefixes += [f"{20 + j // 65536}.{(j // 256) % 256}.{j % 256}.0/24" for j in range(m)]
    msg = rb.update(attrs=attrs, nlri_bytes=rb.nlri(prefixes))
    assert len(msg) == size, (len(msg), size)
    return msg, prefixes


@pytest.mark.sparrowd
def test_update_size_boundary(fl):
    """A valid 4096-octet UPDATE (the RFC 4271 maximum) is accepted whole; a 4097-octet
    one resets with 1/2 and the length as data (no extended-message capability)."""
    base = fl.healthy_baseline()
    p = fl.raw(SIZE.name)
    try:
        msg, prefixes = _fill_update(SIZE.asn, p.nh4, 4096, 90)
        p.s.send_raw(msg)
        p.announced.update(prefixes)
        wait_until(lambda: fl.d.peer(SIZE.name)["accepted"]["ipv4"] == len(prefixes), 10,
                   desc=f"{len(prefixes)} routes of the 4096-octet UPDATE")
        for x in (prefixes[0], prefixes[len(prefixes) // 2], prefixes[-1]):
            assert fl.d.has_route(x, SIZE.name), x
        big, _ = _fill_update(SIZE.asn, p.nh4, 4097, 91)
        send_tolerant(p, big)
        n = p.s.wait_notification(10)
        assert n is not None and (n.code, n.subcode) == (1, 2), f"4097-octet UPDATE: {n}"
        assert n.data == b"\x10\x01", n
        p.wait_routes_gone(prefixes[:3] + prefixes[-3:], 5)
    finally:
        p.close(wait=False)
    fl.assert_healthy(base)


@pytest.mark.sparrowd
def test_extended_message_accepted_when_negotiated(fl):
    """RFC 8654: with the extended-message capability on both sides a 6000-octet UPDATE
    is valid (skipped if sparrowd does not announce the capability)."""
    base = fl.healthy_baseline()
    s = rb.RawBgp.connect("127.0.0.1", fl.port, source=EXTMSG.address)
    try:
        caps = rb.default_caps(EXTMSG.asn) + [rb.cap(6)]
        o = s.establish(EXTMSG.asn, 90, "10.3.0.17", caps=caps)
        if not any(c == 6 for c, _ in o.caps):
            pytest.skip("sparrowd does not announce the extended-message capability")
        wait_until(lambda: fl.d.state(EXTMSG.name) == ESTABLISHED, 5)
        msg, prefixes = _fill_update(EXTMSG.asn, "100.64.3.17", 6000, 92)
        s.send_raw(msg)
        wait_until(lambda: fl.d.peer(EXTMSG.name)["accepted"]["ipv4"] == len(prefixes), 10,
                   desc=f"{len(prefixes)} routes of the 6000-octet UPDATE")
        assert not s.notifications()
    finally:
        s.close()
        if fl.d.alive():
            wait_until(lambda: fl.d.peer(EXTMSG.name)["accepted"]["ipv4"] == 0, 5, desc="cleanup")
    fl.assert_healthy(base)


# =========================================================================== 2. session down

@pytest.mark.sparrowd
@pytest.mark.parametrize("how", list(DOWN))
def test_session_down_removes_routes(fl, how):
    spec = DOWN[how]
    k = list(DOWN).index(how)
    v4 = [f"10.5{k}.{i}.0/24" for i in range(40)]
    v6 = [f"2001:db8:5{k}:{i:x}::/64" for i in range(10)]
    base = fl.healthy_baseline()
    p = fl.raw(spec.name)
    try:
        for i in range(0, len(v4), 10):
            p.announce4(v4[i:i + 10])
        p.announce6(v6)
        wait_until(lambda: fl.d.peer(spec.name)["accepted"] == {"ipv4": 40, "ipv6": 10}, 10,
                   desc="40 + 10 routes accepted")
        p.wait_routes(v4 + v6)
        paths_before = fl.d.total_paths()
        summary_before = fl.d.ctl_json("summary")

        if how == "tcp-close":
            p.s.close()
        elif how == "close-mid-message":
            p.s.send_raw(rb.announce4(["10.59.0.0/24"], [spec.asn], p.nh4)[:30])  # half a message, then FIN
            time.sleep(0.05)
            p.s.close()
        else:
            p.s.stop_keepalives()
            p.s.send_notification(6, 2)  # Cease / Administrative Shutdown; we keep the socket open
            assert p.s.wait_closed(5), "sparrowd did not close the connection after our Cease NOTIFICATION"

        wait_until(lambda: fl.d.state(spec.name) != ESTABLISHED, 5, desc="peer to leave Established")
        wait_until(lambda: fl.d.total_paths() == paths_before - 50, 10,
                   desc=f"`sparrowctl paths` to drop by 50 from {paths_before}")
        gone = [x for x in v4 + v6 if fl.d.has_route(x, spec.name)]
        assert not gone, f"routes of the closed session still present: {gone}"
        q = fl.d.peer(spec.name)
        assert q["accepted"] == {"ipv4": 0, "ipv6": 0}, q
        summary_after = fl.d.ctl_json("summary")
        for fam, n in (("ipv4", 40), ("ipv6", 10)):
            for key in ("paths", "prefixes"):
                drop = summary_before[key][fam] - summary_after[key][fam]
                assert drop == n, f"summary {key}.{fam} dropped by {drop}, expected {n}: " \
                                  f"{summary_before[key]} -> {summary_after[key]}"
    finally:
        p.close(wait=False)
    fl.assert_healthy(base)


# =========================================================================== 3. hold timer

@pytest.mark.sparrowd
def test_hold_timer_expiry(fl):
    with fl.raw_session(HOLD.name, hold=3, wait_close=False) as p:
        routes = [f"10.70.{i}.0/24" for i in range(5)]
        assert p.open.hold == 3, f"sparrowd configured hold_time 3 sent hold {p.open.hold} in its OPEN"
        assert p.s.negotiated_hold == 3
        p.announce4(routes)
        p.wait_routes(routes)
        # positive control: with our KEEPALIVEs (every 1 s) the session outlives the hold time
        assert not p.s.closed.wait(4.5), f"session dropped while we sent KEEPALIVEs: {p.s.notifications()}"
        assert fl.d.state(HOLD.name) == ESTABLISHED

        p.s.stop_keepalives()
        last_ka = p.s.last_sent
        n = p.s.wait_notification(8)
        assert n is not None, f"sparrowd closed without a NOTIFICATION ({p.s.close_reason})"
        at = [m for m in p.s.received if m.type == rb.NOTIFICATION][0].at
        assert (n.code, n.subcode) == (4, 0), f"expected Hold Timer Expired 4/0, got {n}"
        waited = at - last_ka
        assert 2.0 <= waited <= 4.5, f"NOTIFICATION {waited:.2f}s after our last message (hold 3 s)"
        assert p.s.wait_closed(5), "connection not closed after the NOTIFICATION"
        wait_until(lambda: fl.d.state(HOLD.name) != ESTABLISHED, 5, desc="peer to leave Established")
        q = fl.d.peer(HOLD.name)
        assert q["last_error"] and "hold" in q["last_error"].lower(), f"last_error: {q['last_error']!r}"
        p.wait_routes_gone(routes, 5)


# =========================================================================== 4. max-prefix

@pytest.mark.sparrowd
def test_max_prefix_warn(fl):
    with fl.raw_session(MAXP_WARN.name) as p:
        routes = [f"10.80.{i}.0/24" for i in range(10)]
        log_before = len(fl.d.log_text())
        p.announce4(routes[:5])
        p.wait_routes(routes[:5])
        q = fl.d.peer(MAXP_WARN.name)
        assert q["max_prefix_exceeded"]["ipv4"] is False, f"5 routes at limit 5 flagged as exceeded: {q}"
        p.announce4(routes[5:])
        q = wait_until(lambda: (lambda q: q if q["accepted"]["ipv4"] == 10 else None)(fl.d.peer(MAXP_WARN.name)),
                       10, desc="all 10 routes held (warn only)")
        assert q["max_prefix_exceeded"]["ipv4"] is True, f"limit 5 exceeded by 10 routes, flag not set: {q}"
        assert q["max_prefix_exceeded"].get("ipv6") is False, q
        # the daemon has evaluated the limit (flag set); the session must not be torn down
        assert not p.s.closed.wait(2), f"warn action tore the session down: {p.s.notifications()}"
        assert fl.d.state(MAXP_WARN.name) == ESTABLISHED
        p.wait_routes(routes, 2)
        new_log = fl.d.log_text()[log_before:]
        warn = [ln for ln in new_log.splitlines() if re.search(r"max(imum)?[ _-]?prefix|prefix[ _-]?limit", ln, re.I)]
        assert warn, f"no max-prefix warning in the daemon log:\n{new_log[-3000:]}"


@pytest.mark.sparrowd
def test_max_prefix_teardown(fl):
    with fl.raw_session(MAXP_TEARDOWN.name, wait_close=False) as p:
        routes = [f"10.81.{i}.0/24" for i in range(10)]
        p.announce4(routes[:5])
        p.wait_routes(routes[:5])
        assert fl.d.state(MAXP_TEARDOWN.name) == ESTABLISHED
        assert not p.s.notifications()
        p.announce4(routes[5:])
        n = p.s.wait_notification(10)
        assert n is not None, f"closed without NOTIFICATION ({p.s.close_reason})"
        assert (n.code, n.subcode) == (6, 1), f"expected Cease / Maximum Number of Prefixes Reached, got {n}"
        assert p.s.wait_closed(5)
        wait_until(lambda: fl.d.state(MAXP_TEARDOWN.name) != ESTABLISHED, 5, desc="peer to leave Established")
        p.wait_routes_gone(routes, 5)


# =========================================================================== 5. TCP-MD5

MD5_ROUTES = ["192.0.2.0/26", "192.0.2.64/26", "192.0.2.128/26"]
MD5_BIRD_PASSWORD = {"right": "right", "wrong": "wrong", "none": None}


def _nstat_md5() -> dict:
    """Kernel TCP-MD5 counters (this network namespace): Failure (bad digest),
    NotFound (no digest where one was required), Unexpected (digest where none was)."""
    r = subprocess.run(["nstat", "-az", "--json"], capture_output=True, text=True, timeout=5)
    import json
    d = json.loads(r.stdout)
    kern = d.get("kernel", d)
    return {k: int(v) for k, v in kern.items() if k.startswith("TcpExtTCPMD5")}


@pytest.fixture(scope="module")
def md5lab(tmp_path_factory):
    """A separate sparrowd with three MD5 peers (password "right") + the healthy BIRD."""
    _need_binaries()
    lab = FaultLab(tmp_path_factory.mktemp("md5"), list(MD5.values()))
    lab.md5_birds = {}
    try:
        lab.start()
        yield lab
    finally:
        for b in lab.md5_birds.values():
            b.stop()
        lab.stop()


def _md5_bird(lab: FaultLab, which: str) -> Bird:
    spec = MD5[which]
    if which not in lab.md5_birds:
        b = lab.bird(ROOT, f"bird-md5-{which}", loopback_peer_config(
            router_id=spec.address.replace("127.", "10.", 1), local_ip=spec.address,
            local_port=free_port(spec.address), local_asn=spec.asn, neighbor_ip="127.0.0.1",
            neighbor_port=lab.port, neighbor_asn=LOCAL_ASN, proto="sparrow", static4=MD5_ROUTES,
            password=MD5_BIRD_PASSWORD[which], connect_retry=1, debug="states, events",
            nh4=lab_nh4(spec.address)))
        lab.md5_birds[which] = b.start().wait_ready()
    return lab.md5_birds[which]


@pytest.mark.sparrowd
def test_md5_right_password_establishes(md5lab, request):
    base = md5lab.healthy_baseline()
    b = _md5_bird(md5lab, "right")
    try:
        wait_until(lambda: md5lab.d.state(MD5["right"].name) == ESTABLISHED, 20, interval=0.25,
                   desc="MD5 session with the right password Established")
        wait_until(lambda: md5lab.d.peer(MD5["right"].name)["accepted"]["ipv4"] == len(MD5_ROUTES), 10,
                   desc="routes over the MD5 session")
        assert b.proto_state("sparrow") == ESTABLISHED
    finally:
        _dump_on_failure(request, md5lab, [b.log_text()[-3000:]])
    md5lab.assert_healthy(base)


@pytest.mark.sparrowd
@pytest.mark.parametrize("which", ["wrong", "none"])
def test_md5_mismatch_never_establishes(md5lab, which, request):
    """BIRD with a wrong password / no password connects again and again (connect retry
    1 s) during an 8 s window; the kernel drops every SYN (TcpExtTCPMD5Failure /
    TCPMD5NotFound go up), the session never gets past Connect/Active on either side.
    Positive control in the same window: the right-password BIRD is Established."""
    spec = MD5[which]
    right = _md5_bird(md5lab, "right")
    wait_until(lambda: md5lab.d.state(MD5["right"].name) == ESTABLISHED, 20, interval=0.25,
               desc="positive control: right-password MD5 session Established")
    base = md5lab.healthy_baseline()
    counters_before = _nstat_md5()
    b = _md5_bird(md5lab, which)
    seen_states = set()
    try:
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            st = md5lab.d.state(spec.name)
            bst = b.proto_state("sparrow")
            seen_states.add((st, bst))
            assert st != ESTABLISHED and bst != ESTABLISHED, \
                f"{which} password established! sparrowd {st}, BIRD {bst}"
            time.sleep(0.2)
        attempts = len(re.findall(r"Connecting to 127\.0\.0\.1", b.log_text()))
        counters_after = _nstat_md5()
        delta = {k: counters_after.get(k, 0) - counters_before.get(k, 0) for k in counters_after}
        key = "TcpExtTCPMD5Failure" if which == "wrong" else "TcpExtTCPMD5NotFound"
        assert attempts >= 3, f"only {attempts} connect attempts by BIRD in the window:\n{b.log_text()[-2000:]}"
        assert delta.get(key, 0) >= 3, f"kernel saw too few MD5-rejected segments: {delta}"
        assert md5lab.d.peer(spec.name)["accepted"]["ipv4"] == 0
        assert md5lab.d.state(MD5["right"].name) == ESTABLISHED, "positive control dropped"
        assert right.proto_state("sparrow") == ESTABLISHED
    finally:
        _dump_on_failure(request, md5lab, [f"states seen: {seen_states}", b.log_text()[-3000:]])
        b.stop()
        md5lab.md5_birds.pop(which, None)
    md5lab.assert_healthy(base)


# =========================================================================== reference: BIRD as receiver

REF_KNOWN_BIRD_DEVIATIONS = {
    # BIRD 2.0.12 does not check a KEEPALIVE's length (RFC 4271 §6.1 requires 19).
    "hdr-keepalive-length-20": "BIRD 2.0.12 accepts a 20-octet KEEPALIVE",
}


@pytest.fixture(scope="module")
def refbird(tmp_path_factory):
    """BIRD with one passive protocol per fault case, as a reference receiver."""
    d = tmp_path_factory.mktemp("refbird")
    port = free_port()
    protos = []
    for i, c in enumerate(fc.CASES):
        protos.append(f"""
protocol bgp c{i} {{
  local 127.0.0.1 port {port} as {LOCAL_ASN}; strict bind on;
  neighbor 127.0.2.{10 + i} as {65100 + i}; passive on; multihop; enforce first as on;
  ipv4 {{ import all; export none; }}; ipv6 {{ import all; export none; }};
}}""")
    conf = 'router id 10.0.0.250;\nlog "@LOG@" all;\nprotocol device {}\n' + "".join(protos)
    with Lab("refbird", d) as lab:
        b = lab.bird(ROOT, "ref", conf)
        b.port = port
        b.start().wait_ready()
        yield b


def _bird_has(b: Bird, proto: str, prefix: str) -> bool:
    net = str(ipaddress.ip_network(prefix, strict=False))
    return any(line.split()[0] == net for line in b.cmd("show", "route", net, "protocol", proto).splitlines()
               if line and not line.startswith((" ", "\t", "BIRD", "Table")))


@pytest.mark.parametrize("case", fc.CASES, ids=fc.CASE_IDS)
def test_reference_bird_receiver(refbird, case):
    """Validates fault_cases' bytes (and rawbgp's encoders) against BIRD: it must react as
    RFC 7606 says (RESET with a code of the case; WITHDRAW keeps the session)."""
    if case.id in REF_KNOWN_BIRD_DEVIATIONS:
        pytest.xfail(REF_KNOWN_BIRD_DEVIATIONS[case.id])
    i = fc.CASE_IDS.index(case.id)
    src, asn, proto = f"127.0.2.{10 + i}", 65100 + i, f"c{i}"
    victim4, probe4, victim6 = _case_prefixes(i)
    s = rb.RawBgp.connect("127.0.0.1", refbird.port, src)
    try:
        s.establish(asn, 90, f"10.254.0.{i + 1}")
        nh6 = "2001:db8:ffff::10"
        s.announce4([victim4], [asn], src)
        s.announce6([victim6], [asn], nh6)
        wait_until(lambda: _bird_has(refbird, proto, victim4) and _bird_has(refbird, proto, victim6), 5,
                   desc="victims in BIRD")
        try:
            s.send_raw(case.build(fc.Ctx(asn, src, nh6, victim4, victim6)))
            s.announce4([probe4], [asn], src)
        except OSError:
            pass
        outcome = wait_until(lambda: "reset" if s.closed.is_set() else
                             "up" if _bird_has(refbird, proto, probe4) else None, 10, desc="BIRD reaction")
        if case.expect == fc.RESET:
            assert outcome == "reset"
        if case.expect in (fc.WITHDRAW, fc.ACCEPT):
            assert outcome == "up"
        if outcome == "reset":
            notes = s.notifications()
            assert notes and case.code_ok(notes[0].code, notes[0].subcode), (notes, s.close_reason)
        elif case.expect == fc.ACCEPT:
            wait_until(lambda: f"{asn} 65999" in refbird.cmd("show", "route", victim4, "protocol", proto, "all"), 5,
                       desc="victim re-announced in BIRD")
        else:
            attacked = victim4 if case.afi == rb.AFI_IPV4 else victim6
            wait_until(lambda: not _bird_has(refbird, proto, attacked), 5, desc="victim withdrawn in BIRD")
    finally:
        s.close()
