"""Shared parts of the steering benchmarks with full tables in a real sparrowd
(`steer_update_latency.py`, `churn.py`, `pops_scale.py`).

- `add_lab_args` / `run_runs`: the command-line options every one of them has (runs, peers,
  tables, bins, anchors, work directory, sparrowd, timeout, output file) and the loop over
  runs that appends every record to the JSON-lines output.
- `config_head`, `passive_peer`: the lines every generated sparrowd config starts with, and
  one passive feeding peer.

- `write_config`: the sparrowd config: local POP ``bench`` (AS 64999), POP ``y`` (AS 65010,
  a passive ``role: pop`` peer 127.0.0.10), four POPs on frequent transit ASNs of the
  generated paths (1239, 7018, 701, 3257); passive peers 127.0.0.2.. for the tables (the
  anchors' table ASNs), optional extra peers; DNS with a steered ``www.bench.test`` (one A
  per POP: ``pop_a(i)``).
- `Lab`: starts sparrowd with that config, feeds the tables with the anchors'
  ``bgp_blaster.py send`` (pre-encoded ``BINS/peerI.bin``, made by `ensure_bins` when
  missing), waits until all paths are in and no snapshot has been published for 2 s
  (`converge` returns the convergence record, the steps in `ingest`), opens POP y's session
  (`open_pop_y`: `drained_session`, a raw speaker that discards the table sparrowd exports
  to it, waits until drained), and kills what it started, by PID (`close`).
- `start_sparrowd`, `start_blasters`, `wait_converged`, `ingest`, `stop_all`: those steps one
  by one, for scripts that write their own config (`pops_scale.py`).
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


def config_head(pops, bgp_port, sock, log_level) -> list:
    """The first lines of a benchmark's sparrowd config: local POP ``bench`` (AS 64999), the
    POPs `pops` ((name, ASN) each), BGP on 127.0.0.1:`bgp_port`, the admin socket `sock`,
    JSON logs at `log_level`."""
    return [
        f"local_asn: {LOCAL_AS}",
        "router_id: 192.0.2.254",
        "pop: bench",
        "pops:",
        *[f"  - {{name: {n}, asn: {a}}}" for n, a in pops],
        f"listen: {{enabled: true, addresses: [127.0.0.1], port: {bgp_port}}}",
        f"admin: {{socket: {sock}}}",
        f"logging: {{level: '{log_level}', format: json}}",
    ]


def passive_peer(name, addr, asn, role) -> str:
    """One `peers` entry: a passive session from `addr` (multihop, hold time 240 s)."""
    return (f"  - {{name: {name}, address: {addr}, remote_asn: {asn}, role: {role}, "
            "passive: true, multihop: 255, hold_time: 240}")


def write_config(path, sock, bgp_port, dns_port, peer_asns, log_level, pop_peers=(), extra_peers=()):
    """`pop_peers`: indices of feeding peers configured `role: pop` (a POP of their ASN).
    `extra_peers`: more passive peers, (name, address, asn, role) each."""
    pops = pop_list([peer_asns[i] for i in pop_peers])
    lines = config_head(pops, bgp_port, sock, log_level) + ["peers:"]
    peers = [(f"p{i}", f"127.0.0.{2 + i}", asn, "pop" if i in pop_peers else "upstream")
             for i, asn in enumerate(peer_asns)]
    peers += [("y", Y_ADDR, Y_AS, "pop")] + list(extra_peers)
    lines += [passive_peer(*p) for p in peers]
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


def add_lab_args(ap, *, runs: int, peers: int, tables: str, bins: str, workdir: str,
                 timeout: float, out: str, peers_help: str = "feeding sessions, one full table each",
                 timeout_help: str | None = None):
    """The options every steering benchmark has, with its defaults: --runs, --peers, --tables,
    --bins, --anchors (../shared/anchors), --workdir, --sparrowd (target/release/sparrowd),
    --timeout (the convergence bound, s) and --out (the JSON-lines file)."""
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--peers", type=int, default=peers, help=peers_help)
    ap.add_argument("--tables", default=tables)
    ap.add_argument("--bins", default=bins)
    ap.add_argument("--anchors", default=os.path.abspath(os.path.join(ROOT, "../shared/anchors")))
    ap.add_argument("--workdir", default=workdir)
    ap.add_argument("--sparrowd", default=os.path.join(ROOT, "target/release/sparrowd"))
    ap.add_argument("--timeout", type=float, default=timeout, help=timeout_help)
    ap.add_argument("--out", default=out)


def add_pop_peers_arg(ap):
    """--pop-peers: feeding peers made `role: pop` peers of their own POP (`Lab`'s `pop_peers`)."""
    ap.add_argument("--pop-peers", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                    help="feeding peers (0-based, comma list) configured as role: pop peers of their own POP")


def run_runs(args, one_run) -> list:
    """`one_run(args, run_no, emit)` for run_no 1..args.runs, every record emitted to args.out
    (`jsonl_emitter`); the runs' results (lists) one after the other."""
    emit, close = jsonl_emitter(args.out)
    results = []
    try:
        for r in range(1, args.runs + 1):
            results += one_run(args, r, emit) or []
    finally:
        close()
    return results


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
        self.y = None
        self.sp, self.ctl = start_sparrowd(args.sparrowd, cfg, self.sock, self.log_path)
        self.procs = [self.sp]
        self.tail = LogTail(self.log_path)

    def pop_asns(self) -> set:
        return set(a for _, a in pop_list(self.peer_asns))

    def converge(self, run_no: int) -> dict:
        """Feed the tables, wait for convergence; the 'convergence' record."""
        args, tail = self.args, self.tail
        want = sum(json.load(open(os.path.join(args.bins, f"peer{i}.bin.json"))).get("prefixes", 0)
                   for i in range(args.peers)) or args.peers * self.meta["total"]
        ing = ingest(self.sp, self.ctl, tail, args.anchors, args.bins, self.bgp_port, self.peer_asns,
                     want, args.timeout, self.procs)
        t_all, t_est = ing["t_all"], ing["t_est"]
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
            **ing["usage"],
        }

    def open_pop_y(self, run_no: int) -> dict:
        """POP y's session (AS 65010, role pop): established, its export drained; the record."""
        self.y, t_y = drained_session(self.bgp_port, Y_ADDR, Y_AS, "10.255.0.10")
        y = self.y
        pops = {p["name"]: p for p in self.ctl.run("pops")["pops"]}
        if not pops["y"].get("up"):
            raise RuntimeError(f"POP y not up: {pops['y']}")
        return {"what": "pop_session_export", "run": run_no, "bytes": y.rx_bytes,
                "drained_after_s": round(y.rx_last - t_y, 3)}

    def close(self):
        if self.y is not None:
            self.y.close()
        stop_all(self.procs)


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


def ingest(sp, ctl: Ctl, tail: LogTail, anchors: str, bins: str, port: int, asns: list, want: int,
           timeout: float, procs: list) -> dict:
    """After 1 s idle, feed the tables (`start_blasters`, added to `procs`) and
    `wait_converged`. Returns t_all (all paths in), t_last (last publication), t_est (first
    blaster Established, else the start) and `usage`, the convergence record's resource
    fields: RSS idle / converged / peak, sparrowd's CPU over the ingest, blasters
    established, other CPU-heavy work seen (`busy`)."""
    time.sleep(1.0)
    idle = proc_status(sp.pid)
    busy_start = busy()
    cpu0 = proc_cpu(sp.pid)
    blasters, events = start_blasters(anchors, bins, port, asns)
    procs += blasters
    t_start = time.monotonic()
    t_all, t_last = wait_converged(ctl, tail, want, timeout)
    conv = proc_status(sp.pid)
    cpu1 = proc_cpu(sp.pid)
    est = [e["t"] for e in events if e.get("event") == "established" and "t" in e]
    return {
        "t_all": t_all, "t_last": t_last, "t_est": min(est) if est else t_start,
        "usage": {
            "rss_idle_mib": round(idle.get("VmRSS", 0), 1),
            "rss_converged_mib": round(conv.get("VmRSS", 0), 1),
            "hwm_mib": round(conv.get("VmHWM", 0), 1),
            "cpu_s": round(cpu1 - cpu0, 2),
            "blaster_established": len(est),
            "overlap": sorted(set(busy_start) | set(busy())),
        },
    }


def drained_session(port: int, source: str, asn: int, router_id: str, quiet: float = 2.0,
                    poll: float = 0.1, bound: float = 120):
    """A `DrainingBgp` session from `source` to sparrowd's BGP port, established as `asn`
    (hold time 240 s), once nothing has come in on it for `quiet` s (its export drained;
    at most `bound` s). Returns (session, monotonic time it was established); a session that
    fails to establish is closed."""
    s = DrainingBgp.connect("127.0.0.1", port, source=source)
    try:
        s.establish(asn=asn, hold=240, router_id=router_id)
    except BaseException:
        s.close()
        raise
    t = time.monotonic()
    while time.monotonic() < t + bound and time.monotonic() - s.rx_last < quiet:
        time.sleep(poll)
    return s, t


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
