"""Real-data tests: replay the 2002 RIPE RIS RIB dump, and a RouteViews RIB cut after
its first MB of bzip2, into sparrowd with sparrow-replay (one BGP session per collector
peer, all on loopback) and check that sparrowd holds exactly what bgpdump says the dump
contains (for the cut file: bgpdump -m run on it by the test; every complete record).

Expectation, computed from bgpdump's rendering by the daemon's stated import rules:
  - every (RIS peer, prefix) entry is held as one path of peer ris<i>, with the same
    AS path, origin, next hop, MED, communities, atomic aggregate and aggregator;
  - except entries the daemon must not hold: AS path containing our ASN (loop),
    a next hop failing RFC 4271 §6.3 sanity (treat-as-withdraw), confederation
    segments from an eBGP peer (RFC 7606 §7.2), and later duplicates of a (peer, prefix)
    (sparrow-replay sends the first).
Normalisation: bgpdump prints MED 0 and LOCAL_PREF 0 when absent (daemon: null / policy
value, LOCAL_PREF is not compared), upper-case origins, space-separated communities
(compared as sorted lists, well-known names mapped to numbers).
"""
import ipaddress
import re
import shutil
import subprocess
import time
from collections import Counter

import pytest

from replay_repro_buffered_updates import run_repro
from replay_lab import (LOCAL_ASN, ReplayRun, bad_next_hop, bin_dir, data_dir, has_confed,
                        list_peers, norm_aggregator, norm_as_path, norm_communities, norm_med,
                        norm_origin, parse_bgpdump)

MRT = "ris-bview.20020722.2337.gz"
BGPDUMP = "ris-bview.20020722.2337.bgpdump.txt.gz"
# A RouteViews RIB cut after its first MB of bzip2 (the stream ends inside a block).
ROUTEVIEWS_CUT = "routeviews-rib.20140523.0600.firstMB.bz2"

pytestmark = pytest.mark.sparrowd

# Seconds allowed between sparrow-replay having written every UPDATE + End-of-RIB and
# sparrowd reporting End-of-RIB for every peer.
EOR_LAG_MAX = 15.0


def _prefix(p):
    return str(ipaddress.ip_network(p, strict=False))


def _nh(a):
    return str(ipaddress.ip_address(a)) if a else None


def _fields(as_path, origin, next_hop, med, communities, atomic, aggregator):
    return {
        "as_path": norm_as_path(as_path),
        "origin": norm_origin(origin),
        "next_hop": _nh(next_hop),
        "med": norm_med(med),
        "communities": norm_communities(communities),
        "atomic_aggregate": bool(atomic),
        "aggregator": norm_aggregator(aggregator),
    }


def expected_paths(bgpdump_path, peers):
    """(peer name, prefix) -> fields, plus counts of excluded entries by rule."""
    by_key = {(p["peer_ip"], p["peer_asn"]): p for p in peers}
    expected, excluded, total = {}, Counter(), 0
    excluded_keys = set()
    for e in parse_bgpdump(bgpdump_path):
        total += 1
        p = by_key.get((e["peer_ip"], e["peer_asn"]))
        assert p is not None, f"bgpdump peer {e['peer_ip']} AS{e['peer_asn']} not in --list-peers"
        key = (f"ris{p['index']}", _prefix(e["prefix"]))
        if key in expected or key in excluded_keys:
            excluded["duplicate (peer, prefix)"] += 1
            continue
        path = norm_as_path(e["as_path"])
        if str(LOCAL_ASN) in re.findall(r"\d+", path):
            rule = "AS path contains our ASN"
        elif bad_next_hop(e["next_hop"]):
            rule = "invalid next hop"
        elif has_confed(path):
            rule = "confederation segment from eBGP peer"
        else:
            rule = None
        if rule:
            excluded[rule] += 1
            excluded_keys.add(key)
            continue
        expected[key] = _fields(e["as_path"], e["origin"], e["next_hop"], e["med"],
                                e["communities"], e["atomic"], e["aggregator"])
    return expected, excluded, total


def _need_bins():
    for b in ("sparrowd", "sparrowctl", "sparrow-replay"):
        if not (bin_dir() / b).exists():
            pytest.fail(f"{bin_dir() / b} missing: run `cargo build --release` or set SPARROW_BIN")


def test_replay_ris_2002_matches_bgpdump(tmp_path):
    data = data_dir()
    mrt, txt = data / MRT, data / BGPDUMP
    if not mrt.exists() or not txt.exists():
        pytest.skip(f"shared data not found in {data}")
    _need_bins()
    _replay_matches_bgpdump(tmp_path, mrt, txt)


def test_replay_truncated_routeviews_bz2_matches_bgpdump(tmp_path):
    """The cut RouteViews excerpt (a .bz2 stream that ends inside a block), read in
    place: sparrow-replay decompresses in-process and keeps every complete MRT record,
    so it sends exactly the routes bgpdump reads from the same file (0 missing)."""
    mrt = data_dir() / ROUTEVIEWS_CUT
    if not mrt.exists():
        pytest.skip(f"{mrt} not found")
    if not shutil.which("bgpdump"):
        pytest.fail("bgpdump missing (apt-get install bgpdump)")
    _need_bins()
    txt = tmp_path / "bgpdump.txt"
    with open(txt, "w") as f:
        # bgpdump reports the cut stream on stderr and exits non-zero: its reading
        # of the complete records is what counts here.
        subprocess.run(["bgpdump", "-m", str(mrt)], stdout=f, stderr=subprocess.DEVNULL,
                       timeout=300, check=False)
    assert txt.stat().st_size > 0, "bgpdump printed nothing"
    _replay_matches_bgpdump(tmp_path, mrt, txt)


def _replay_matches_bgpdump(tmp_path, mrt, txt):
    """Replay `mrt` into sparrowd and compare what it holds with bgpdump's lines `txt`."""
    peers = list_peers(mrt)
    assert peers, "no peers in the dump"
    expected, excluded, total = expected_paths(txt, peers)
    sent_total = sum(p["v4"] + p["v6"] for p in peers)
    assert sent_total == total - excluded["duplicate (peer, prefix)"], \
        f"sparrow-replay reads {sent_total} routes, bgpdump lists {total}"

    run = ReplayRun(tmp_path, mrt, peers)
    try:
        run.start_daemon()
        run.start_replay(linger=600)
        reply = run.wait_eor(timeout=120, poll=0.25)
        t_eor = time.monotonic() - run.t_replay
        dump = run.dump()
        events = run.replay_events()
    finally:
        run.close()

    # Per-peer counters: everything sent was received; accepted = expected.
    want_per_peer = Counter(k[0] for k in expected)
    by_name = {f"ris{p['index']}": p for p in peers}
    counter_errors = []
    for q in reply["peers"]:
        p = by_name.get(q["name"])
        if p is None:
            continue
        rcv, acc = q.get("received", {}), q.get("accepted", {})
        if rcv.get("ipv4") != p["v4"] or rcv.get("ipv6", 0) != p["v6"]:
            counter_errors.append(f"{q['name']}: received {rcv}, sent v4={p['v4']} v6={p['v6']}")
        if acc.get("ipv4", 0) + acc.get("ipv6", 0) != want_per_peer[q["name"]]:
            counter_errors.append(f"{q['name']}: accepted {acc}, expected {want_per_peer[q['name']]}")

    actual, dup_paths, wrong_addr = {}, [], []
    for row in dump:
        key = (row["peer"], _prefix(row["prefix"]))
        if key in actual:
            dup_paths.append(key)
        p = by_name.get(row["peer"])
        if p is not None and row.get("peer_address") != p["bind"]:
            wrong_addr.append((key, row.get("peer_address"), p["bind"]))
        actual[key] = _fields(row.get("as_path"), row.get("origin"), row.get("next_hop"),
                              row.get("med"), row.get("communities"),
                              row.get("atomic_aggregate"), row.get("aggregator"))

    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    differing = []
    for k in sorted(set(expected) & set(actual)):
        if expected[k] != actual[k]:
            diff = {f: (expected[k][f], actual[k][f]) for f in expected[k] if expected[k][f] != actual[k][f]}
            differing.append((k, diff))
    field_counts = Counter(f for _, d in differing for f in d)

    sent = [e for e in events if e.get("event") == "sent"]
    done = [e for e in events if e.get("event") == "done"]
    est = [e for e in events if e.get("event") == "established"]
    print(f"\nreplay: {len(peers)} RIS peers, {sent_total} routes sent; bgpdump entries {total}, "
          f"excluded {dict(excluded)}; expected {len(expected)} paths, daemon holds {len(dump)}")
    print(f"compared {len(set(expected) & set(actual))} entries: {len(missing)} missing, "
          f"{len(unexpected)} unexpected, {len(differing)} differing {dict(field_counts)}")
    eor_lag = None
    if est and done:
        eor_lag = t_eor - done[0]["t"]
        print(f"timing (from replay start): first established {min(e['t'] for e in est):.3f}s, "
              f"everything written (done) {done[0]['t']:.3f}s, {sum(e['updates'] for e in sent)} "
              f"UPDATEs; End-of-RIB seen everywhere at {t_eor:.2f}s ({eor_lag:.2f}s after done)")

    problems = []
    # 115k routes take well under a second to process; a lag near hold_time/3 (30 s) means
    # UPDATEs sat unread until the replay's next KEEPALIVE woke the session up.
    if eor_lag is not None and eor_lag > EOR_LAG_MAX:
        late = sorted((n for n, t in run.eor_times.items() if t - done[0]["t"] > EOR_LAG_MAX),
                      key=lambda n: int(n[3:]))
        problems.append(f"End-of-RIB seen {eor_lag:.1f}s after the replay had written everything "
                        f"(limit {EOR_LAG_MAX}s) for {len(late)} of {len(peers)} peers {late}: "
                        f"UPDATEs left unprocessed until later traffic (the replay's next KEEPALIVE)?")
    if counter_errors:
        problems.append("peer counters:\n  " + "\n  ".join(counter_errors[:20]))
    if dup_paths:
        problems.append(f"{len(dup_paths)} (peer, prefix) held twice, e.g. {dup_paths[:5]}")
    if wrong_addr:
        problems.append(f"{len(wrong_addr)} paths with a wrong peer_address, e.g. {wrong_addr[:5]}")
    if missing:
        problems.append(f"{len(missing)} missing, e.g. " +
                        "; ".join(f"{k}: {expected[k]}" for k in missing[:10]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. " +
                        "; ".join(f"{k}: {actual[k]}" for k in unexpected[:10]))
    if differing:
        problems.append(f"{len(differing)} differ (expected, daemon), e.g.\n  " +
                        "\n  ".join(f"{k}: {d}" for k, d in differing[:20]))
    assert not problems, "\n".join(problems)


def test_updates_in_same_read_as_openconfirm_keepalive(tmp_path):
    """Deterministic form of a race the replay hits at random: a peer sends KEEPALIVE +
    UPDATE + End-of-RIB in one write right after the OPEN exchange and then stays quiet.
    sparrowd must process the buffered UPDATE at once, not at the peer's next KEEPALIVE."""
    for b in ("sparrowd", "sparrowctl"):
        if not (bin_dir() / b).exists():
            pytest.fail(f"{bin_dir() / b} missing: run `cargo build --release` or set SPARROW_BIN")
    lines = []
    ok = run_repro(tmp_path, out=lines.append)
    assert ok, "\n".join(lines + [(tmp_path / "d.log").read_text(errors="replace")[-3000:]])
