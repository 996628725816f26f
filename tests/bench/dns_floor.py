#!/usr/bin/env python3
"""DNS CPU per answer against the floor (issue 10): interleaved measurement, and profiles.

`measure` (tests/bench/dns-floor.sh): starts every server the chosen cases need once, each pinned
to --server-cpus (default CPU 0), on its own port, waits for each to answer a real query (dig,
polled, bounded), warms each up, then for ROUNDS rounds runs the cases in order (A B C ... A B C
...), one load tool at a time pinned to --load-cpus (default CPU 1), each bounded by --duration.
Per run: the server's CPU seconds (utime+stime of its PID, /proc/PID/stat, before/after) per 100k
answers, its CPU %, the load tool's own CPU % (its rusage: a tool at ~100% saturates its core
first, and the comparison is then by server CPU per answer), QPS, lost queries. Then the median
[min-max] per case and the ratios sparrowd/floor and sparrowd/knotd (ratio of the medians, and
the median of the per-round ratios).

Cases (--cases, space or comma separated; default: all but sparrowd-www):
  floor-static    dns-floor (sparrowd's UDP loop, fixed reply), ecsperf, web.anchors.test A
  sparrowd-static sparrowd, ecsperf, web.anchors.test A (a static A record, no EDNS)
  knot-static     knotd, static zone, ecsperf, web.anchors.test A
  floor-ecs       dns-floor, ecsperf, q-ecs-N.txt (a different ECS on every query; the floor's
                  fixed answer mismatches the expected one: answers are counted, not checked)
  sparrowd-ecs    sparrowd, steered www with a different ECS on every query (answers checked)
  knot-geoip-ecs  knotd + mod-geoip on the same map and queries (answers checked)
  sparrowd-tcp    sparrowd, dnsperf -m tcp, web.anchors.test A
  knot-tcp        knotd static zone, dnsperf -m tcp, web.anchors.test A
  sparrowd-www    sparrowd, ecsperf, www.anchors.test A without EDNS (the steered name looked up
                  for the transport source; what dns-anchor.sh's "static" scenario measures)
The zone is the anchors' anchors.test.zone plus `web A 192.0.2.80` (static in both servers);
sparrowd's config is made by sparrow-dns-server.sh (map_to_config.py: www steered over the
geo-N.map fallback), knotd's by the anchors' dns_bench.start_server (the same code as
dns_bench.py), one UDP worker each.

`profile CASE` (tests/bench/dns-profile.sh): starts the server of CASE the same way, warms it
up, records `perf record -g` on its PID for exactly the load tool's run, and prints the top
entries of `perf report --no-children --sort dso,sym`, then the split by dso.

Servers are stopped (SIGTERM, then SIGKILL after 15 s) by PID at the end. Loopback only.
"""
import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK = os.sysconf('SC_CLK_TCK')
STATIC_NAME = 'web.anchors.test'
STATIC_A = '192.0.2.80'

# case -> (server, tool, query kind, transport)
CASES = {
    'floor-static': ('floor', 'ecsperf', 'static', 'udp'),
    'sparrowd-static': ('sparrowd', 'ecsperf', 'static', 'udp'),
    'knot-static': ('knot', 'ecsperf', 'static', 'udp'),
    'floor-ecs': ('floor', 'ecsperf', 'ecs', 'udp'),
    'sparrowd-ecs': ('sparrowd', 'ecsperf', 'ecs', 'udp'),
    'knot-geoip-ecs': ('knot-geoip', 'ecsperf', 'ecs', 'udp'),
    'sparrowd-tcp': ('sparrowd', 'dnsperf', 'static', 'tcp'),
    'knot-tcp': ('knot', 'dnsperf', 'static', 'tcp'),
    'sparrowd-www': ('sparrowd', 'ecsperf', 'www', 'udp'),
}
DEFAULT_CASES = [c for c in CASES if c != 'sparrowd-www']
# (what, numerator, denominator)
RATIOS = [
    ('static name, UDP: sparrowd / floor', 'sparrowd-static', 'floor-static'),
    ('static name, UDP: sparrowd / knotd', 'sparrowd-static', 'knot-static'),
    ('static name, UDP: floor / knotd', 'floor-static', 'knot-static'),
    ('steered, varied ECS: sparrowd / floor', 'sparrowd-ecs', 'floor-ecs'),
    ('steered, varied ECS: sparrowd / knotd+geoip', 'sparrowd-ecs', 'knot-geoip-ecs'),
    ('steered, varied ECS: floor / knotd+geoip', 'floor-ecs', 'knot-geoip-ecs'),
    ('steered www, no ECS: sparrowd / floor', 'sparrowd-www', 'floor-static'),
    ('steered www, no ECS: sparrowd / knotd static', 'sparrowd-www', 'knot-static'),
    ('static name, TCP: sparrowd / knotd', 'sparrowd-tcp', 'knot-tcp'),
]
PORTS = {'floor': 5381, 'sparrowd': 5382, 'knot': 5383, 'knot-geoip': 5384}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu(pid):
    """utime + stime of PID in seconds (all its threads)."""
    f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def builds():
    """PIDs of compilers running now (a measurement beside one is not clean)."""
    out = []
    for name in ('cargo', 'rustc', 'clippy-driver'):
        r = subprocess.run(['pgrep', '-x', name], capture_output=True, text=True)
        out += r.stdout.split()
    return out


class Server:
    def __init__(self, kind, proc, pid, port, wd):
        self.kind, self.proc, self.pid, self.port, self.wd = kind, proc, pid, port, wd

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def prepare_data(a, wd):
    """A data directory for the anchors' start_server: the zone with `web` added, the map links."""
    d = os.path.join(wd, 'data')
    os.makedirs(d, exist_ok=True)
    zone = open(os.path.join(a.data, 'anchors.test.zone')).read()
    if not re.search(r'^web\s', zone, re.M):
        zone += 'web A %s\n' % STATIC_A
    open(os.path.join(d, 'anchors.test.zone'), 'w').write(zone)
    for f in ('geo-%s.conf' % a.map_size, 'geo-%s.map' % a.map_size):
        link = os.path.join(d, f)
        if not os.path.exists(link):
            os.symlink(os.path.join(a.data, f), link)
    open(os.path.join(d, 'q-web.txt'), 'w').write('%s A\n' % STATIC_NAME)
    return d


def query_file(a, kind):
    if kind == 'static':
        return os.path.join(a.prepared, 'q-web.txt')
    if kind == 'www':
        return os.path.join(a.data, 'q-static.txt')
    return os.path.join(a.data, 'q-ecs-%s.txt' % a.map_size)


def start(a, kind):
    port = PORTS[kind]
    wd = os.path.join(a.workdir, kind)
    subprocess.run(['rm', '-rf', wd])
    os.makedirs(wd)
    ts = ['taskset', '-c', a.server_cpus] if a.server_cpus else []
    zone = os.path.join(a.prepared, 'anchors.test.zone')
    if kind == 'floor':
        cmd = ts + [os.path.join(a.bin, 'dns-floor'), '--listen', '127.0.0.1:%d' % port, '--workers', str(a.udp_workers)]
        env = None
    elif kind == 'sparrowd':
        cmd = ts + ['bash', os.path.join(HERE, 'sparrow-dns-server.sh'), str(port), zone,
                    os.path.join(a.prepared, 'geo-%s.map' % a.map_size), wd]
        env = dict(os.environ, SPARROWD=os.path.join(a.bin, 'sparrowd'), WORKERS=str(a.udp_workers))
    else:
        # the anchors' own knotd setup (dns_bench.py), on our data directory
        sys.path.insert(0, a.anchors)
        import dns_bench
        ns = argparse.Namespace(server=kind, server_cpus=a.server_cpus, data=a.prepared, port=port,
                                udp_workers=a.udp_workers, map_size=a.map_size, server_cmd=None, server_pid=None)
        proc, pid = dns_bench.start_server(ns, 'ecs-%s' % a.map_size if kind == 'knot-geoip' else 'static', wd)
        return Server(kind, proc, pid, port, wd)
    proc = subprocess.Popen(cmd, stdout=open(os.path.join(wd, 'server.log'), 'w'), stderr=subprocess.STDOUT, env=env)
    return Server(kind, proc, proc.pid, port, wd)


def answers(port, name, tcp=False):
    """Whether a real query for NAME A gets an address back (dig: one try, 1 s)."""
    cmd = ['dig', '@127.0.0.1', '-p', str(port), '+time=1', '+tries=1', '+short', name, 'A'] + (['+tcp'] if tcp else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return any(re.fullmatch(r'\d+\.\d+\.\d+\.\d+', l.strip()) for l in r.stdout.splitlines())


def wait_ready(s, tcp, timeout=60, polls=600):
    """Poll with a real query until S answers (UDP, and TCP when TCP is measured); bounded."""
    t0 = time.time()
    for _ in range(polls):
        if not s.alive():
            raise RuntimeError('%s exited before answering (log: %s)' % (s.kind, s.wd))
        if answers(s.port, STATIC_NAME) and (not tcp or answers(s.port, STATIC_NAME, tcp=True)):
            return time.time() - t0
        if time.time() - t0 > timeout:
            break
        time.sleep(0.1)
    raise RuntimeError('%s on port %d not answering after %.0f s (log: %s)' % (s.kind, s.port, time.time() - t0, s.wd))


def tool_cmd(a, tool, qkind, transport, port, duration):
    ts = ['taskset', '-c', a.load_cpus] if a.load_cpus else []
    qf = query_file(a, qkind)
    if tool == 'ecsperf':
        return ts + [a.ecsperf, '-s', '127.0.0.1', '-p', str(port), '-f', qf, '-l', str(duration),
                     '-q', str(a.window), '-S', str(a.sockets)]
    return ts + ['dnsperf', '-m', transport, '-s', '127.0.0.1', '-p', str(port), '-d', qf, '-l', str(duration),
                 '-q', str(a.window), '-c', str(a.sockets), '-T', '1', '-t', '1']


def run_tool(cmd, duration):
    """Run the load tool (bounded: DURATION + 30 s); its stdout, stderr and wall seconds. Its own
    CPU is the growth of RUSAGE_CHILDREN around this call (measure_once: no other child is
    reaped meanwhile)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return out, err, time.time() - t0


def parse(tool, out, err):
    if tool == 'ecsperf':
        try:
            j = json.loads(out)
        except ValueError:
            return dict(received=0, raw=(out + err)[-1000:])
        return {k: j.get(k) for k in ('sent', 'received', 'lost', 'lost_pct', 'qps', 'avg_us', 'p99_us',
                                      'answer_match', 'answer_mismatch', 'noanswer')}
    g = lambda pat: (re.search(pat, out) or [None, None])[1]
    r = dict(sent=int(g(r'Queries sent:\s+(\d+)') or 0), received=int(g(r'Queries completed:\s+(\d+)') or 0),
             lost=int(g(r'Queries lost:\s+(\d+)') or 0), qps=float(g(r'Queries per second:\s+([\d.]+)') or 0))
    r['lost_pct'] = round(100.0 * r['lost'] / r['sent'], 4) if r['sent'] else None
    if not r['received']:
        r['raw'] = (out + err)[-1000:]
    return r


def measure_once(a, case, srv, rnd):
    _, tool, qkind, transport = CASES[case]
    cmd = tool_cmd(a, tool, qkind, transport, srv.port, a.duration)
    busy0 = builds()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = cpu(srv.pid), time.time()
    out, err, _ = run_tool(cmd, a.duration)
    c1, t1 = cpu(srv.pid), time.time()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1 = builds()
    res = parse(tool, out, err)
    wall = t1 - t0
    lg = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    n = res.get('received') or 0
    res.update(case=case, round=rnd, server=srv.kind, tool=tool, transport=transport, command=' '.join(cmd),
               wall_s=round(wall, 3), server_cpu_s=round(c1 - c0, 3), server_cpu_pct=round(100 * (c1 - c0) / wall, 1),
               loadgen_cpu_s=round(lg, 3), loadgen_cpu_pct=round(100 * lg / wall, 1),
               cpu_s_per_100k=round((c1 - c0) / n * 1e5, 4) if n else None,
               compilers=sorted(set(busy0 + busy1)), when=time.strftime('%Y-%m-%dT%H:%M:%S'))
    return res


def fmt(xs, nd=3):
    xs = [x for x in xs if x is not None]
    if not xs:
        return '-'
    m = statistics.median(xs)
    return ('%.*f' % (nd, m)) + (' [%.*f-%.*f]' % (nd, min(xs), nd, max(xs)) if len(xs) > 1 else '')


def summarize(recs):
    by = {}
    for r in recs:
        by.setdefault(r['case'], []).append(r)
    print('\n| case | runs | CPU-s per 100k answers, median [min-max] | server CPU % | load tool CPU % | QPS | lost % |')
    print('|---|---|---|---|---|---|---|')
    for case, rs in by.items():
        print('| %s | %d | **%s** | %s | %s | %s | %s |' % (
            case, len(rs), fmt([r['cpu_s_per_100k'] for r in rs], 4), fmt([r['server_cpu_pct'] for r in rs], 0),
            fmt([r['loadgen_cpu_pct'] for r in rs], 0), fmt([r.get('qps') for r in rs], 0),
            fmt([r.get('lost_pct') for r in rs], 3)))
    print('\n| ratio (CPU per answer) | ratio of medians | median of per-round ratios [min-max] |')
    print('|---|---|---|')
    for what, num, den in RATIOS:
        if num not in by or den not in by:
            continue
        mn = statistics.median([r['cpu_s_per_100k'] for r in by[num] if r['cpu_s_per_100k']] or [0])
        md = statistics.median([r['cpu_s_per_100k'] for r in by[den] if r['cpu_s_per_100k']] or [0])
        dn = {r['round']: r['cpu_s_per_100k'] for r in by[den]}
        per = [r['cpu_s_per_100k'] / dn[r['round']] for r in by[num]
               if r['cpu_s_per_100k'] and dn.get(r['round'])]
        print('| %s | %s | %s |' % (what, '%.2fx' % (mn / md) if md else '-', fmt(per, 2) + 'x' if per else '-'))
    notes = []
    for case, rs in by.items():
        sat = [r for r in rs if r['loadgen_cpu_pct'] >= 95]
        if sat:
            notes.append('%s: the load tool used >= 95%% of its core in %d of %d runs (it saturates first; '
                         'compare by server CPU per answer)' % (case, len(sat), len(rs)))
        bad = [r for r in rs if r.get('answer_mismatch') and not case.startswith('floor')]
        if bad:
            notes.append('%s: %d runs with mismatched answers' % (case, len(bad)))
        busy = [r for r in rs if r['compilers']]
        if busy:
            notes.append('%s: a compiler ran during %d runs (figures not clean)' % (case, len(busy)))
    for n in notes:
        print('- ' + n)


def common_args(ap):
    ap.add_argument('--duration', type=float, default=20, help='seconds per load run')
    ap.add_argument('--warmup', type=float, default=2, help='seconds of load per server before measuring')
    ap.add_argument('--window', type=int, default=200, help='outstanding queries (ecsperf/dnsperf -q)')
    ap.add_argument('--sockets', type=int, default=4, help='ecsperf -S / dnsperf -c')
    ap.add_argument('--udp-workers', type=int, default=1)
    ap.add_argument('--map-size', default='100000')
    ap.add_argument('--server-cpus', default='0')
    ap.add_argument('--load-cpus', default='1')
    ap.add_argument('--anchors', default=os.path.join(ROOT, '..', 'shared', 'anchors'))
    ap.add_argument('--data', default='/tmp/anchors/dns')
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release'))
    ap.add_argument('--ecsperf', default='/tmp/anchors/bin/ecsperf')
    ap.add_argument('--workdir', default='/tmp/anchors/dnsfloor')


def setup(a):
    os.makedirs(a.workdir, exist_ok=True)
    if not os.path.exists(os.path.join(a.data, 'q-ecs-%s.txt' % a.map_size)):
        sys.exit('%s has no q-ecs-%s.txt: run `python3 dns_prep.py` in %s' % (a.data, a.map_size, a.anchors))
    if not os.path.exists(a.ecsperf):
        os.makedirs(os.path.dirname(a.ecsperf), exist_ok=True)
        subprocess.run(['cc', '-O2', '-o', a.ecsperf, os.path.join(a.anchors, 'ecsperf.c')], check=True)
    a.prepared = prepare_data(a, a.workdir)


def start_all(a, kinds, tcp_kinds):
    servers = {}
    try:
        for k in kinds:
            servers[k] = start(a, k)
            took = wait_ready(servers[k], k in tcp_kinds)
            log('%s: pid %d, port %d, answering after %.2f s' % (k, servers[k].pid, servers[k].port, took))
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers


def warm(a, servers, cases):
    done = set()
    for case in cases:
        kind, _, qkind, _ = CASES[case]
        if a.warmup and kind not in done:
            done.add(kind)
            run_tool(tool_cmd(a, 'ecsperf', qkind, 'udp', servers[kind].port, a.warmup), a.warmup)


def measure(a):
    cases = [c for c in re.split(r'[\s,]+', a.cases.strip()) if c] if a.cases else DEFAULT_CASES
    for c in cases:
        if c not in CASES:
            sys.exit('unknown case %s (known: %s)' % (c, ' '.join(CASES)))
    setup(a)
    kinds = list(dict.fromkeys(CASES[c][0] for c in cases))
    tcp_kinds = {CASES[c][0] for c in cases if CASES[c][3] == 'tcp'}
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    servers = start_all(a, kinds, tcp_kinds)
    recs = []
    try:
        warm(a, servers, cases)
        log('%d rounds x %d cases x %g s: %s' % (a.rounds, len(cases), a.duration, ' '.join(cases)))
        for rnd in range(1, a.rounds + 1):
            for case in cases:
                srv = servers[CASES[case][0]]
                if not srv.alive():
                    raise RuntimeError('%s exited (log: %s)' % (srv.kind, srv.wd))
                r = measure_once(a, case, srv, rnd)
                recs.append(r)
                open(a.results, 'a').write(json.dumps(r) + '\n')
                log(json.dumps({k: r.get(k) for k in ('case', 'round', 'received', 'qps', 'cpu_s_per_100k', 'server_cpu_pct',
                                                      'loadgen_cpu_pct', 'lost_pct', 'answer_match', 'answer_mismatch')}))
    finally:
        for s in servers.values():
            s.stop()
    summarize(recs)
    print('\nresults: %s' % a.results)


def perf_event():
    """cycles where the CPU's counters are visible, else the cpu-clock software event (VMs)."""
    r = subprocess.run(['perf', 'stat', '-x,', '-e', 'cycles', 'true'], capture_output=True, text=True)
    return 'cycles' if r.returncode == 0 and 'not supported' not in r.stderr and '<not' not in r.stderr else 'cpu-clock'


def profile(a):
    if a.case not in CASES:
        sys.exit('unknown case %s (known: %s)' % (a.case, ' '.join(CASES)))
    setup(a)
    kind, tool, qkind, transport = CASES[a.case]
    servers = start_all(a, [kind], {kind} if transport == 'tcp' else set())
    srv = servers[kind]
    data = os.path.join(a.workdir, 'perf-%s.data' % a.case)
    ev = a.event or perf_event()
    try:
        warm(a, servers, [a.case])
        rec = subprocess.Popen(['perf', 'record', '-e', ev, '--call-graph', a.call_graph, '-o', data, '-p', str(srv.pid)],
                               stdout=subprocess.DEVNULL, stderr=open(data + '.log', 'w'))
        for _ in range(100):   # bounded (10 s): perf has written its header, it is recording
            if rec.poll() is not None or (os.path.exists(data) and os.path.getsize(data) > 0):
                break
            time.sleep(0.1)
        if rec.poll() is not None:
            sys.exit('perf record failed: %s' % open(data + '.log').read())
        r = measure_once(a, a.case, srv, 1)
        rec.send_signal(signal.SIGINT)
        try:
            rec.wait(60)
        except subprocess.TimeoutExpired:
            rec.kill()
            rec.wait()
    finally:
        srv.stop()
    log(json.dumps({k: r.get(k) for k in ('case', 'received', 'qps', 'cpu_s_per_100k', 'server_cpu_pct', 'loadgen_cpu_pct')}))
    print('# perf record -e %s --call-graph %s -p <%s> during %s (%g s); %s' % (ev, a.call_graph, kind, r['command'], a.duration, data))
    rep = subprocess.run(['perf', 'report', '-i', data, '--no-children', '--sort', 'dso,sym', '--stdio', '-g', 'none'],
                         capture_output=True, text=True)
    lines = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith('#')]
    print('\n'.join(lines[:a.top]))
    if not lines:
        print(rep.stderr[-2000:])
    # where the time goes by object: the kernel against the server's own code
    rep = subprocess.run(['perf', 'report', '-i', data, '--no-children', '--sort', 'dso', '--stdio', '-g', 'none'],
                         capture_output=True, text=True)
    print('\n# by dso (perf report --no-children --sort dso)')
    print('\n'.join([l for l in rep.stdout.splitlines() if l.strip() and not l.startswith('#')][:8]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('measure', help='interleaved CPU per answer, all cases')
    common_args(m)
    m.add_argument('--rounds', type=int, default=5)
    m.add_argument('--cases', default='', help='cases to run (default: %s)' % ' '.join(DEFAULT_CASES))
    m.add_argument('--results', default='/tmp/anchors/results/dns-floor-%s.jsonl' % time.strftime('%Y%m%d-%H%M%S'))
    p = sub.add_parser('profile', help='perf record on one case')
    common_args(p)
    p.add_argument('case', nargs='?', default='sparrowd-ecs')
    p.add_argument('--event', default='', help='perf event (default: cycles, or cpu-clock without counters)')
    p.add_argument('--call-graph', default='fp', help='perf --call-graph (fp = -g; dwarf for Rust without frame pointers)')
    p.add_argument('--top', type=int, default=30)
    a = ap.parse_args()
    a.anchors = os.path.abspath(a.anchors)
    if a.cmd == 'measure':
        measure(a)
    else:
        profile(a)


if __name__ == '__main__':
    main()
