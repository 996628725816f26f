#!/usr/bin/env python3
"""Start sparrowd as the anchors' "custom" BGP receiver (../shared/anchors/bgp_ingest.py).

Usage (placeholders filled in by the harness):
  sparrow-recv.py {peers_json} {workdir}
Writes {workdir}/sparrow.yaml (every peer passive eBGP multihop, role upstream, like the
harness's BIRD config) and execs sparrowd on it, so the harness measures sparrowd's own PID.
The count command is: sparrowctl -s {workdir}/s.sock paths   (an O(1) counter).
"""
import json
import os
import sys

peers_json, workdir = sys.argv[1], sys.argv[2]
binary = os.environ.get('SPARROWD', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 '../../target/release/sparrowd'))
pj = json.load(open(peers_json))
lines = [
    'local_asn: %d' % pj['local_as'],
    'router_id: 192.0.2.254',
    'pop: bench',
    'pops: [{name: bench, asn: %d}]' % pj['local_as'],
    'listen: {enabled: true, addresses: [127.0.0.1], port: %d}' % pj['port'],
    'admin: {socket: %s}' % os.path.join(workdir, 's.sock'),
    'logging: {level: warn}',
    'peers:',
]
for i, p in enumerate(pj['peers']):
    lines.append('  - {name: p%d, address: %s, remote_asn: %d, role: upstream, passive: true, '
                 'multihop: 255, hold_time: 240}' % (i, p['ip'], p['asn']))
cfg = os.path.join(workdir, 'sparrow.yaml')
with open(cfg, 'w') as f:
    f.write('\n'.join(lines) + '\n')
os.execv(binary, [binary, '--config', cfg])
