"""Helpers for replaying real MRT data into sparrowd on loopback (sparrow-replay).

Used by test_replay.py; usable by benchmarks. Everything stays on 127.0.0.0/8:
sparrowd listens on 127.0.0.1:<free port>, sparrow-replay's peer i connects from
127.0.1.(1+i). No namespaces, no other hosts. sparrowd runs through the harness.

  bin_dir(), data_dir()            where the binaries and the shared data live
  list_peers(mrt)                  sparrow-replay --list-peers, parsed
  replay_config(...)               a sparrowd YAML config with one passive peer per RIS peer
  ReplayRun                        sparrowd + sparrow-replay with bounded waits and cleanup
  parse_bgpdump(path)              bgpdump -m TABLE_DUMP lines -> dicts
  norm_*                           field normalisation shared by daemon dump and bgpdump
"""
import gzip
import json
import os
import subprocess
import time
from pathlib import Path

from harness import ROOT, Lab, free_port
from harness import sparrow_bin_dir as bin_dir

REPO = Path(__file__).resolve().parents[2]

LOCAL_ASN = 4200000000


def data_dir() -> Path:
    return Path(os.environ.get("SPARROW_DATA", REPO.parent / "shared" / "data"))


def list_peers(mrt, replay_bin=None, timeout=300):
    replay_bin = replay_bin or bin_dir() / "sparrow-replay"
    r = subprocess.run([str(replay_bin), "--list-peers", str(mrt)], capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"sparrow-replay --list-peers failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def replay_config(peers, port, local_asn=LOCAL_ASN, log_level="info", hold_time=90) -> str:
    """sparrowd YAML (admin socket ``@SOCKET@``, filled in by the harness)."""
    lines = [
        f"local_asn: {local_asn}",
        "router_id: 192.0.2.1",
        "pop: lab",
        f"pops: [{{name: lab, asn: {local_asn}}}]",
        f"listen: {{enabled: true, addresses: [127.0.0.1], port: {port}}}",
        "admin: {socket: @SOCKET@}",
        f"logging: {{level: {log_level}}}",
        "peers:",
    ]
    for p in peers:
        lines.append(
            f"  - {{name: ris{p['index']}, address: {p['bind']}, remote_asn: {p['peer_asn']}, "
            f"role: upstream, passive: true, multihop: 64, enforce_first_as: false, "
            f"hold_time: {hold_time}}}")
    return "\n".join(lines) + "\n"


class ReplayRun:
    """sparrowd (harness) on a generated config plus sparrow-replay, cleaned up by close()."""

    def __init__(self, workdir, mrt, peers, replay_args=(), log_level="info"):
        self.workdir = Path(workdir)
        self.lab = Lab("replay", self.workdir)
        self.mrt = Path(mrt)
        self.peers = peers
        self.port = free_port()
        self.replay_args = list(replay_args)
        self.log_level = log_level
        self.daemon = None
        self.replay = None
        self.t_replay = None
        self.eor_times = {}  # peer name -> seconds after start_replay when End-of-RIB was seen
        self._files = []

    # -- processes ---------------------------------------------------------
    def _open(self, name, mode="w"):
        f = open(self.workdir / name, mode)
        self._files.append(f)
        return f

    def start_daemon(self, timeout=30):
        self.daemon = self.lab.sparrowd(ROOT, "sparrowd", replay_config(self.peers, self.port,
                                                                         log_level=self.log_level))
        self.daemon.start().wait_ready(timeout)

    def start_replay(self, linger=600):
        args = [str(bin_dir() / "sparrow-replay"), "--connect", f"127.0.0.1:{self.port}",
                "--bind-base", "127.0.1.1", "--linger", str(linger),
                "--local-asn", str(LOCAL_ASN), *self.replay_args, str(self.mrt)]
        self.t_replay = time.monotonic()
        self.replay = subprocess.Popen(args, stdin=subprocess.PIPE,
                                       stdout=self._open("replay.jsonl"),
                                       stderr=self._open("replay.err"))

    def ctl_json(self, *cmd, timeout=120):
        return self.daemon.ctl(*cmd, timeout=timeout)

    def dump(self, timeout=300):
        """Every path the daemon holds (sparrowctl dump: one JSON object per line)."""
        return self.daemon.dump(timeout)

# -- waiting -------------------------------------------------------------
    def replay_events(self):
        p = self.workdir / "replay.jsonl"
        if not p.exists():
            return []
        ev = []
        for line in p.read_text().splitlines():
            try:
                ev.append(json.loads(line))
            except ValueError:
                pass
        return ev

    def wait_eor(self, timeout=120, poll=0.5):
        """Until every peer has End-of-RIB for IPv4 (and IPv6 where it has IPv6 routes).
        Returns the last `peers` reply; raises with diagnostics on timeout or early exit."""
        names = {f"ris{p['index']}": p for p in self.peers}
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.replay is not None and self.replay.poll() is not None:
                raise RuntimeError(f"sparrow-replay exited early ({self.replay.returncode}):\n"
                                   f"{self.replay_tail()}\n--- sparrowd ---\n{self.daemon_log()}")
            self.daemon.check_alive()
            last = self.ctl_json("peers")
            pending = []
            now = time.monotonic() - (self.t_replay or 0)
            for q in last.get("peers", []):
                p = names.get(q.get("name"))
                if p is None:
                    continue
                eor = q.get("eor") or {}
                if not eor.get("ipv4") or (p["v6"] > 0 and not eor.get("ipv6")):
                    pending.append(q.get("name"))
                else:
                    self.eor_times.setdefault(q.get("name"), now)
            if not pending:
                return last
            time.sleep(poll)
        states = [(q.get("name"), q.get("state"), q.get("eor"), q.get("last_error"))
                  for q in (last or {}).get("peers", [])]
        raise RuntimeError(f"End-of-RIB not seen within {timeout}s; peers: {states}\n"
                           f"{self.replay_tail()}\n--- sparrowd ---\n{self.daemon_log()}")

    # -- diagnostics -----------------------------------------------------------
    def daemon_log(self, n=40):
        return self.daemon.log_tail(n) if self.daemon else ""

    def replay_tail(self, n=20):
        out = []
        for name in ("replay.jsonl", "replay.err"):
            p = self.workdir / name
            if p.exists():
                out += [f"[{name}] {l}" for l in p.read_text(errors="replace").splitlines()[-n:]]
        return "\n".join(out)

    # -- cleanup ---------------------------------------------------------------
    def close(self):
        if self.replay is not None and self.replay.poll() is None:
            try:
                self.replay.stdin.close()  # EOF on stdin ends the replay (Cease to each peer)
            except OSError:
                pass
            _stop(self.replay, grace=10)
        if self.daemon is not None and self.daemon.proc is not None:
            self.daemon.proc.stop(grace=10)
        self.lab.cleanup()
        for f in self._files:
            f.close()
        self._files = []


def _stop(proc, grace):
    try:
        proc.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# ---------------------------------------------------------------------------
# bgpdump text and normalisation
# ---------------------------------------------------------------------------

WELL_KNOWN_COMMUNITIES = {
    "no-export": "65535:65281",
    "no-advertise": "65535:65282",
    "no-export-subconfed": "65535:65283",
    "local-as": "65535:65283",
    "no-peer": "65535:65284",
}


def parse_bgpdump(path):
    """bgpdump -m RIB lines: TABLE_DUMP|time|B|peer ip|peer as|prefix|as path|origin|
    next hop|local pref|med|community|atomic agg|aggregator|"""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        for line in f:
            x = line.rstrip("\n").split("|")
            if len(x) < 14 or not x[0].startswith("TABLE_DUMP"):
                continue
            yield {
                "peer_ip": x[3], "peer_asn": int(x[4]), "prefix": x[5], "as_path": x[6],
                "origin": x[7], "next_hop": x[8], "local_pref": x[9], "med": x[10],
                "communities": x[11], "atomic": x[12] == "AG", "aggregator": x[13],
            }


def norm_as_path(s):
    """`1 2 {3,4}` with any spacing inside sets/confed brackets -> canonical tokens."""
    s = (s or "").strip()
    out, cur, depth = [], "", 0
    for ch in s:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        if ch == " " and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    canon = []
    for t in out:
        if t[0] in "{[(":
            inner = [a for a in t[1:-1].replace(",", " ").split() if a]
            sep = " " if t[0] == "(" else ","
            canon.append(t[0] + sep.join(inner) + t[-1])
        else:
            canon.append(t)
    return " ".join(canon)


def has_confed(path):
    return "(" in path or "[" in path


def norm_origin(s):
    return (s or "").strip().upper()


def norm_med(v):
    """bgpdump prints 0 for an absent MED; the daemon gives null."""
    if v is None or v == "":
        return 0
    return int(v)


def norm_communities(v):
    if v is None:
        items = []
    elif isinstance(v, str):
        items = v.split()
    else:
        items = [str(c) for c in v]
    return tuple(sorted(WELL_KNOWN_COMMUNITIES.get(c, c) for c in items))


def norm_aggregator(v):
    return " ".join((v or "").split()) or None


def bad_next_hop(nh, daemon_addr="127.0.0.1"):
    """The daemon's next-hop sanity rule (RFC 4271 §6.3 / RFC 7606): an UPDATE with such a
    next hop is treat-as-withdraw."""
    import ipaddress
    a = ipaddress.ip_address(nh)
    if a.version == 4:
        o = int(str(a).split(".")[0])
        return o == 0 or o == 127 or o >= 224 or str(a) == daemon_addr
    return a.is_unspecified or a.is_loopback or a.is_multicast
