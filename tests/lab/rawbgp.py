"""A small raw BGP-4 speaker for fault tests.

Builds every message byte by byte (so tests can break any field on purpose),
speaks OPEN / KEEPALIVE / UPDATE / NOTIFICATION over a plain TCP socket and
reads the peer's messages on a background thread into a queue.  Every wait
takes a timeout.

Encoders (pure functions, no socket):
  header(), open_msg(), keepalive(), notification(), update(), attr(),
  origin(), as_path(), next_hop(), med(), local_pref(), mp_reach(),
  mp_unreach(), prefix(), nlri(), end_of_rib()
Speaker:
  s = RawBgp.connect("127.0.0.1", port, source="127.0.0.10")
  s.establish(asn=65010, hold=90, router_id="10.0.0.10")   # OPEN exchange -> Established
  s.announce4(["10.1.0.0/24"], path=[65010], nh="127.0.0.10")
  s.send_raw(bytes)                 # anything at all
  n = s.wait_notification(5)        # -> Notification | None (closed without one); raises on timeout
  s.close()

Run as a script for a one-shot announcement against any BGP speaker:
  python3 rawbgp.py --connect 127.0.0.1:1179 --source 127.0.0.10 --asn 65010 \
      --announce 10.1.0.0/24 --path 65010 --nh 127.0.0.10 --linger 5
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

MARKER = b"\xff" * 16
HEADER_LEN = 19

OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE_REFRESH = 1, 2, 3, 4, 5
TYPE_NAMES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}

# attribute type codes
ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_MED, ATTR_LOCAL_PREF = 1, 2, 3, 4, 5
ATTR_ATOMIC_AGGREGATE, ATTR_AGGREGATOR, ATTR_COMMUNITIES = 6, 7, 8
ATTR_MP_REACH, ATTR_MP_UNREACH, ATTR_AS4_PATH = 14, 15, 17
# attribute flags
F_OPTIONAL, F_TRANSITIVE, F_PARTIAL, F_EXTLEN = 0x80, 0x40, 0x20, 0x10
# segment types
AS_SET, AS_SEQUENCE = 1, 2
AFI_IPV4, AFI_IPV6, SAFI_UNICAST = 1, 2, 1
AS_TRANS = 23456


# --------------------------------------------------------------------------- encoders

def header(msg_type: int, body: bytes = b"", *, marker: bytes = MARKER, length: int | None = None) -> bytes:
    """A complete message; `marker`/`length` may be overridden to build broken headers."""
    if length is None:
        length = HEADER_LEN + len(body)
    return marker + struct.pack(">HB", length, msg_type) + body


def keepalive() -> bytes:
    return header(KEEPALIVE)


def notification(code: int, subcode: int = 0, data: bytes = b"") -> bytes:
    return header(NOTIFICATION, bytes([code, subcode]) + data)


def cap(code: int, value: bytes = b"") -> bytes:
    return bytes([code, len(value)]) + value


def cap_mp(afi: int, safi: int = SAFI_UNICAST) -> bytes:
    return cap(1, struct.pack(">HBB", afi, 0, safi))


def cap_route_refresh() -> bytes:
    return cap(2)


def cap_as4(asn: int) -> bytes:
    return cap(65, struct.pack(">I", asn))


def cap_graceful_restart(restart_time: int = 120, afis=((AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST))) -> bytes:
    v = struct.pack(">H", restart_time & 0x0FFF)
    for a, s in afis:
        v += struct.pack(">HBB", a, s, 0)
    return cap(64, v)


def default_caps(asn: int, families=("ipv4", "ipv6")) -> list[bytes]:
    caps = []
    if "ipv4" in families:
        caps.append(cap_mp(AFI_IPV4))
    if "ipv6" in families:
        caps.append(cap_mp(AFI_IPV6))
    caps.append(cap_route_refresh())
    caps.append(cap_as4(asn))
    return caps


def open_msg(asn: int, hold: int, router_id: str, caps: list[bytes] | None = None,
             version: int = 4) -> bytes:
    """OPEN with each capability in its own optional parameter (type 2), like most speakers."""
    if caps is None:
        caps = default_caps(asn)
    params = b"".join(bytes([2, len(c)]) + c for c in caps)
    my_as = asn if asn < 65536 else AS_TRANS
    body = struct.pack(">BHH4sB", version, my_as, hold, socket.inet_aton(router_id), len(params)) + params
    return header(OPEN, body)


def attr(type_code: int, value: bytes, flags: int | None = None, *, length: int | None = None) -> bytes:
    """One path attribute.  `flags` default: well-known transitive for 1-3,5,6;
    optional non-transitive for 4,14,15; optional transitive otherwise.  The
    extended-length bit is set automatically when needed (or when given in flags).
    `length` overrides the encoded length field (for malformed attributes)."""
    if flags is None:
        if type_code in (ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_LOCAL_PREF, ATTR_ATOMIC_AGGREGATE):
            flags = F_TRANSITIVE
        elif type_code in (ATTR_MED, ATTR_MP_REACH, ATTR_MP_UNREACH):
            flags = F_OPTIONAL
        else:
            flags = F_OPTIONAL | F_TRANSITIVE
    n = len(value) if length is None else length
    if n > 255:
        flags |= F_EXTLEN
    if flags & F_EXTLEN:
        return struct.pack(">BBH", flags, type_code, n) + value
    return struct.pack(">BBB", flags, type_code, n) + value


def origin(value: int = 0) -> bytes:
    return attr(ATTR_ORIGIN, bytes([value]))


def as_path_value(path, as4: bool = True, seg_type: int = AS_SEQUENCE) -> bytes:
    """AS_PATH value: one or more segments of `seg_type` (<= 255 ASNs each)."""
    fmt = ">I" if as4 else ">H"
    out = b""
    p = list(path)
    while p:
        chunk, p = p[:255], p[255:]
        out += bytes([seg_type, len(chunk)]) + b"".join(struct.pack(fmt, a) for a in chunk)
    return out


def as_path(path, as4: bool = True) -> bytes:
    return attr(ATTR_AS_PATH, as_path_value(path, as4))


def next_hop(ip: str) -> bytes:
    return attr(ATTR_NEXT_HOP, socket.inet_aton(ip))


def med(v: int) -> bytes:
    return attr(ATTR_MED, struct.pack(">I", v))


def local_pref(v: int) -> bytes:
    return attr(ATTR_LOCAL_PREF, struct.pack(">I", v))


def communities(vals) -> bytes:
    return attr(ATTR_COMMUNITIES, b"".join(struct.pack(">I", v) for v in vals))


def prefix(p: str) -> bytes:
    """NLRI encoding of one prefix: length byte + minimal address octets."""
    net = ipaddress.ip_network(p, strict=False)
    nb = (net.prefixlen + 7) // 8
    return bytes([net.prefixlen]) + net.network_address.packed[:nb]


def nlri(prefixes) -> bytes:
    return b"".join(prefix(p) for p in prefixes)


def mp_reach(afi: int, safi: int, nh: bytes, nlri_bytes: bytes) -> bytes:
    """MP_REACH_NLRI attribute; `nh` is the raw next-hop field (16 or 32 bytes for IPv6)."""
    value = struct.pack(">HBB", afi, safi, len(nh)) + nh + b"\x00" + nlri_bytes
    return attr(ATTR_MP_REACH, value)


def mp_reach6(prefixes, nh: str) -> bytes:
    return mp_reach(AFI_IPV6, SAFI_UNICAST, ipaddress.IPv6Address(nh).packed, nlri(prefixes))


def mp_unreach(afi: int, safi: int, nlri_bytes: bytes = b"") -> bytes:
    return attr(ATTR_MP_UNREACH, struct.pack(">HB", afi, safi) + nlri_bytes)


def update(withdrawn: bytes = b"", attrs: bytes = b"", nlri_bytes: bytes = b"", *,
           withdrawn_len: int | None = None, attrs_len: int | None = None,
           length: int | None = None) -> bytes:
    """UPDATE message from raw fields; the three length fields can be overridden."""
    wl = len(withdrawn) if withdrawn_len is None else withdrawn_len
    al = len(attrs) if attrs_len is None else attrs_len
    body = struct.pack(">H", wl) + withdrawn + struct.pack(">H", al) + attrs + nlri_bytes
    return header(UPDATE, body, length=length)


def announce4(prefixes, path, nh: str, orig: int = 0, as4: bool = True, extra: bytes = b"") -> bytes:
    attrs = origin(orig) + as_path(path, as4) + next_hop(nh) + extra
    return update(attrs=attrs, nlri_bytes=nlri(prefixes))


def withdraw4(prefixes) -> bytes:
    return update(withdrawn=nlri(prefixes))


def announce6(prefixes, path, nh: str, orig: int = 0, as4: bool = True) -> bytes:
    attrs = origin(orig) + as_path(path, as4) + mp_reach6(prefixes, nh)
    return update(attrs=attrs)


def withdraw6(prefixes) -> bytes:
    return update(attrs=mp_unreach(AFI_IPV6, SAFI_UNICAST, nlri(prefixes)))


def end_of_rib(afi: int = AFI_IPV4) -> bytes:
    if afi == AFI_IPV4:
        return update()
    return update(attrs=mp_unreach(afi, SAFI_UNICAST))


# --------------------------------------------------------------------------- decoding

@dataclass
class Message:
    type: int
    body: bytes
    raw: bytes = b""
    at: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type{self.type}")

    def __repr__(self) -> str:
        return f"<{self.name} {len(self.raw)}B>"


@dataclass
class Notification:
    code: int
    subcode: int
    data: bytes = b""

    def __str__(self) -> str:
        return f"NOTIFICATION {self.code}/{self.subcode} data={self.data.hex()}"


@dataclass
class OpenInfo:
    version: int
    my_as: int
    hold: int
    router_id: str
    caps: list  # [(code, value)]

    @property
    def asn(self) -> int:
        for c, v in self.caps:
            if c == 65 and len(v) == 4:
                return struct.unpack(">I", v)[0]
        return self.my_as

    def families(self) -> set:
        out = set()
        for c, v in self.caps:
            if c == 1 and len(v) == 4:
                afi, _, safi = struct.unpack(">HBB", v)
                out.add((afi, safi))
        return out


def parse_notification(body: bytes) -> Notification:
    if len(body) < 2:
        return Notification(0, 0, body)
    return Notification(body[0], body[1], body[2:])


def parse_open(body: bytes) -> OpenInfo:
    version, my_as, hold, rid, plen = struct.unpack(">BHH4sB", body[:10])
    params = body[10:10 + plen]
    caps = []
    i = 0
    while i + 2 <= len(params):
        ptype, pl = params[i], params[i + 1]
        pv = params[i + 2:i + 2 + pl]
        i += 2 + pl
        if ptype == 2:
            j = 0
            while j + 2 <= len(pv):
                c, cl = pv[j], pv[j + 1]
                caps.append((c, pv[j + 2:j + 2 + cl]))
                j += 2 + cl
    return OpenInfo(version, my_as, hold, socket.inet_ntoa(rid), caps)


def split_messages(buf: bytearray) -> list[Message]:
    """Pop every complete message off the front of `buf`."""
    out = []
    while len(buf) >= HEADER_LEN:
        (length,) = struct.unpack(">H", buf[16:18])
        if length < HEADER_LEN:
            raise ValueError(f"peer sent bad length {length}")
        if len(buf) < length:
            break
        raw = bytes(buf[:length])
        del buf[:length]
        out.append(Message(raw[18], raw[HEADER_LEN:], raw))
    return out


# --------------------------------------------------------------------------- speaker

class BgpError(Exception):
    pass


class PeerClosed(BgpError):
    """The peer closed the connection (possibly after a NOTIFICATION)."""


class RawBgp:
    """One raw BGP session over TCP. A reader thread queues incoming messages;
    an optional keepalive thread sends KEEPALIVEs until stopped."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.q: queue.Queue = queue.Queue()
        self.received: list[Message] = []  # every message, in order
        self.closed = threading.Event()  # EOF / reset seen by the reader
        self.close_reason = ""
        self.peer_open: OpenInfo | None = None
        self._ka_stop = threading.Event()
        self._ka_thread: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self.last_sent = 0.0  # monotonic time of our last write
        self.negotiated_hold = None
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # ---- connection
    @classmethod
    def connect(cls, host: str, port: int, source: str | None = None, timeout: float = 5.0,
                md5: str | None = None) -> "RawBgp":
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if md5 is not None:
            set_tcp_md5(s, host, md5)
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        s.settimeout(None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s)

    @classmethod
    def accept(cls, listen_addr: str, port: int, timeout: float = 10.0) -> "RawBgp":
        """Wait for one incoming connection (for peers that connect to us)."""
        fam = socket.AF_INET6 if ":" in listen_addr else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((listen_addr, port))
        ls.listen(1)
        ls.settimeout(timeout)
        try:
            s, _ = ls.accept()
        finally:
            ls.close()
        s.settimeout(None)
        return cls(s)

    def _read_loop(self):
        buf = bytearray()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.close_reason = "eof"
                    break
                buf += data
                for m in split_messages(buf):
                    self.received.append(m)
                    self.q.put(m)
        except OSError as e:
            self.close_reason = f"{type(e).__name__}: {e}"
        except ValueError as e:
            self.close_reason = str(e)
        finally:
            self.closed.set()
            self.q.put(None)

    # ---- sending
    def send_raw(self, data: bytes):
        with self._send_lock:
            self.sock.sendall(data)
            self.last_sent = time.monotonic()

    def send_keepalive(self):
        self.send_raw(keepalive())

    def send_notification(self, code: int, subcode: int = 0, data: bytes = b""):
        self.send_raw(notification(code, subcode, data))

    def announce4(self, prefixes, path, nh: str, **kw):
        self.send_raw(announce4(prefixes, path, nh, **kw))

    def withdraw4(self, prefixes):
        self.send_raw(withdraw4(prefixes))

    def announce6(self, prefixes, path, nh: str, **kw):
        self.send_raw(announce6(prefixes, path, nh, **kw))

    def start_keepalives(self, interval: float):
        self.stop_keepalives()
        self._ka_stop = threading.Event()
        stop = self._ka_stop

        def loop():
            while not stop.wait(interval):
                if self.closed.is_set():
                    return
                try:
                    self.send_keepalive()
                except OSError:
                    return

        self._ka_thread = threading.Thread(target=loop, daemon=True)
        self._ka_thread.start()

    def stop_keepalives(self):
        self._ka_stop.set()
        if self._ka_thread is not None:
            self._ka_thread.join(timeout=2)
            self._ka_thread = None

    # ---- receiving
    def recv(self, timeout: float) -> Message:
        """Next message; raises PeerClosed on EOF, TimeoutError on timeout."""
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no BGP message within {timeout}s") from None
        if m is None:
            self.q.put(None)  # keep the EOF sticky
            raise PeerClosed(self.close_reason)
        return m

    def recv_until(self, pred, timeout: float) -> Message:
        """First message with pred(m) true; other messages are skipped (but kept in .received)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching BGP message within {timeout}s")
            m = self.recv(left)
            if pred(m):
                return m

    def wait_notification(self, timeout: float) -> Notification | None:
        """Wait for a NOTIFICATION.  Returns it, or None if the peer closed
        without sending one; raises TimeoutError if neither happens in time."""
        try:
            m = self.recv_until(lambda m: m.type == NOTIFICATION, timeout)
            return parse_notification(m.body)
        except PeerClosed:
            return None

    def wait_closed(self, timeout: float) -> bool:
        return self.closed.wait(timeout)

    def notifications(self) -> list[Notification]:
        return [parse_notification(m.body) for m in self.received if m.type == NOTIFICATION]

    # ---- session setup
    def establish(self, asn: int, hold: int = 90, router_id: str = "10.255.0.1",
                  caps: list[bytes] | None = None, timeout: float = 10.0,
                  keepalive_interval: float | None = None) -> OpenInfo:
        """Send OPEN, read the peer's OPEN, exchange KEEPALIVEs: Established.
        Starts the keepalive thread (interval hold/3 unless given; none for hold 0)."""
        self.send_raw(open_msg(asn, hold, router_id, caps))
        m = self.recv_until(lambda m: m.type in (OPEN, NOTIFICATION), timeout)
        if m.type == NOTIFICATION:
            raise BgpError(f"peer refused OPEN: {parse_notification(m.body)}")
        self.peer_open = parse_open(m.body)
        self.send_keepalive()
        m = self.recv_until(lambda m: m.type in (KEEPALIVE, NOTIFICATION, UPDATE), timeout)
        if m.type == NOTIFICATION:
            raise BgpError(f"peer closed in OpenConfirm: {parse_notification(m.body)}")
        negotiated = min(hold, self.peer_open.hold) if hold and self.peer_open.hold else 0
        self.negotiated_hold = negotiated
        if keepalive_interval is None and negotiated:
            keepalive_interval = max(negotiated / 3.0, 0.5)
        if keepalive_interval:
            self.start_keepalives(keepalive_interval)
        return self.peer_open

    def close(self):
        self.stop_keepalives()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed.wait(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def set_tcp_md5(sock: socket.socket, peer: str, password: str):
    """TCP_MD5SIG (RFC 2385) for `peer` on `sock` (Linux struct tcp_md5sig)."""
    TCP_MD5SIG = 14
    key = password.encode()
    if ":" in peer:
        ss = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, peer), 0)
    else:
        ss = struct.pack("=HH4s", socket.AF_INET, 0, socket.inet_aton(peer))
    ss = ss.ljust(128, b"\x00")
    # struct tcp_md5sig { sockaddr_storage addr; u8 flags; u8 prefixlen; u16 keylen; int ifindex; u8 key[80]; }
    val = ss + struct.pack("=BBHi", 0, 0, len(key), 0) + key.ljust(80, b"\x00")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, val)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connect", required=True, help="HOST:PORT")
    ap.add_argument("--source")
    ap.add_argument("--asn", type=int, required=True)
    ap.add_argument("--hold", type=int, default=90)
    ap.add_argument("--router-id", default="10.255.0.1")
    ap.add_argument("--announce", action="append", default=[])
    ap.add_argument("--path", default="")
    ap.add_argument("--nh", default="", help="IPv4 next hop (default: --source)")
    ap.add_argument("--nh6", default="", help="IPv6 next hop (default: ::ffff:NH)")
    ap.add_argument("--raw-hex", action="append", default=[], help="send these bytes (hex) after establishing")
    ap.add_argument("--linger", type=float, default=3)
    a = ap.parse_args()
    host, port = a.connect.rsplit(":", 1)
    s = RawBgp.connect(host, int(port), a.source)
    o = s.establish(a.asn, a.hold, a.router_id)
    print(f"established with AS{o.asn} hold={o.hold} rid={o.router_id} caps={[(c, v.hex()) for c, v in o.caps]}")
    path = [int(x) for x in a.path.split()]
    v4 = [p for p in a.announce if ":" not in p]
    v6 = [p for p in a.announce if ":" in p]
    if v4:
        s.announce4(v4, path, a.nh or a.source)
    if v6:
        s.announce6(v6, path, a.nh6 or "::ffff:" + (a.nh or a.source))
    for h in a.raw_hex:
        s.send_raw(bytes.fromhex(h))
    deadline = time.monotonic() + a.linger
    while time.monotonic() < deadline:
        try:
            m = s.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        except PeerClosed as e:
            print("closed:", e)
            break
        print(m, parse_notification(m.body) if m.type == NOTIFICATION else "")
    s.close()


if __name__ == "__main__":
    main()
