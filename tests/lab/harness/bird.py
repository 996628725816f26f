"""BIRD 2 in the lab: config generators, the daemon wrapper, and ``birdc`` output parsing.

  BirdPeer / bird_config(...) / bird_static_export(routes)   namespace-lab configs
  loopback_peer_config(...)   one eBGP session over 127.0.0.0/8 (fault tests), logging to @LOG@
  Bird(lab, ns, name, config)  via ``lab.bird(...)``: ``@LOG@`` in the config becomes .log
      .start(extra) .wait_ready() .restart(config, recovery) .stop() .alive()
      .birdc(cmd) .cmd(*args) .reconfigure(text) .proto_info(p) .proto_state(p)
      .wait_established(*p) .show_routes(args) .best_for(addr) .table(proto) .route_count(proto)
      .log_text()
  parse_bird_routes(text) -> [BirdRoute]

Talks to the bird/birdc binaries and BIRD's control socket in the daemon's directory.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .lab import Daemon
from .net import run, wait_until
from .routes import Route, bird_path, is_set

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"


@dataclass
class BirdPeer:
    name: str
    neighbor: str
    local_as: int
    peer_as: int
    local_address: str | None = None
    families: tuple = ("ipv4", "ipv6")
    export: str = "none"  # BIRD filter expression: "none", "all", "where proto = \"s4\"", "filter f"
    import_: str = "all"
    multihop: int | None = None  # None = direct
    passive: bool = False
    extra: str = ""  # raw lines inside the protocol block
    channel_extra: str = ""  # raw lines inside each channel block
    next_hop_ipv6: str | None = None  # for ipv6 channel over IPv4 transport
    graceful_restart: int | None = None  # restart time: `graceful restart on` with that time


def bird_static_export(routes: Iterable[Route], fname: str = "export_static") -> str:
    """A BIRD filter prepending each route's ``as_path`` (and setting origin/MED/communities).

    Static routes carry no BGP attributes, so this filter goes on the BGP
    export side; BIRD then prepends its own ASN itself.
    """
    lines = [f"filter {fname} {{"]
    for r in routes:
        body = []
        for asn in reversed(r.as_path):
            if is_set(asn):
                raise ValueError("BIRD cannot originate AS_SETs")
            body.append(f"bgp_path.prepend({asn});")
        body.append({"igp": "bgp_origin = ORIGIN_IGP;", "egp": "bgp_origin = ORIGIN_EGP;",
                     "incomplete": "bgp_origin = ORIGIN_INCOMPLETE;"}[r.origin])
        if r.med is not None:
            body.append(f"bgp_med = {r.med};")
        for c in r.communities:
            a, b = c.split(":")
            body.append(f"bgp_community.add(({a},{b}));")
        lines.append(f"  if net = {r.net} then {{ {' '.join(body)} accept; }}")
    lines.append("  reject;")
    lines.append("}")
    return "\n".join(lines)


def bird_config(router_id: str, peers: list[BirdPeer], static_routes: Iterable[Route] = (),
                extra: str = "", log_file: str | None = None, static_name: str = "statics") -> str:
    routes = list(static_routes)
    out = []
    if log_file:
        out.append(f'log "{log_file}" all;')
    out.append(f"router id {router_id};")
    out.append("protocol device { scan time 2; }")
    v4 = [r for r in routes if r.afi == 4]
    v6 = [r for r in routes if r.afi == 6]
    out.append(f"protocol static {static_name}4 {{ ipv4;")
    out += [f"  route {r.net} blackhole;" for r in v4]
    out.append("}")
    out.append(f"protocol static {static_name}6 {{ ipv6;")
    out += [f"  route {r.net} blackhole;" for r in v6]
    out.append("}")
    if extra:
        out.append(extra)
    for p in peers:
        out.append(f"protocol bgp {p.name} {{")
        out.append(f"  local {p.local_address or ''} as {p.local_as};".replace("local  as", "local as"))
        out.append(f"  neighbor {p.neighbor} as {p.peer_as};")
        if p.multihop:
            out.append(f"  multihop {p.multihop};")
        else:
            out.append("  direct;")
        if p.passive:
            out.append("  passive on;")
        if p.graceful_restart is not None:
            out.append(f"  graceful restart on; graceful restart time {p.graceful_restart};")
        out.append("  connect retry time 1; connect delay time 1; error wait time 1, 5;")
        if p.extra:
            out.append(p.extra)
        for fam in p.families:
            out.append(f"  {fam} {{")
            imp = p.import_.strip()
            out.append(f"    import {imp};" if imp in ("all", "none") or imp.startswith(("filter", "where"))
                       else f"    import {imp};")
            out.append(f"    export {p.export};")
            if fam == "ipv6" and p.next_hop_ipv6:
                out.append(f"    next hop address {p.next_hop_ipv6};")
            if p.channel_extra:
                out.append(p.channel_extra)
            out.append("  };")
        out.append("}")
    return "\n".join(out) + "\n"


@dataclass
class BirdRoute:
    net: str
    proto: str
    best: bool
    via: str | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def as_path(self) -> tuple:
        return bird_path(self.attrs.get("BGP.as_path", ""))

    @property
    def next_hop(self) -> str | None:
        nh = self.attrs.get("BGP.next_hop")
        return nh.split()[0] if nh else None


_BIRD_ROUTE = re.compile(r"^(\S+)?\s+(unicast|blackhole|unreachable|prohibited)\s+\[(\S+)\s[^\]]*\]\s*(\*)?")


def parse_bird_routes(text: str) -> list[BirdRoute]:
    """Parse ``birdc show route ... all`` output."""
    routes: list[BirdRoute] = []
    cur_net = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("Table ", "BIRD ", "Access restricted")):
            continue
        m = _BIRD_ROUTE.match(line)
        if m:
            if m.group(1):
                cur_net = m.group(1)
            routes.append(BirdRoute(net=cur_net, proto=m.group(3), best=bool(m.group(4))))
            continue
        if not routes:
            continue
        s = line.strip()
        if s.startswith("via "):
            routes[-1].via = s.split()[1]
        elif ":" in s:
            k, _, v = s.partition(":")
            routes[-1].attrs[k.strip()] = v.strip()
    return routes


def loopback_peer_config(*, router_id: str, local_ip: str, local_port: int, local_asn: int,
                         neighbor_ip: str, neighbor_port: int, neighbor_asn: int, proto: str = "peer",
                         static4=(), static6=(), nh4: str | None = None, nh6: str = "2001:db8:ffff::2",
                         password: str | None = None, passive: bool = False, connect_retry: int = 1,
                         hold: int = 90, import_routes: bool = False, debug: str = "states, events") -> str:
    """A BIRD config with one eBGP session over IPv4 loopback carrying IPv4 and IPv6
    and static routes to export (next hop `nh4` for IPv4 when given, else BIRD's
    source address; `nh6` for IPv6). `strict bind` keeps BIRD's listening socket on
    local_ip:local_port only (several BIRDs can share the machine)."""
    s4 = "\n".join(f"  route {p} unreachable;" for p in static4)
    s6 = "\n".join(f"  route {p} unreachable;" for p in static6)
    imp = "all" if import_routes else "none"
    pw = f'  password "{password}";\n' if password is not None else ""
    return f"""
router id {router_id};
log "@LOG@" all;
protocol device {{}}
protocol static st4 {{ ipv4; {s4} }}
protocol static st6 {{ ipv6; {s6} }}
protocol bgp {proto} {{
  debug {{ {debug} }};
  local {local_ip} port {local_port} as {local_asn};
  strict bind on;
  neighbor {neighbor_ip} port {neighbor_port} as {neighbor_asn};
  multihop 64;
  hold time {hold};
  connect delay time 1;
  connect retry time {connect_retry};
  error wait time 1, 2;
  {"passive on;" if passive else ""}
{pw}  ipv4 {{ import {imp}; export where source = RTS_STATIC; {f"next hop address {nh4};" if nh4 else ""} }};
  ipv6 {{ import {imp}; export where source = RTS_STATIC; next hop address {nh6}; }};
}}
"""


class Bird(Daemon):
    conf_name = "bird.conf"

    def __init__(self, lab, ns, name: str, config: str):
        super().__init__(lab, ns, name)
        self.sock = str(self.dir / "bird.ctl")
        self.log = self.dir / "bird.log"
        self.write(config)

    def write(self, config: str) -> None:
        self.conf.write_text(config.replace("@LOG@", str(self.log)))

    def restart(self, config: str | None = None, recovery: bool = False) -> "Bird":
        """Start again after stop()/kill(), optionally with a new config;
        ``recovery`` = ``bird -R`` (graceful restart recovery: R/F bits set)."""
        if config is not None:
            self.write(config)
        return self.start(extra=["-R"] if recovery else [])

    def start(self, extra: Sequence[str] = ()) -> "Bird":
        run([BIRD, "-p", "-c", str(self.conf)])  # parse check, shows errors early
        self.spawn([BIRD, "-f", "-c", str(self.conf), "-s", self.sock, "-P", str(self.dir / "bird.pid"), *extra])
        return self

    def wait_ready(self, timeout: float = 15.0) -> "Bird":
        wait_until(lambda: self.check_alive() and "Daemon is up" in self.birdc("show status", check=False),
                   timeout, desc=f"bird {self.name} up")
        return self

    def cmd(self, *args: str, check: bool = False) -> str:
        p = run([BIRDC, "-s", self.sock, *args], check=False, timeout=15)
        if check and p.returncode != 0:
            raise RuntimeError(f"birdc {shlex.join(args)}: {p.stdout}{p.stderr}")
        return p.stdout

    def birdc(self, cmd: str, check: bool = True) -> str:
        return self.cmd(*shlex.split(cmd), check=check)

    def reconfigure(self, config: str) -> None:
        self.write(config)
        out = self.birdc("configure")
        if "Reconfigur" not in out:
            raise RuntimeError(f"bird {self.name} configure failed: {out}")

    def proto_info(self, proto: str) -> str:
        return self.cmd("show", "protocols", "all", proto)

    def proto_state(self, proto: str) -> str:
        """The protocol's "BGP state:" (Established, Active, Connect, ...), "" if none."""
        m = re.search(r"BGP state:\s+(\S+)", self.proto_info(proto))
        return m.group(1) if m else ""

    def session_up(self, proto: str) -> bool:
        return self.proto_state(proto) == "Established"

    def session_detail(self, proto: str) -> str:
        return self.proto_info(proto)

    def show_routes(self, args: str = "") -> list[BirdRoute]:
        return parse_bird_routes(self.birdc(f"show route {args} all"))

    def table(self, proto: str | None = None) -> set[tuple[str, tuple]]:
        """{(prefix, canonical path)} of routes in master4+master6 (optionally from one protocol)."""
        out = set()
        for t in ("master4", "master6"):
            args = f"table {t}" + (f" protocol {proto}" if proto else "")
            for r in self.show_routes(args):
                out.add((str(ipaddress.ip_network(r.net)), r.as_path))
        return out

    def best_for(self, addr: str) -> BirdRoute | None:
        t = "master6" if ":" in addr else "master4"
        out = self.birdc(f"show route for {addr} table {t} all", check=False)
        if "Network not found" in out:
            return None
        rs = [r for r in parse_bird_routes(out) if r.best]
        return rs[0] if rs else None

    def route_count(self, proto: str) -> dict:
        """Import statistics of a BGP protocol: {'imported': n, 'exported': n} summed over channels."""
        out = self.proto_info(proto)
        tot = {"imported": 0, "exported": 0, "filtered": 0}
        for m in re.finditer(r"Routes:\s+(\d+) imported,(?:\s+(\d+) filtered,)?\s+(\d+) exported", out):
            tot["imported"] += int(m.group(1))
            tot["filtered"] += int(m.group(2) or 0)
            tot["exported"] += int(m.group(3))
        return tot

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
