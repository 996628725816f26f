"""sparrowd without root, as dist/systemd/sparrowd.service runs it (issue 12, "Non-root").

* test_unit_verifies: ``systemd-analyze verify`` accepts dist/systemd/sparrowd.service.  It
  needs no running systemd (this container's PID 1 is not systemd) but wants every Exec*
  binary to exist, so the test copies the unit with /usr/local/bin/ rewritten to the built
  binaries' directory.  Unknown keys are only warnings there (exit status 0), so any output
  fails the test too.
* test_nonroot_md5_gtsm: sparrowd runs as the system user ``sparrow-lab`` (created with
  useradd when missing) through ``setpriv`` with no supplementary groups, no_new_privs and
  only CAP_NET_BIND_SERVICE in every capability set (CapInh/Prm/Eff/Bnd/Amb, read from
  /proc/PID/status): what the unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and
  NoNewPrivileges= give it.  In its namespace it binds BGP on 179 and DNS on 53; its session
  to a directly connected BIRD 2 uses TCP-MD5 and GTSM (BIRD ``password`` and ``ttl security
  on``) and reaches Established with BIRD's routes; dig from BIRD's namespace gets the steered
  answer.  $NOTIFY_SOCKET is a datagram socket of this test: READY=1 with a STATUS= line
  naming each family's steering source, STATUS=...v4=rib v6=rib... once BIRD's End-of-RIB
  is in, RELOADING=1 + MONOTONIC_USEC then READY=1 around ``sparrowctl reload``, STOPPING=1
  at SIGTERM; the operator state file and the restart marker are written by the unprivileged
  user.  Twice: BIRD the only peer (the listener's own IP_MINTTL keeps low-TTL SYNs out), and
  with a second, absent peer without GTSM (the listener needs a socket filter; a kernel that
  refuses it to a process without CAP_NET_ADMIN, as this lab's does, gets sparrowd's warning
  and IP_MINTTL after accept).
* test_without_the_capability_port_179_is_refused: the negative control: the same setpriv
  without CAP_NET_BIND_SERVICE, and sparrowd exits at its BGP listener with EACCES.

The lab's working directory is a /tmp directory the unprivileged user can reach (the
``lab_public_dir`` mark, see conftest.py); the daemon's directory is its own.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import sparrow_config, sparrow_peer, wait_until
from transport_lab import BIRD_ASN, PEER, PROTO, SP_ASN, make_topo

pytestmark = [pytest.mark.sparrowd, pytest.mark.lab_public_dir]

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "dist" / "systemd" / "sparrowd.service"
LAB_USER = "sparrow-lab"
CAP_NET_BIND_SERVICE = 1 << 10
PASSWORD = "s3cret-md5"
ZONE = "example.test"
WWW_V4 = "192.0.2.10"


# --------------------------------------------------------------------------- systemd unit

def test_unit_verifies(sparrow_bin, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.fail("systemd-analyze missing (Debian package systemd; tests/run-all.sh installs it)")
    text = UNIT.read_text()
    assert "/usr/local/bin/sparrowd" in text and "/usr/local/bin/sparrowctl" in text
    unit = tmp_path / "sparrowd.service"
    unit.write_text(text.replace("/usr/local/bin/", f"{sparrow_bin}/"))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    print(f"\nsystemd-analyze verify: rc={r.returncode} out={r.stdout!r} err={r.stderr!r}")
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).strip() == "", "systemd-analyze verify warned about the unit"
    for key in ("Type=notify", "User=sparrow", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes",
                "ProtectSystem=strict", "PrivateTmp=yes", "RuntimeDirectory=sparrow",
                "StateDirectory=sparrow", "ExecReload=/usr/local/bin/sparrowctl reload"):
        assert re.search(rf"^{re.escape(key)}$", text, re.M), key
    assert re.search(r"^ExecStartPre=/usr/local/bin/sparrowd --check-config (\S+)$", text, re.M)


# --------------------------------------------------------------------------- the user

@pytest.fixture(scope="module")
def lab_user() -> pwd.struct_passwd:
    """The system user sparrowd runs as (created once; left in place for the next run)."""
    try:
        return pwd.getpwnam(LAB_USER)
    except KeyError:
        pass
    if not shutil.which("useradd"):
        pytest.fail("useradd missing (Debian package passwd)")
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", LAB_USER], check=True, capture_output=True, text=True)
    return pwd.getpwnam(LAB_USER)


def setpriv(user: pwd.struct_passwd, caps: str = "+net_bind_service") -> list[str]:
    """argv that execs the rest as ``user`` holding only ``caps`` (``""``: none)."""
    sets = f"-all,{caps}" if caps else "-all"
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--no-new-privs", f"--inh-caps={sets}", f"--ambient-caps={sets}", f"--bounding-set={sets}"]


class NotifyListener:
    """The $NOTIFY_SOCKET of a daemon: a datagram socket at ``path``, every datagram kept."""

    def __init__(self, path: Path, user: pwd.struct_passwd):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chown(path, user.pw_uid, user.pw_gid)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def states(self) -> list[dict]:
        """Each datagram as {KEY: VALUE}."""
        return [dict(line.split("=", 1) for line in m.splitlines() if "=" in line) for m in self.messages]

    def wait(self, pred, desc: str, timeout: float = 30.0) -> dict:
        """The first datagram (as a dict) for which ``pred`` holds."""
        found = []

        def ok():
            found[:] = [s for s in self.states() if pred(s)]
            return bool(found)
        try:
            wait_until(ok, timeout, interval=0.1, desc=desc)
        except TimeoutError as e:
            raise TimeoutError(f"{e}\nnotifications so far: {self.messages}") from None
        return found[0]


def caps(pid: int) -> dict:
    """Uid, Gid, Groups, Cap* and NoNewPrivs lines of /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("Uid", "Gid", "Groups", "NoNewPrivs") or k.startswith("Cap"):
            out[k] = v.strip()
    return out


def sp_config(t, dns_listen: list[str], mixed: bool = False) -> dict:
    """BIRD as an MD5 + GTSM peer; ``mixed``: and a passive peer without GTSM that never
    comes (the listener then needs its socket filter, not IP_MINTTL)."""
    peers = [sparrow_peer(PEER, t.link.b4, BIRD_ASN, "upstream", families=["ipv4", "ipv6"], hold_time=9,
                          connect_retry=1, password=PASSWORD, gtsm=True, graceful_restart=True)]
    if mixed:
        peers.append(sparrow_peer("absent", "10.0.9.3", 65099, "upstream", passive=True))
    return sparrow_config(
        SP_ASN, "10.255.0.1", peers,
        listen=[t.link.a4], port=179,
        dns={"listen": dns_listen},
        zones=[{"origin": ZONE, "soa": {"mname": "ns1", "rname": f"hostmaster@{ZONE}"}, "ns": ["ns1"],
                "records": [{"name": "ns1", "type": "A", "data": t.link.a4}],
                "steered": [{"name": "www", "ttl": 30, "pops": {"x": {"a": [WWW_V4]}}}]}])


@pytest.mark.parametrize("mixed", [False, True], ids=["all-gtsm", "mixed-gtsm"])
def test_nonroot_md5_gtsm(lab, sparrow_bin, lab_user, mixed):
    t = make_topo(lab)
    npeers = 2 if mixed else 1
    t.start_bird(extra=f'  password "{PASSWORD}";\n  ttl security on;')
    notify = NotifyListener(lab.workdir / "notify.sock", lab_user)
    try:
        sp = lab.sparrowd(t.sp_ns, "sparrowd", sp_config(t, [f"{t.link.a4}:53", f"[{t.link.a6}]:53"], mixed),
                              wrap=setpriv(lab_user), env={"NOTIFY_SOCKET": str(notify.path)})
        os.chown(sp.dir, lab_user.pw_uid, lab_user.pw_gid)
        t.sp = sp.start().wait_ready()

        # who it runs as: the lab user, CAP_NET_BIND_SERVICE only, no_new_privs
        st = caps(sp.proc.pid)
        print(f"\nsparrowd pid {sp.proc.pid} as {LAB_USER}: {st}")
        assert os.readlink(f"/proc/{sp.proc.pid}/exe") == str(sp.bin)
        assert st["Uid"].split() == [str(lab_user.pw_uid)] * 4, st
        assert st["Gid"].split() == [str(lab_user.pw_gid)] * 4, st
        assert st["Groups"] == "", st
        assert st["NoNewPrivs"] == "1", st
        for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(st[k], 16) == CAP_NET_BIND_SERVICE, (k, st)

        # BGP on 179 and DNS on 53 bound by that process
        listen = t.sp_ns.sh("ss -Hlntup")
        print(listen)
        for port in (179, 53):
            assert re.search(rf":{port}\s.*pid={sp.proc.pid},", listen), (port, listen)

        # MD5 + GTSM session up on both sides, routes in
        t.wait_up(timeout=40)
        t.wait_routes()
        p = sp.peer(PEER)
        assert p["state"] == "Established" and p["established_count"] == 1, p
        info = t.bird.birdc(f"show protocols all {PROTO}")
        assert "Established" in info, info
        md5 = t.sp_ns.sh(f"ss -Htni state established '( sport = :179 or dport = :179 )'")
        print(f"sparrowd's BGP socket: {md5.strip()}")
        assert f"md5keys:{t.link.b4}/32" in md5, f"no TCP-MD5 on sparrowd's BGP connection: {md5}"

        # mixed: the listener's GTSM socket filter, or (kernels that want CAP_NET_ADMIN for
        # socket filters, like this lab's) the warning and IP_MINTTL after accept
        warned = "refuses the listener's socket filter" in sp.log_text()
        print(f"GTSM listener: {'IP_MINTTL' if not mixed else 'filter refused, warned' if warned else 'filter'}")
        assert not warned or mixed

        # dig over the veth, from BIRD's namespace
        ans = t.bird_ns.run(["dig", f"@{t.link.a4}", "-p", "53", "+norec", "+time=2", "+tries=2", "+short",
                             f"www.{ZONE}", "A"]).stdout.split()
        assert ans == [WWW_V4], ans
        ans6 = t.bird_ns.run(["dig", f"@{t.link.a6}", "-p", "53", "+norec", "+time=2", "+tries=2", "+short",
                              f"www.{ZONE}", "A"]).stdout.split()
        assert ans6 == [WWW_V4], ans6

        # systemd notifications
        ready = notify.wait(lambda s: s.get("READY") == "1" and "STATUS" in s, "READY=1 with a STATUS")
        assert re.fullmatch(rf"steering v4=(rib|fallback) v6=(rib|fallback), [01]/{npeers} peers established",
                            ready["STATUS"]), ready
        notify.wait(lambda s: s.get("STATUS") == f"steering v4=rib v6=rib, 1/{npeers} peers established",
                    "STATUS with both families steered from the RIB")
        # operator state saved by the unprivileged user (admin.state_file)
        for cmd in ("drain", "undrain"):
            r = sp.ctl(cmd, "x")
            assert r.get("saved") is True, r
        assert (sp.dir / "state.json").stat().st_uid == lab_user.pw_uid

        n = len(notify.messages)
        rep = sp.ctl("reload")
        print(f"reload: {rep}")
        wait_until(lambda: len(notify.messages) >= n + 2, 10, desc="RELOADING=1 then READY=1")
        reloading, again = notify.states()[n:n + 2]
        assert reloading.get("RELOADING") == "1" and int(reloading["MONOTONIC_USEC"]) > 0, reloading
        assert again == {"READY": "1"}, again

        assert sp.stop() == 0
        notify.wait(lambda s: s.get("STOPPING") == "1", "STOPPING=1", timeout=5)
        assert notify.states()[-1] == {"STOPPING": "1", "STATUS": "stopping"}, notify.messages
        assert not os.path.exists(sp.socket), "admin socket left behind"
        marker = sp.dir / "state.restart"
        assert marker.exists() and marker.stat().st_uid == lab_user.pw_uid, list(sp.dir.iterdir())
        print(f"notifications: {notify.messages}")
    finally:
        notify.close()


def test_without_the_capability_port_179_is_refused(lab, sparrow_bin, lab_user):
    t = make_topo(lab)
    sp = lab.sparrowd(t.sp_ns, "sparrowd", sp_config(t, [f"{t.link.a4}:53"]), wrap=setpriv(lab_user, ""))
    os.chown(sp.dir, lab_user.pw_uid, lab_user.pw_gid)
    sp.start()
    wait_until(lambda: not sp.alive(), 15, desc="sparrowd without CAP_NET_BIND_SERVICE exiting")
    log = sp.log_text()
    print(f"\n{sp.log_tail(3)}")
    assert sp.proc.returncode != 0
    assert "BGP listener: Permission denied" in log, log
