"""Routes and AS paths as the lab compares them, whatever speaker they come from.

  Route(prefix, as_path=[...], origin="igp", med=None, communities=(), next_hop=None)
      ``as_path`` lists the ASNs the *originating router* puts after its own ASN;
      an element that is a tuple/frozenset is an AS_SET.
      .expected_path(speaker_asn) -> canonical path tuple as the receiver sees it.
  Canonical paths are tuples of ints (AS_SEQUENCE members) and sorted tuples (AS_SETs):
      canon_path(segments) from sparrowctl ``as_path_segments``; dump_path(text|list) from
      sparrowctl ``as_path``; bird_path(str) from BIRD's ``BGP.as_path``; norm_path(list).
  expected_table(routes, asn), path_str(path), is_set(elem)
  Session(neighbor, peer_as, local_address, families, multihop)   one session of a router

Pure data: talks to nothing.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable


def is_set(e) -> bool:
    """An AS path element that stands for an AS_SET."""
    return isinstance(e, (tuple, list, set, frozenset))


def norm_path(elems: Iterable) -> tuple:
    """Canonical AS path: ints for AS_SEQUENCE members, sorted tuples for AS_SETs."""
    out = []
    for e in elems:
        if is_set(e):
            out.append(tuple(sorted(int(x) for x in e)))
        else:
            out.append(int(e))
    return tuple(out)


def path_str(path: Iterable) -> str:
    return " ".join("{" + " ".join(map(str, e)) + "}" if isinstance(e, tuple) else str(e)
                    for e in norm_path(path))


def canon_path(segments: list[dict]) -> tuple:
    """sparrowctl ``as_path_segments`` -> canonical path (sets become sorted tuples)."""
    out: list = []
    for seg in segments:
        kind = seg.get("kind", "").lower()
        asns = [int(a) for a in seg.get("asns", [])]
        if kind in ("sequence", "as_sequence", "seq"):
            out.extend(asns)
        elif kind in ("set", "as_set"):
            out.append(tuple(sorted(asns)))
        else:
            out.append((kind, tuple(sorted(asns)) if "set" in kind else tuple(asns)))  # confed: keep visible
    return tuple(out)


def bird_path(text: str) -> tuple:
    """BIRD ``BGP.as_path`` text ('1 2 {3 4}') -> canonical path."""
    out: list = []
    for m in re.finditer(r"\{([^}]*)\}|\(([^)]*)\)|\[([^\]]*)\]|(\d+)", text):
        if m.group(1) is not None:
            out.append(tuple(sorted(int(x) for x in m.group(1).replace(",", " ").split())))
        elif m.group(2) is not None:
            out.append(("confed_sequence", tuple(int(x) for x in m.group(2).replace(",", " ").split())))
        elif m.group(3) is not None:
            out.append(("confed_set", tuple(sorted(int(x) for x in m.group(3).replace(",", " ").split()))))
        else:
            out.append(int(m.group(4)))
    return tuple(out)


@dataclass
class Route:
    prefix: str
    as_path: list = field(default_factory=list)  # after the originating router's ASN
    origin: str = "igp"  # igp | egp | incomplete
    med: int | None = None
    communities: tuple = ()
    next_hop: str | None = None  # only for speakers that let us choose (ExaBGP, GoBGP)

    @property
    def afi(self) -> int:
        return ipaddress.ip_network(self.prefix).version

    @property
    def net(self):
        return ipaddress.ip_network(self.prefix)

    def expected_path(self, speaker_asn: int) -> tuple:
        return norm_path([speaker_asn, *self.as_path])

    def has_set(self) -> bool:
        return any(is_set(e) for e in self.as_path)


def expected_table(routes: Iterable[Route], speaker_asn: int) -> set[tuple[str, tuple]]:
    return {(str(r.net), r.expected_path(speaker_asn)) for r in routes}


def dump_path(value) -> tuple:
    """``as_path`` from sparrowctl dump/route: list of segments or text."""
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return canon_path(value)
        return norm_path(value)
    return bird_path(str(value))


@dataclass
class Session:
    """One BGP session of an originating router: towards ``neighbor`` (AS ``peer_as``)."""
    neighbor: str
    peer_as: int
    local_address: str
    families: tuple = ("ipv4", "ipv6")
    multihop: int | None = None
