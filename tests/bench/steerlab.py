"""Shared parts of the steering benchmarks with full tables in a real sparrowd
(`steer_update_latency.py`, `churn.py`).

- `write_config`: the sparrowd config: local POP ``bench`` (AS 64999), POP ``y`` (AS 65010,
  a passive ``role: pop`` peer 127.0.0.10), four POPs on frequent transit ASNs of the
  generated paths (1239, 7018, 701, 3257); passive peers 127.0.0.2.. for the tables (the
  anchors' table ASNs), optional extra peers; DNS with a steered ``www.bench.test`` (one A
  per POP: ``pop_a(i)``).
- `Lab`: starts sparrowd with that config, feeds the tables with the anchors'
  ``bgp_blaster.py send`` (pre-encoded ``BINS/peerI.bin``, made by `ensure_bins` when
  missing), waits until all paths are in and no snapshot has been published for 2 s
  (`converge` returns the convergence record), opens POP y's session (`open_pop_y`: a raw
  speaker that discards the table sparrowd exports to it, waits until drained), and kills
  what it started, by PID (`close`).
- `pick_targets`: probe prefixes (a /24 inside a shorter table prefix, a /48 inside a
  /29-/40, an existing IPv4 prefix with only long paths) checked with ``sparrowctl route``.
- `time_change`: writes one UPDATE on a session and polls a dnspython ECS query over one
  UDP socket until the expected answer comes back (bounded); returns the time taken.
- `proc_cpu`, `proc_status`, `busy`, `pct`, `stats`: measurement helpers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime

import dns.edns
import dns.exception
import dns.message
import dns.query
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(ROOT, "tests/lab"))
import rawbgp  # noqa: E402

LOCAL_AS = 64999
Y_AS = 65010
Y_ADDR = "127.0.0.10"
TRANSIT_POPS = [1239, 7018, 701, 3257]
ZONE = "bench.test"
# Next hops the tables are encoded with (as tests/bench/steer-bench.sh does).
BIN_NH4, BIN_NH6 = "192.0.2.1", "2001:db8:ffff::1"


def pop_list(extra=()):
    """(name, ASN) of every POP; `extra`: ASNs of feeding peers made `role: pop` peers."""
    pops = [("bench", LOCAL_AS), ("y", Y_AS)] + [(f"t{a}", a) for a in TRANSIT_POPS]
    return pops + [(f"p{a}", a) for a in extra]


def pop_a(i: int) -> str:
    return f"10.0.0.{i + 1}"


def busy() -> list:
    """Other CPU-heavy work on this shared 2-core box (DNS benchmarks, rustc) running now."""
    r = subprocess.run(["pgrep", "-fa", "dns_bench|compare_dns|ecsperf|knotd|dnsperf|/rustc "],
                       capture_output=True, text=True)
    keys = ("dns_bench", "compare_dns", "ecsperf", "knotd", "dnsperf", "rustc")
    return sorted({k for ln in r.stdout.splitlines() for k in keys if k in ln})


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_config(path, sock, bgp_port, dns_port, peer_asns, log_level, pop_peers=(), extra_peers=()):
    """`pop_peers`: indices of feeding peers configured `role: pop` (a POP of their ASN).
    `extra_peers`: more passive peers, (name, address, asn, role) each."""
    pops = pop_list([peer_asns[i] for i in pop_peers])
    lines = [
        f"local_asn: {LOCAL_AS}",
        "router_id: 192.0.2.254",
        "pop: bench",
        "pops:",
        *[f"  - {{name: {n}, asn: {a}}}" for n, a in pops],
        f"listen: {{enabled: true, addresses: [127.0.0.1], port: {bgp_port}}}",
        f"admin: {{socket: {sock}}}",
        f"logging: {{level: '{log_level}', format: json}}",
        "peers:",
    ]
    peers = [(f"p{i}", f"127.0.0.{2 + i}", asn, "pop" if i in pop_peers else "upstream")
             for i, asn in enumerate(peer_asns)]
    peers += [("y", Y_ADDR, Y_AS, "pop")] + list(extra_peers)
    for name, addr, asn, role in peers:
        lines.append(f"  - {{name: {name}, address: {addr}, remote_asn: {asn}, role: {role}, "
                     "passive: true, multihop: 255, hold_time: 240}")
    lines += [
        f'dns: {{listen: ["127.0.0.1:{dns_port}"]}}',
        "zones:",
        f"  - origin: {ZONE}",
        f"    soa: {{mname: ns1.{ZONE}, rname: hostmaster.{ZONE}}}",
        f"    ns: [ns1.{ZONE}]",
        "    steered:",
        "      - name: www",
        "        ttl: 30",
        "        pops:",
        *[f"          {n}: {{a: [{pop_a(i)}]}}" for i, (n, _) in enumerate(pops)],
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024.0  # MiB
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Ctl:
    """sparrowctl (next to the sparrowd binary) on the admin socket."""

    def __init__(self, sock, bindir):
        self.sock = sock
        self.bin = os.path.join(bindir, "sparrowctl")

    def run(self, *args, json_out=True):
        cmd = [self.bin, "-s", self.sock] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd}: {r.stderr.strip()}")
        return json.loads(r.stdout) if json_out else r.stdout


class LogTail:
    """Parses sparrowd's JSON log lines (wall-clock timestamps -> monotonic)."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.events = []
        self.offset = time.time() - time.monotonic()

    def poll(self):
        with open(self.path) as f:
            f.seek(self.pos)
            data = f.read()
        last_nl = data.rfind("\n")
        if last_nl < 0:
            return
        self.pos += len(data[: last_nl + 1].encode())
        for line in data[: last_nl + 1].splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ts = ev.get("timestamp")
            if ts:
                t = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                ev["mono"] = t - self.offset
            self.events.append(ev)

    def steer(self):
        return [e for e in self.events if str(e.get("fields", {}).get("message", "")).startswith("steering:")]

    def publications(self, t0=None, t1=None):
        """'steering: snapshot published' events (monotonic time within [t0, t1] if given)."""
        return [e for e in self.steer() if e["fields"]["message"] == "steering: snapshot published"
                and (t0 is None or e.get("mono", 0) >= t0) and (t1 is None or e.get("mono", 0) <= t1)]


class DrainingBgp(rawbgp.RawBgp):
    """RawBgp whose reader keeps only the first messages (OPEN, KEEPALIVE, NOTIFICATION)
    and afterwards only counts bytes: sparrowd exports its whole table to a POP peer."""

    def _read_loop(self):
        buf = bytearray()
        self.rx_bytes = 0
        self.rx_last = time.monotonic()
        kept = 0
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    self.close_reason = "eof"
                    break
                self.rx_bytes += len(data)
                self.rx_last = time.monotonic()
                if kept < 3:
                    buf += data
                    for m in rawbgp.split_messages(buf):
                        if kept < 3:
                            kept += 1
                            self.q.put(m)
                        elif m.type == rawbgp.NOTIFICATION:
                            self.q.put(m)
                    if kept >= 3:
                        buf.clear()  # the rest is export data: not parsed
        except OSError as e:
            self.close_reason = f"{type(e).__name__}: {e}"
        finally:
            self.closed.set()
            self.q.put(None)


def dns_answer(sock, port, addr: str, srclen: int) -> str | None:
    q = dns.message.make_query(f"www.{ZONE}", "A", use_edns=0,
                               options=[dns.edns.ECSOption(addr, srclen)])
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1.0, sock=sock)
    except (dns.exception.Timeout, OSError):
        return None
    for rr in r.answer:
        if rr.rdtype == dns.rdatatype.A:
            return sorted(x.address for x in rr)[0]
    return None


# More-specific modes: (mode, IP version, lengths of the table prefix to cover,
# length of the more-specific announced inside it, ECS source length queried).
MORE_SPECIFIC = [
    ("v4-more-specific", 4, range(16, 23), 24, 24),
    ("v6-more-specific", 6, range(29, 41), 48, 56),
]


def pick_targets(ctl: Ctl, tables_dir: str, pop_asns: set, want: int = 10):
    """Targets per mode: (prefix to announce, address to query, ECS length, as path)."""
    out = {"v4-more-specific": [], "v6-more-specific": [], "v4-better-path": []}
    step = 0
    with open(os.path.join(tables_dir, "peer0.txt")) as f:
        for line in f:
            step += 1
            if step % 997:
                continue
            if all(len(v) >= want for v in out.values()):
                break
            pfx, path, _ = line.rstrip("\n").split("|")
            net = ipaddress.ip_network(pfx)
            asns = [int(a) for a in path.split()]
            ms = [m for m in MORE_SPECIFIC
                  if m[1] == net.version and net.prefixlen in m[2] and len(out[m[0]]) < want]
            if ms:
                mode, _, _, sub_len, ecs_len = ms[0]
                q = ipaddress.ip_network(f"{net.network_address}/{sub_len}")
                addr = str(q.network_address + 1)
                r = ctl.run("route", addr)
                if r.get("prefix") == pfx:
                    out[mode].append((str(q), addr, ecs_len, [Y_AS, 64600]))
            elif (net.version == 4 and net.prefixlen <= 24 and len(asns) >= 4
                  and asns[-1] not in pop_asns and len(out["v4-better-path"]) < want):
                addr = str(net.network_address + 1)
                r = ctl.run("route", addr)
                if r.get("prefix") != pfx or len(r.get("paths", [])) < 4:
                    continue
                lens = [sum(len(s["asns"]) for s in p["as_path_segments"]) for p in r["paths"]]
                if min(lens) >= 3:
                    out["v4-better-path"].append((pfx, addr, 24, [Y_AS, asns[-1]]))
    return out


def update_for(prefix: str, path, announce: bool, nh4="192.0.2.10", nh6="2001:db8::10") -> bytes:
    net = ipaddress.ip_network(prefix)
    if net.version == 4:
        return rawbgp.announce4([prefix], path, nh4) if announce else rawbgp.withdraw4([prefix])
    return rawbgp.announce6([prefix], path, nh6) if announce else rawbgp.withdraw6([prefix])


def time_change(session, qsock, dns_port, msg: bytes, addr: str, srclen: int, expect: str,
                bound: float = 5.0):
    """Write `msg` on `session`, then query `addr` (ECS /srclen) until the answer is `expect`.
    Returns (ok, ms from just before the write until the matching answer, queries sent)."""
    t0 = time.monotonic()
    session.send_raw(msg)
    nq = 0
    while time.monotonic() - t0 < bound:
        nq += 1
        if dns_answer(qsock, dns_port, addr, srclen) == expect:
            return True, (time.monotonic() - t0) * 1e3, nq
    return False, (time.monotonic() - t0) * 1e3, nq


def jsonl_emitter(path: str):
    """`emit(rec)`: stamps `rec` with the time, prints it and appends it to the JSON-lines
    file `path` (created with its directory). Returns (emit, close)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    out = open(path, "a")

    def emit(rec):
        rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps(rec)
        print(line, flush=True)
        out.write(line + "\n")
        out.flush()
    return emit, out.close


def pct(vals, p):
    s = sorted(vals)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def stats(vals) -> dict:
    """median / min / p50 / p99 / max (ms, 2 decimals) and n of `vals`."""
    return {"median_ms": round(statistics.median(vals), 2), "min_ms": round(min(vals), 2),
            "p50_ms": round(pct(vals, 50), 2), "p99_ms": round(pct(vals, 99), 2),
            "max_ms": round(max(vals), 2), "n": len(vals)}


def ensure_bins(tables: str, bins: str, anchors: str, peers: int):
    """Pre-encode the first `peers` tables for the blaster (as steer-bench.sh) where missing."""
    os.makedirs(bins, exist_ok=True)
    for i in range(peers):
        out = os.path.join(bins, f"peer{i}.bin")
        if not os.path.exists(out + ".json"):
            subprocess.run([sys.executable, os.path.join(anchors, "bgp_blaster.py"), "encode",
                            "--table", os.path.join(tables, f"peer{i}.txt"), "--nh4", BIN_NH4,
                            "--nh6", BIN_NH6, "--out", out], check=True, stdout=subprocess.DEVNULL)


class Lab:
    """One sparrowd with `peers` full tables fed by blasters, and POP y's session.
    `args`: peers, tables, bins, anchors, sparrowd, timeout, pop_peers."""

    def __init__(self, args, workdir: str, log_level: str = "info,sparrow::steer=debug",
                 extra_peers=()):
        self.args = args
        os.makedirs(workdir, exist_ok=True)
        self.sock = os.path.join(workdir, "s.sock")
        self.log_path = os.path.join(workdir, "sparrowd.log")
        self.meta = json.load(open(os.path.join(args.tables, "meta.json")))
        self.peer_asns = self.meta["peer_asns"][: args.peers]
        self.bgp_port, self.dns_port = free_port(), free_port()
        cfg = os.path.join(workdir, "steer-sparrow.yaml")
        write_config(cfg, self.sock, self.bgp_port, self.dns_port, self.peer_asns, log_level,
                     args.pop_peers, extra_peers)
        ensure_bins(args.tables, args.bins, args.anchors, args.peers)
        self.procs = []
        self.y = None
        self.logf = open(self.log_path, "w")
        self.sp = subprocess.Popen([args.sparrowd, "--config", cfg], stdout=self.logf,
                                   stderr=subprocess.STDOUT)
        self.procs.append(self.sp)
        self.ctl = Ctl(self.sock, os.path.dirname(os.path.abspath(args.sparrowd)))
        self.tail = LogTail(self.log_path)

    def pop_asns(self) -> set:
        return set(a for _, a in pop_list(self.peer_asns))

    def wait_started(self):
        deadline = time.monotonic() + 20
        while True:
            try:
                self.ctl.run("paths", json_out=False)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline or self.sp.poll() is not None:
                    raise RuntimeError(f"sparrowd did not start; see {self.log_path}")
                time.sleep(0.05)

    def converge(self, run_no: int) -> dict:
        """Start, feed the tables, wait for convergence; the 'convergence' record."""
        args, sp, ctl, tail = self.args, self.sp, self.ctl, self.tail
        self.wait_started()
        time.sleep(1.0)
        idle = proc_status(sp.pid)
        busy_start = busy()
        cpu0 = proc_cpu(sp.pid)
        blasters = []
        for i, asn in enumerate(self.peer_asns):
            b = subprocess.Popen(
                [sys.executable, os.path.join(args.anchors, "bgp_blaster.py"), "send",
                 "--bin", os.path.join(args.bins, f"peer{i}.bin"), "--connect", f"127.0.0.1:{self.bgp_port}",
                 "--bind", f"127.0.0.{2 + i}", "--asn", str(asn), "--linger", "3600"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(b)
            blasters.append(b)
        bl_events = []

        def read_blaster(b):
            for line in b.stdout:
                try:
                    bl_events.append(json.loads(line))
                except ValueError:
                    pass
        for b in blasters:
            threading.Thread(target=read_blaster, args=(b,), daemon=True).start()
        want = sum(json.load(open(os.path.join(args.bins, f"peer{i}.bin.json"))).get("prefixes", 0)
                   for i in range(args.peers)) or args.peers * self.meta["total"]
        t_start = time.monotonic()
        t_all = None
        deadline = t_start + args.timeout
        quiet_since = None
        n = 0
        while time.monotonic() < deadline:
            n = int(ctl.run("paths", json_out=False).strip() or 0)
            if t_all is None and n >= want:
                t_all = time.monotonic()
            tail.poll()
            st = tail.steer()
            rib_ready = any("answering from the RIB" in e["fields"]["message"] for e in st)
            if t_all is not None and rib_ready:
                last = max(e.get("mono", 0) for e in st)
                if time.monotonic() - last >= 2.0:
                    quiet_since = last
                    break
            time.sleep(0.05)
        if t_all is None or quiet_since is None:
            raise RuntimeError(f"no convergence within {args.timeout}s (paths {n}/{want})")
        conv = proc_status(sp.pid)
        cpu1 = proc_cpu(sp.pid)
        est = [e["t"] for e in bl_events if e.get("event") == "established" and "t" in e]
        t_est = min(est) if est else t_start
        st = tail.steer()
        first = next(e for e in st if "answering from the RIB" in e["fields"]["message"])
        later = tail.publications()
        us = [e["fields"]["us"] for e in later]
        last_pub = later[-1] if later else first
        return {
            "what": "convergence", "run": run_no, "peers": args.peers, "paths": want,
            "pop_peers": args.pop_peers,
            "ingest_s": round(t_all - t_est, 3),
            "first_rib_snapshot_ms": first["fields"].get("ms"),
            "first_rib_snapshot_at_s": round(first["mono"] - t_est, 3),
            "first_rib_prefixes_v4": first["fields"].get("prefixes_v4"),
            "first_rib_prefixes_v6": first["fields"].get("prefixes_v6"),
            "publications_after_first": len(later),
            "publication_us_median": statistics.median(us) if us else None,
            "publication_us_max": max(us) if us else None,
            "last_publication_after_all_paths_s": round(last_pub["mono"] - t_all, 3),
            "final_generation": last_pub["fields"].get("generation"),
            "prefixes_v4": last_pub["fields"].get("prefixes_v4"),
            "prefixes_v6": last_pub["fields"].get("prefixes_v6"),
            "rankings": last_pub["fields"].get("rankings"),
            "full_builds_after_first": sum(1 for e in later if "full" in (e["fields"].get("v4"), e["fields"].get("v6"))),
            "rss_idle_mib": round(idle.get("VmRSS", 0), 1),
            "rss_converged_mib": round(conv.get("VmRSS", 0), 1),
            "hwm_mib": round(conv.get("VmHWM", 0), 1),
            "cpu_s": round(cpu1 - cpu0, 2),
            "blaster_established": len(est),
            "overlap": sorted(set(busy_start) | set(busy())),
        }

    def open_pop_y(self, run_no: int) -> dict:
        """POP y's session (AS 65010, role pop): established, its export drained; the record."""
        y = DrainingBgp.connect("127.0.0.1", self.bgp_port, source=Y_ADDR)
        self.y = y
        y.establish(asn=Y_AS, hold=240, router_id="10.255.0.10")
        t_y = time.monotonic()
        dl = t_y + 120
        while time.monotonic() < dl and time.monotonic() - y.rx_last < 2.0:
            time.sleep(0.1)
        pops = {p["name"]: p for p in self.ctl.run("pops")["pops"]}
        if not pops["y"].get("up"):
            raise RuntimeError(f"POP y not up: {pops['y']}")
        return {"what": "pop_session_export", "run": run_no, "bytes": y.rx_bytes,
                "drained_after_s": round(y.rx_last - t_y, 3)}

    def close(self):
        if self.y is not None:
            self.y.close()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.logf.close()


# --- Used by pops_scale.py: sparrowd and blasters started by hand, convergence from the log.

PUBLISHED = "steering: snapshot published"
FROM_RIB = "answering from the RIB"


def ensure_bins_counted(anchors: str, tables: str, bins: str, peers: int) -> list:
    """`bins/peerI.bin` for I < peers, encoded from `tables/peerI.txt` with the anchors'
    blaster (`bgp_blaster.py encode`, next hops from meta.json) where missing. Returns
    the prefix count of each."""
    os.makedirs(bins, exist_ok=True)
    meta = json.load(open(os.path.join(tables, "meta.json")))
    counts = []
    for i in range(peers):
        out = os.path.join(bins, f"peer{i}.bin")
        if not (os.path.exists(out) and os.path.exists(out + ".json")):
            subprocess.run(
                [sys.executable, os.path.join(anchors, "bgp_blaster.py"), "encode",
                 "--table", os.path.join(tables, f"peer{i}.txt"), "--out", out,
                 "--nh4", meta["next_hops4"][i], "--nh6", meta["next_hops6"][i]],
                check=True, stdout=subprocess.DEVNULL)
        counts.append(json.load(open(out + ".json"))["prefixes"])
    return counts


def start_sparrowd(binary: str, cfg: str, sock: str, log_path: str, timeout: float = 20,
                   ctl_bin: str | None = None):
    """sparrowd with `cfg`, its output to `log_path`; returns (Popen, Ctl) once `paths`
    answers on the admin socket `sock`. `ctl_bin`: the sparrowctl to use (default: the one next to
    `binary`)."""
    logf = open(log_path, "w")
    sp = subprocess.Popen([binary, "--config", cfg], stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    ctl = Ctl(sock, os.path.dirname(os.path.abspath(binary)))
    if ctl_bin:
        ctl.bin = ctl_bin
    deadline = time.monotonic() + timeout
    while True:
        try:
            ctl.run("paths", json_out=False)
            if sp.poll() is not None:  # another daemon answered on this socket
                raise RuntimeError(f"sparrowd exited ({sp.returncode}); see {log_path}")
            return sp, ctl
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline or sp.poll() is not None:
                stop_all([sp])
                raise RuntimeError(f"sparrowd did not start; see {log_path}")
            time.sleep(0.05)


def start_blasters(anchors: str, bins: str, port: int, asns: list, first_addr: int = 2):
    """One `bgp_blaster.py send` per ASN: peer i from 127.0.0.(first_addr + i) with
    bins/peerI.bin. Returns (Popen list, events): events fills with the blasters' JSON lines
    (`established`, `sent`, ... with monotonic `t`)."""
    procs, events = [], []

    def read(p):
        for line in p.stdout:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    for i, asn in enumerate(asns):
        p = subprocess.Popen(
            [sys.executable, os.path.join(anchors, "bgp_blaster.py"), "send",
             "--bin", os.path.join(bins, f"peer{i}.bin"), "--connect", f"127.0.0.1:{port}",
             "--bind", f"127.0.0.{first_addr + i}", "--asn", str(asn), "--linger", "3600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=read, args=(p,), daemon=True).start()
        procs.append(p)
    return procs, events


def steer_fields(tail: LogTail, message: str) -> list:
    """The `fields` (plus `mono`, the monotonic time) of every steering log line whose
    message is `message` or contains it."""
    out = []
    for e in tail.steer():
        f = e.get("fields", {})
        if message in str(f.get("message", "")):
            out.append(dict(f, mono=e.get("mono")))
    return out


def wait_converged(ctl: Ctl, tail: LogTail, want: int, timeout: float, quiet: float = 2.0):
    """Until `sparrowctl paths` reaches `want`, steering answers from the RIB and no
    snapshot was published for `quiet` s. Returns (t_all_paths, t_last_publication),
    monotonic; raises on timeout."""
    t_all = None
    n = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = int(ctl.run("paths", json_out=False).strip() or 0)
        if t_all is None and n >= want:
            t_all = time.monotonic()
        tail.poll()
        if t_all is not None and steer_fields(tail, FROM_RIB):
            last = max(e.get("mono") or 0 for e in tail.steer())
            if time.monotonic() - last >= quiet:
                return t_all, last
        time.sleep(0.05)
    raise RuntimeError(f"no convergence within {timeout}s (paths {n}/{want})")


def stop_all(procs):
    """SIGTERM each process still running (by its Popen), then wait; SIGKILL after 15 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
