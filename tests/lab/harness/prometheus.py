"""Prometheus (Debian ``prometheus``) as a lab scraper: one server per instance inside
a namespace, its config, TSDB and log under its own directory, scraping the given
targets every ``interval`` seconds; queried over its HTTP API from inside the
namespace (``curl``).

  Prometheus(lab, ns, name, targets, interval=1.0, port=9090)
    targets   {job: [ADDRESS:PORT, ...]}: one ``static_configs`` job each (path /metrics)
    .start() / .wait_ready()    ready when /-/ready answers
    .query(expr) -> list        instant query: ``data.result`` (each {metric, value})
    .values(expr) -> {labels-tuple: float}   instant query results keyed by their labels
  promtool_check_metrics(text)  ``promtool check metrics`` on an exposition: (ok, output)

The server is a Proc of the Lab (cleanup stops it).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse

from .lab import Daemon
from .net import wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool_check_metrics(text: str) -> tuple[bool, str]:
    """``promtool check metrics`` (exposition on stdin): whether it passes, and what it said."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return p.returncode == 0, p.stdout + p.stderr


class Prometheus(Daemon):
    conf_name = "prometheus.yml"

    def __init__(self, lab, ns, name: str, targets: dict[str, list[str]], interval: float = 1.0,
                 port: int = 9090):
        super().__init__(lab, ns, name)
        self.port = port
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: {json.dumps(addrs)}\n"
            for job, addrs in targets.items())
        ms = round(interval * 1000)
        self.conf.write_text(f"global:\n  scrape_interval: {ms}ms\n  evaluation_interval: {ms}ms\n"
                             f"scrape_configs:\n{jobs}")

    def start(self) -> "Prometheus":
        self.spawn([PROMETHEUS, f"--config.file={self.conf}", f"--storage.tsdb.path={self.dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        return self

    def _get(self, path: str) -> str:
        return self.ns.run(["curl", "-sf", "--max-time", "5", f"http://127.0.0.1:{self.port}{path}"],
                           check=True, timeout=10).stdout

    def wait_ready(self, timeout: float = 30.0) -> "Prometheus":
        wait_until(lambda: self.check_alive() and "Ready" in self._get("/-/ready"), timeout,
                   desc=f"prometheus {self.name} ready")
        return self

    def query(self, expr: str) -> list:
        r = json.loads(self._get("/api/v1/query?query=" + urllib.parse.quote(expr)))
        if r.get("status") != "success":
            raise RuntimeError(f"prometheus query {expr!r}: {r}")
        return r["data"]["result"]

    def values(self, expr: str) -> dict:
        """{tuple(sorted(labels)): value} of an instant query."""
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in self.query(expr)}
