"""The lab's one test harness: namespaces and processes (lab), sparrowd, BIRD, FRR,
GoBGP and ExaBGP wrappers, knotd (reference DNS server), Unbound (recursive resolver), nginx (lab
web servers), Prometheus (scraper, promtool), routes/AS paths, and polling helpers. Every lab test
imports what it needs from here (``import harness`` or ``from harness import ...``).

Everything talks only to loopback or to addresses inside network namespaces the
Lab creates; every wait is bounded; every namespace/process the Lab creates is
removed by ``Lab.cleanup()``.

Router notes (found out the hard way):
  * FRR bgpd runs without zebra (-Z): see harness.frr.
  * ExaBGP sends ``as-path`` verbatim (own ASN included by Upstream); 4.2.21 rejects a
    config holding an IPv6 /32 route ("ip ranges ... passive") - use another length.
  * GoBGP's CLI takes AS_SETs as ``{a,b}``; BIRD and FRR cannot originate AS_SETs.
  * ``bird -R`` (graceful restart recovery) holds its routes back until it has every
    neighbour's End-of-RIB (or ``graceful restart wait``, 240 s).
"""
from .bird import BIRD, BIRDC, Bird, BirdPeer, BirdRoute, bird_config, bird_static_export, loopback_peer_config, parse_bird_routes
from .exabgp import ExaBgp, ExaNeighbor, exa_route, exabgp_config
from .frr import Frr, frr_config
from .gobgp import GoBgp, gobgp_aspath, gobgp_config
from .knot import Knot
from .nginx import Nginx, self_signed
from .prometheus import Prometheus, promtool_check_metrics
from .lab import ROOT, Daemon, Lab, Link, Netns, Proc, clean_stale_namespaces, delete_netns, is_root, netns_list
from .net import free_port, listening, run, v6_loopback, wait_equal, wait_until
from .routes import Route, Session, bird_path, canon_path, dump_path, expected_table, norm_path, path_str
from .sparrowd import Sparrowd, ctl_out, loopback_sparrowd, sparrow_bin_dir, sparrow_config, sparrow_peer, sparrowctl
from .unbound import Unbound
from .upstream import Upstream

__all__ = [
    "BIRD", "BIRDC", "Bird", "BirdPeer", "BirdRoute", "bird_config", "bird_static_export",
    "loopback_peer_config", "parse_bird_routes", "ExaBgp", "ExaNeighbor", "exa_route", "exabgp_config",
    "Frr", "frr_config", "GoBgp", "gobgp_aspath", "gobgp_config", "Knot", "Nginx", "self_signed",
    "ROOT", "Daemon", "Lab", "Link", "Netns", "Proc", "clean_stale_namespaces", "delete_netns", "is_root",
    "netns_list", "free_port", "listening", "run", "v6_loopback", "wait_equal", "wait_until",
    "Route", "bird_path", "canon_path", "dump_path", "expected_table", "norm_path", "path_str",
    "Sparrowd", "ctl_out", "loopback_sparrowd", "sparrow_bin_dir", "sparrow_config", "sparrow_peer", "sparrowctl",
    "Session", "Unbound", "Upstream",
]
