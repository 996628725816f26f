"""BGP regression tests of issue 8, with BIRD 2 as the reference receiver.

  * AS4_PATH with AGGREGATOR (defect 8): a real 2010 RIS UPDATE from a
    2-octet-AS peer (no 4-octet AS capability), with an AGGREGATOR for AS 1234
    and no AS4_AGGREGATOR, is sent byte for byte to sparrowd and to BIRD over
    raw sessions (rawbgp). sparrowd's AS path (``sparrowctl route``) must equal
    BIRD's (``birdc show route all``): RFC 6793 §4.2.3 ignores AS4_PATH only
    when AGGREGATOR and AS4_AGGREGATOR are both received.

Everything runs on 127.0.0.0/8 in the test's own namespace: sparrowd and BIRD
each listen on 127.0.0.1 on a free port, the raw speaker connects from its own
127.0.x.y source. Processes belong to the test's harness Lab.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rawbgp as rb  # noqa: E402
from harness import ROOT, dump_path, free_port, sparrow_config, wait_until  # noqa: E402

LOCAL_ASN = 64999
# The UPDATE: AS_PATH 5385 3356 2914 4230 AS_TRANS, AGGREGATOR AS 1234,
# AS4_PATH 3356 2914 4230 262685, NLRI 187.120.32.0/20.
RIS_UPDATE = bytes.fromhex(
    "ffffffffffffffffffffffffffffffff005302000000384001010040020c"
    "020515090d1c0b6210865ba0400304c1cb0058c0070604d2c0000201e01112020400000d1c"
    "00000b62000010860004021d14bb7820")
RIS_PEER_ASN = 5385  # the first AS of the path: the sender's
RIS_PREFIX = "187.120.32.0/20"


def _prefix_of(update: bytes) -> str:
    """The single IPv4 NLRI at the end of an UPDATE (checks the bytes above)."""
    plen = update[-4]
    net = update[-3:] + b"\0"
    return str(ipaddress.ip_network((net, plen)))


def _two_octet_session(port: int, source: str) -> rb.RawBgp:
    """A raw session from `source` as AS 5385 without the 4-octet AS capability."""
    s = rb.RawBgp.connect("127.0.0.1", port, source=source, timeout=5)
    caps = [rb.cap_mp(rb.AFI_IPV4), rb.cap_route_refresh()]
    s.establish(RIS_PEER_ASN, 90, source.replace("127.", "10.", 1), caps=caps)
    return s


def _bird_config(port: int, neighbor: str) -> str:
    return f"""router id 10.0.0.250;
log "@LOG@" all;
protocol device {{}}
protocol bgp ris {{
  local 127.0.0.1 port {port} as {LOCAL_ASN}; strict bind on;
  neighbor {neighbor} as {RIS_PEER_ASN}; passive on; multihop;
  ipv4 {{ import all; export none; }};
}}
"""


def test_as4_path_with_aggregator_matches_bird(lab, sparrow_bin):
    assert _prefix_of(RIS_UPDATE) == RIS_PREFIX
    d_port, b_port = free_port(), free_port()
    src_d, src_b = "127.0.5.10", "127.0.5.11"
    peer = {"name": "ris", "address": src_d, "remote_asn": RIS_PEER_ASN, "role": "upstream",
            "passive": True, "multihop": 64, "connect_retry": 1}
    d = lab.sparrowd(ROOT, "sparrowd", sparrow_config(LOCAL_ASN, "192.0.2.254", [peer], pop="lab",
                                                       listen=["127.0.0.1"], port=d_port))
    d.start().wait_ready()
    bird = lab.bird(ROOT, "bird", _bird_config(b_port, src_b))
    bird.start().wait_ready()

    sessions = []
    try:
        for port, src in ((d_port, src_d), (b_port, src_b)):
            s = _two_octet_session(port, src)
            sessions.append(s)
            s.send_raw(RIS_UPDATE)
        wait_until(lambda: d.has_route(RIS_PREFIX, "ris"), 10, desc="RIS route in sparrowd")
        wait_until(lambda: [r for r in bird.show_routes(f"{RIS_PREFIX} protocol ris") if r.net == RIS_PREFIX],
                   10, desc="RIS route in BIRD")
        b_route = next(r for r in bird.show_routes(f"{RIS_PREFIX} protocol ris") if r.net == RIS_PREFIX)
        s_paths = d.paths_from(RIS_PREFIX, "ris")
        assert len(s_paths) == 1, s_paths
        assert b_route.as_path, b_route.attrs
        print(f"\nBIRD: {b_route.attrs.get('BGP.as_path')}; sparrowd: {s_paths[0]['as_path']}")
        assert dump_path(s_paths[0]["as_path"]) == b_route.as_path, (s_paths[0], b_route.attrs)
    finally:
        for s in sessions:
            s.close()
