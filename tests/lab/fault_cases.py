"""Malformed-UPDATE / malformed-message cases for the fault tests.

Each case builds the bytes of one (or more) broken messages for a session
whose peer has ASN `ctx.asn`, and states the expected RFC 4271 / RFC 7606
reaction of the receiver:

  RESET     the receiver sends a NOTIFICATION whose (code, subcode) is in
            `codes` (subcode None = any) and closes the session;
  WITHDRAW  treat-as-withdraw (RFC 7606 §2): the session stays up and the
            UPDATE's prefixes (the victim prefix, announced validly before)
            are withdrawn;
  EITHER    reset with one of `codes`, or treat-as-withdraw. Used where the
            project's spec and RFC 7606 disagree (see the case's note).
  ACCEPT    the UPDATE is valid after RFC 7606 repair (e.g. a duplicate attribute
            discarded): session up, the victim re-announced with AS_PATH
            "<asn> 65999" (so we can see the UPDATE was applied).

Every malformed UPDATE carries the victim prefix (IPv4 NLRI, or MP_REACH for
IPv6 cases) so that "ignored" is distinguishable from "treat-as-withdraw".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

import rawbgp as rb

RESET, WITHDRAW, EITHER, ACCEPT = "reset", "withdraw", "reset-or-withdraw", "accept"

# Subcodes of code 3 a receiver may pick for MP_REACH / NLRI errors (RFC 4271 §6.3, RFC 7606 §5.3).
UPDATE_ANY = {(3, None)}


@dataclass
class Ctx:
    asn: int            # the raw peer's ASN (first AS of every path)
    nh4: str            # IPv4 next hop (the raw peer's own address)
    nh6: str            # IPv6 next hop
    victim4: str        # IPv4 prefix announced validly before the fault
    victim6: str        # IPv6 prefix announced validly before the fault


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], bytes]
    expect: str
    codes: set | None = None   # {(code, subcode|None)} for RESET / EITHER
    afi: int = rb.AFI_IPV4      # which victim the case attacks
    note: str = ""
    data: Callable[[Ctx], bytes] | None = None  # the NOTIFICATION data RFC 4271 requires, if any

    def code_ok(self, code: int, subcode: int) -> bool:
        return any(c == code and (s is None or s == subcode) for c, s in (self.codes or ()))


def _good_attrs(c: Ctx) -> bytes:
    return rb.origin(0) + rb.as_path([c.asn]) + rb.next_hop(c.nh4)


def _v4(c: Ctx) -> bytes:
    return rb.nlri([c.victim4])


def _path_attr(value: bytes) -> bytes:
    return rb.attr(rb.ATTR_AS_PATH, value)


def _upd_path(c: Ctx, path_value: bytes) -> bytes:
    return rb.update(attrs=rb.origin(0) + _path_attr(path_value) + rb.next_hop(c.nh4), nlri_bytes=_v4(c))


def _mp6(c: Ctx, value: bytes) -> bytes:
    """UPDATE with ORIGIN, AS_PATH and an MP_REACH_NLRI whose value is given raw."""
    return rb.update(attrs=rb.origin(0) + rb.as_path([c.asn]) + rb.attr(rb.ATTR_MP_REACH, value))


def _v6nh(c: Ctx) -> bytes:
    import ipaddress
    return ipaddress.IPv6Address(c.nh6).packed


def _v6nlri(c: Ctx) -> bytes:
    return rb.nlri([c.victim6])


CASES: list[Case] = [
    # ---- message header (RFC 4271 §6.1) -> NOTIFICATION 1/x, session closed
    Case("hdr-bad-marker", lambda c: rb.header(rb.KEEPALIVE, marker=b"\x00" * 16), RESET, {(1, 1)}),
    Case("hdr-length-below-19", lambda c: rb.header(rb.KEEPALIVE, length=18), RESET, {(1, 2)},
         data=lambda c: b"\x00\x12"),
    Case("hdr-length-above-4096",
         lambda c: rb.header(rb.UPDATE, length=5000), RESET, {(1, 2)}, data=lambda c: b"\x13\x88",
         note="header announcing 5000 octets without the extended-message capability; only the "
              "header is sent: the length is checked on the header (sending the body would race the "
              "receiver's close and turn its NOTIFICATION into a RST)"),
    Case("hdr-keepalive-length-20", lambda c: rb.header(rb.KEEPALIVE, b"\x00"), RESET, {(1, 2)},
         data=lambda c: b"\x00\x14"),
    Case("hdr-update-length-21", lambda c: rb.header(rb.UPDATE, b"\x00\x00"), RESET, {(1, 2)},
         data=lambda c: b"\x00\x15",
         note="UPDATE shorter than its 23-octet minimum"),
    Case("hdr-bad-type", lambda c: rb.header(9, b""), RESET, {(1, 3)}, data=lambda c: b"\x09"),

    # ---- UPDATE length fields that do not add up (RFC 7606 §4, RFC 4271 §6.3) -> 3/1 reset
    Case("withdrawn-length-overrun",
         lambda c: rb.update(attrs=_good_attrs(c), nlri_bytes=_v4(c), withdrawn_len=200), RESET, {(3, 1)}),
    Case("total-attr-length-overrun",
         lambda c: rb.update(attrs=_good_attrs(c), nlri_bytes=_v4(c), attrs_len=len(_good_attrs(c)) + 40),
         RESET, {(3, 1)}),
    # ---- an attribute's own length overruns the path-attribute field.
    # RFC 7606 §4: treat-as-withdraw for exactly this framing error (the Total Attribute
    # Length still locates the NLRI); a reset is only for errors the RFC names.
    Case("attr-length-overruns-field",
         lambda c: rb.update(attrs=_good_attrs(c) + rb.attr(rb.ATTR_COMMUNITIES, b"\x00\x01\x00\x02", length=40),
                             nlri_bytes=_v4(c)),
         WITHDRAW, note="RFC 7606 §4 first framing case"),
    Case("attr-header-truncated",
         lambda c: rb.update(attrs=_good_attrs(c) + b"\xc0\x08", nlri_bytes=_v4(c)),
         WITHDRAW, note="RFC 7606 §4 second framing case: 2 octets left, no room for an attribute header"),

    # ---- AS_PATH malformed (RFC 7606 §7.2) -> treat-as-withdraw
    Case("as-path-segment-overrun",
         lambda c: _upd_path(c, bytes([rb.AS_SEQUENCE, 5]) + struct.pack(">I", c.asn)), WITHDRAW,
         note="segment claims 5 ASNs, 1 present"),
    Case("as-path-trailing-octet",
         lambda c: _upd_path(c, rb.as_path_value([c.asn]) + b"\x02"), WITHDRAW,
         note="one octet left after the last segment"),
    Case("as-path-zero-length-segment",
         lambda c: _upd_path(c, rb.as_path_value([c.asn]) + bytes([rb.AS_SEQUENCE, 0])), WITHDRAW),
    Case("as-path-bad-segment-type",
         lambda c: _upd_path(c, bytes([7, 1]) + struct.pack(">I", c.asn)), WITHDRAW),
    Case("as-path-2-octet-on-as4-session",
         lambda c: _upd_path(c, rb.as_path_value([c.asn, c.asn + 1], as4=False)), WITHDRAW,
         note="2 ASNs encoded in 2 octets each on a session that negotiated 4-octet ASNs: overrun"),

    # ---- ORIGIN / NEXT_HOP / flags (RFC 7606 §7.1, §7.3, §3 c) -> treat-as-withdraw
    Case("origin-bad-value",
         lambda c: rb.update(attrs=rb.origin(3) + rb.as_path([c.asn]) + rb.next_hop(c.nh4), nlri_bytes=_v4(c)),
         WITHDRAW),
    Case("origin-bad-length",
         lambda c: rb.update(attrs=rb.attr(rb.ATTR_ORIGIN, b"\x00\x00") + rb.as_path([c.asn]) + rb.next_hop(c.nh4),
                             nlri_bytes=_v4(c)), WITHDRAW),
    Case("origin-flagged-optional",
         lambda c: rb.update(attrs=rb.attr(rb.ATTR_ORIGIN, b"\x00", flags=0xC0) + rb.as_path([c.asn])
                             + rb.next_hop(c.nh4), nlri_bytes=_v4(c)), WITHDRAW,
         note="well-known attribute with the Optional bit: attribute flags error"),
    Case("next-hop-bad-length",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([c.asn]) + rb.attr(rb.ATTR_NEXT_HOP, b"\x7f\x00\x00\x01\x00"),
                             nlri_bytes=_v4(c)), WITHDRAW),

    # ---- missing well-known mandatory attribute (RFC 7606 §3 d) -> treat-as-withdraw
    Case("missing-origin",
         lambda c: rb.update(attrs=rb.as_path([c.asn]) + rb.next_hop(c.nh4), nlri_bytes=_v4(c)), WITHDRAW),
    Case("missing-as-path",
         lambda c: rb.update(attrs=rb.origin(0) + rb.next_hop(c.nh4), nlri_bytes=_v4(c)), WITHDRAW),
    Case("missing-next-hop",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([c.asn]), nlri_bytes=_v4(c)), WITHDRAW),

    # ---- MP_REACH_NLRI malformed (RFC 4760 §7, RFC 7606 §7.11) -> code 3 reset
    Case("mp-reach-too-short",
         lambda c: _mp6(c, struct.pack(">H", rb.AFI_IPV6)), RESET, UPDATE_ANY, afi=rb.AFI_IPV6,
         note="2-octet MP_REACH: no SAFI, no next-hop length"),
    Case("mp-reach-bad-nexthop-length",
         lambda c: _mp6(c, struct.pack(">HBB", rb.AFI_IPV6, 1, 5) + b"\x20\x01\x0d\xb8\x00" + b"\x00" + _v6nlri(c)),
         RESET, UPDATE_ANY, afi=rb.AFI_IPV6, note="IPv6 next hop of length 5"),
    Case("mp-reach-nexthop-overrun",
         lambda c: _mp6(c, struct.pack(">HBB", rb.AFI_IPV6, 1, 200) + _v6nh(c)),
         RESET, UPDATE_ANY, afi=rb.AFI_IPV6, note="next-hop length 200 in a 20-octet attribute"),
    Case("mp-reach-nlri-truncated",
         lambda c: _mp6(c, struct.pack(">HBB", rb.AFI_IPV6, 1, 16) + _v6nh(c) + b"\x00" + _v6nlri(c)[:-2]),
         RESET, UPDATE_ANY, afi=rb.AFI_IPV6, note="the victim prefix missing its last 2 address octets"),
    Case("mp-reach-prefix-length-129",
         lambda c: _mp6(c, struct.pack(">HBB", rb.AFI_IPV6, 1, 16) + _v6nh(c) + b"\x00" + b"\x81" + b"\x20" * 16),
         RESET, UPDATE_ANY, afi=rb.AFI_IPV6),

    # ---- NLRI / withdrawn prefixes that cannot be parsed (RFC 7606 §5.3) -> code 3 reset
    Case("nlri-prefix-length-33",
         lambda c: rb.update(attrs=_good_attrs(c), nlri_bytes=_v4(c) + b"\x21\x0a\x63\x00\x00\x01"),
         RESET, UPDATE_ANY),
    Case("nlri-truncated",
         lambda c: rb.update(attrs=_good_attrs(c), nlri_bytes=_v4(c) + b"\x18\x0a\x63"),
         RESET, UPDATE_ANY, note="a /24 with 2 of its 3 octets at the end of the message"),
    Case("withdrawn-prefix-length-33",
         lambda c: rb.update(withdrawn=b"\x21\x0a\x63\x00\x00\x01", attrs=_good_attrs(c), nlri_bytes=_v4(c)),
         RESET, UPDATE_ANY),
    # ---- duplicates (RFC 7606 §3 g): MP_REACH twice -> 3/1 reset; any other attribute
    # twice -> keep the first, discard the rest, process the UPDATE
    Case("duplicate-mp-reach",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([c.asn]) + rb.mp_reach6([c.victim6], c.nh6)
                             + rb.mp_reach6([c.victim6], c.nh6)), RESET, {(3, 1)}, afi=rb.AFI_IPV6),
    Case("duplicate-origin-second-invalid",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([c.asn, 65999]) + rb.origin(7) + rb.next_hop(c.nh4),
                             nlri_bytes=_v4(c)), ACCEPT,
         note="the second ORIGIN (invalid value 7) must be discarded, not acted on"),
    # ---- MP_UNREACH_NLRI too short -> code 3 reset (RFC 7606 §7.12 / §5.3)
    Case("mp-unreach-too-short",
         lambda c: rb.update(attrs=rb.attr(rb.ATTR_MP_UNREACH, b"\x00\x02")), RESET, UPDATE_ANY, afi=rb.AFI_IPV6),
    # ---- eBGP AS_PATH not starting with the peer's ASN (enforce_first_as, on by default):
    # sparrow's config documents treat-as-withdraw (RFC 7606 rather than RFC 4271's 3/11)
    Case("as-path-wrong-first-as",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([65999, c.asn]) + rb.next_hop(c.nh4),
                             nlri_bytes=_v4(c)), WITHDRAW),
    # ---- unknown optional transitive attribute: accepted (and kept, Partial set)
    Case("unknown-optional-transitive",
         lambda c: rb.update(attrs=rb.origin(0) + rb.as_path([c.asn, 65999]) + rb.next_hop(c.nh4)
                             + rb.attr(0xF0, b"hello", flags=0xC0), nlri_bytes=_v4(c)), ACCEPT),
]

CASE_IDS = [c.id for c in CASES]
BY_ID = {c.id: c for c in CASES}


# --------------------------------------------------------------------------- OPEN-phase faults

@dataclass
class OpenCase:
    """`first` is sent right after connecting; if `after_open` is set we wait for the
    daemon's OPEN and then send it (faults in OpenSent vs OpenConfirm)."""
    id: str
    first: Callable[[int, str], bytes]          # (asn, router_id) -> bytes
    codes: set
    after_open: Callable[[int, str], bytes] | None = None
    data: bytes | None = None
    note: str = ""

    def code_ok(self, code: int, subcode: int) -> bool:
        return any(c == code and (s is None or s == subcode) for c, s in self.codes)


def _open_body_len(asn, rid):
    return len(rb.open_msg(asn, 90, rid)) - rb.HEADER_LEN


OPEN_CASES: list[OpenCase] = [
    OpenCase("open-bad-peer-as", lambda a, r: rb.open_msg(a + 1, 90, r), {(2, 2)}),
    OpenCase("open-hold-time-2", lambda a, r: rb.open_msg(a, 2, r), {(2, 6)}),
    OpenCase("open-router-id-zero", lambda a, r: rb.open_msg(a, 90, "0.0.0.0"), {(2, 3)}),
    OpenCase("open-version-5", lambda a, r: rb.open_msg(a, 90, r, version=5), {(2, 1)}, data=b"\x00\x04",
             note="RFC 4271 §6.2: data = largest supported version, 2 octets"),
    OpenCase("open-unsupported-opt-param",
             lambda a, r: rb.header(rb.OPEN, struct.pack(">BHH4sB", 4, a if a < 65536 else rb.AS_TRANS, 90,
                                                          bytes(map(int, r.split("."))), 4) + b"\x03\x02\x00\x00"),
             {(2, 4)}, note="optional parameter type 3 (deprecated authentication)"),
    OpenCase("open-length-28", lambda a, r: rb.header(rb.OPEN, b"\x04" + b"\x00" * 8, ), {(1, 2)},
             data=b"\x00\x1c", note="OPEN below its 29-octet minimum"),
    OpenCase("opensent-bad-type", lambda a, r: rb.header(9, b""), {(1, 3)}, data=b"\x09",
             note="a header error before the OPEN: data must still be the type (RFC 4271 §6.1)"),
    OpenCase("openconfirm-bad-length", lambda a, r: rb.open_msg(a, 90, r), {(1, 2)}, data=b"\x00\x14",
             after_open=lambda a, r: rb.header(rb.KEEPALIVE, b"\x00"), note="20-octet KEEPALIVE in OpenConfirm"),
    OpenCase("update-before-open", lambda a, r: rb.update(), {(5, None)},
             note="FSM error in OpenSent (RFC 6608 subcode 1)"),
    OpenCase("update-in-openconfirm", lambda a, r: rb.open_msg(a, 90, r), {(5, None)},
             after_open=lambda a, r: rb.update(), note="FSM error in OpenConfirm (RFC 6608 subcode 2)"),
]
OPEN_CASE_IDS = [c.id for c in OPEN_CASES]
