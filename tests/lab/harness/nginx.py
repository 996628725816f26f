"""nginx (Debian ``nginx-light``) as a lab web server: one process tree per instance
inside a namespace, in the foreground (``daemon off``), every file under its own
directory (config, pid, error log, temp paths; no access log).

  Nginx(lab, ns, name, listen=["80", "[::]:80"], body="pop x", tls=None)
    .start() / .stop() / .alive()       the master is a Proc of the Lab (cleanup stops it)
    tls=(cert_pem, key_pem, port)       also an ``ssl`` server on that port
  self_signed(dir, cn) -> (cert, key)   an openssl self-signed certificate

Every server answers ``/health`` with 200 ``ok``, ``/load`` with 200 ``<load>`` (a load
figure for ``pops[].capacity.url``) and anything else with 200 ``<body>``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .lab import Proc
from .net import run

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def self_signed(d: Path, cn: str) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}"])
    return cert, key


class Nginx:
    def __init__(self, lab, ns, name: str, listen: list[str] | None = None, body: str = "hello",
                 tls: tuple | None = None, load: str = "0.25"):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.path(name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.listen = listen or ["80", "[::]:80"]
        self.body, self.tls, self.load = body, tls, load
        self.proc: Proc | None = None
        self.link = None  # the veth to the namespace's router, if the caller records it
        self.write_config()

    def write_config(self) -> None:
        d = self.dir
        locs = ('    location = /health { default_type text/plain; return 200 "ok\\n"; }\n'
                f'    location = /load {{ default_type text/plain; return 200 "{self.load}\\n"; }}\n'
                f'    location / {{ default_type text/plain; return 200 "{self.body}\\n"; }}\n')
        servers = "  server {\n" + "".join(f"    listen {l};\n" for l in self.listen) + locs + "  }\n"
        if self.tls:
            cert, key, port = self.tls
            servers += (f"  server {{\n    listen {port} ssl;\n    listen [::]:{port} ssl;\n"
                        f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n" + locs + "  }\n")
        temps = "".join(f"  {k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (d / "nginx.conf").write_text(
            f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n"
            f"events {{ worker_connections 64; }}\n"
            f"http {{\n  access_log off;\n{temps}{servers}}}\n")

    def start(self) -> "Nginx":
        assert self.proc is None or not self.proc.alive(), f"{self.name} already running"
        self.proc = self.lab.spawn(self.ns, self.name, [NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                                                        "-c", str(self.dir / "nginx.conf")])
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=3)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()
