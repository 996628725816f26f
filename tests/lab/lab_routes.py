"""Route sets and session layouts shared by the lab tests (data only)."""
from harness import Route, Session

# AS paths after the originating router's ASN: 4-octet ASNs, 131072 vs 2 (equal
# modulo 2^16), AS_TRANS (23456) absent on purpose, the largest valid ASN.
BASE_V4 = [
    ("{n}.0.0/24", [4200000001, 131072, 2]),
    ("{n}.1.0/24", [2, 131072]),
    ("{n}.2.0/24", []),
    ("{n}.4.0/22", [65000, 4294967294, 4200000001]),
    ("{n}.128.0/17", [131072]),
]
BASE_V6 = [
    ("fd{n:02x}:1::/48", [4200000001, 131072, 2]),
    ("fd{n:02x}:2::/64", [2]),
    ("fd{n:02x}:3:4::/64", [131072, 4200000001]),
]
SET_ROUTES_V4 = [("{n}.200.0/24", [4200000001, (131072, 2, 65010)])]
SET_ROUTES_V6 = [("fd{n:02x}:99::/48", [2, (4200000001, 131072)])]


def route_set(n: int, with_sets: bool = False) -> list[Route]:
    """Routes for upstream number ``n`` (IPv4 prefixes under 10.<100+n>/16)."""
    base = f"10.{100 + n}"
    v4 = BASE_V4 + (SET_ROUTES_V4 if with_sets else [])
    v6 = BASE_V6 + (SET_ROUTES_V6 if with_sets else [])
    out = [Route(p.format(n=base), list(path), origin=("igp", "egp", "incomplete")[i % 3], med=(i * 10 if i % 2 else None))
           for i, (p, path) in enumerate(v4)]
    out += [Route(p.format(n=n), list(path)) for p, path in v6]
    return out


def sessions_for(kind: str, rx4: str, rx6: str, local4: str, local6: str, rx_asn: int) -> list[Session]:
    """Transport layout per router kind: BIRD = MP-BGP over IPv4; FRR and ExaBGP = both
    families over IPv6 transport; GoBGP = one session per family/transport."""
    if kind == "bird":
        return [Session(rx4, rx_asn, local4, ("ipv4", "ipv6"))]
    if kind in ("frr", "exabgp"):
        return [Session(rx6, rx_asn, local6, ("ipv4", "ipv6"))]
    return [Session(rx4, rx_asn, local4, ("ipv4",)), Session(rx6, rx_asn, local6, ("ipv6",))]
