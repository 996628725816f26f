"""The container image (issue 12, "Container"): ``podman build`` makes it and
``podman run`` of it answers dig on a published port.

The image is built by docker/build-image.sh from the release binaries the
suite already has ($SPARROW_BIN): a ``FROM scratch`` image holding them and
their shared libraries (no second, static cargo build in CI; docker/README.md
has the static and the Debian-rootfs ways). The container runs as uid 10001.

How ``podman run`` works on these machines (podman 4.3, cgroup v1, root
without CAP_SYS_RESOURCE, so no process may raise a hard rlimit):
  * podman itself lowers its RLIMIT_NPROC to 32768 (from the host's 96369)
    before starting the runtime, then asks for nofile 1048576 by default, or
    the host's limits with ``--ulimit host``: both are above what the runtime
    inherits, so setrlimit fails (crun: ``setrlimit `RLIMIT_NPROC`: Operation
    not permitted``; runc: ``error setting rlimit type 6``/``7``).
    ``--ulimit`` values at or below the inherited ones pass: ``RUN_ARGS``.
  * crun then fails with ``cgroups in hybrid mode not supported, drop all
    controllers from cgroupv2`` (also with ``--cgroups=disabled``); runc works,
    so the runtime is named (Debian's podman may have pulled in either).

Also checked: the image's HEALTHCHECK is ``sparrowctl ready`` on /readyz,
the config inside the image passes ``--check-config``, and ``podman
healthcheck run`` reports healthy once the daemon has a metrics endpoint
(unhealthy before: the check runs but nothing listens). docker/compose.yaml
parses (``podman-compose config``) and comes up: two BIRD routers from a
Debian-rootfs image (docker/build-base-images.sh, about a minute when it has
to be built; removed again then) and two sparrowd steering both ways.
Every wait is bounded; containers, networks and images are removed afterwards.
"""
from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import free_port, is_root, run, wait_until

DOCKER = Path(__file__).resolve().parents[2] / "docker"
# Limits at or below what the runtime inherits from podman (see above).
NOFILE = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 16384)
NPROC = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
RUN_ARGS = ["--runtime", "runc", "--ulimit", f"nofile={NOFILE}:{NOFILE}",
            "--ulimit", f"nproc={NPROC}:{NPROC}"]


def podman(*args: str, check: bool = True, timeout: float = 60.0):
    return run(["podman", *args], check=check, timeout=timeout)


def dig(port: int, *args: str) -> str:
    return run(["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", "+short", *args],
               check=False, timeout=10).stdout.strip()


def http_status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ready_200(url: str) -> bool:
    """True on HTTP 200; otherwise raises with the status and body (the
    reasons), which wait_until reports when it gives up."""
    status, body = http_status(url)
    if status != 200:
        raise AssertionError(f"HTTP {status}: {body.strip()}")
    return True


@pytest.fixture(scope="module")
def image(sparrow_bin):
    """The image, built from $SPARROW_BIN; removed afterwards."""
    if not is_root():
        pytest.skip("the image is built and run by root's podman")
    for tool in ("podman", "runc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} missing (tests/run-all.sh installs it)")
    tag = f"localhost/sparrow-test:{os.getpid()}"
    r = run([str(DOCKER / "build-image.sh"), "--bin", str(sparrow_bin), "--tag", tag],
            check=False, timeout=300)
    assert r.returncode == 0, f"podman build failed:\n{r.stdout}\n{r.stderr}"
    try:
        yield tag
    finally:
        # build-image.sh builds with --layers=false: no stage image is left.
        podman("rmi", "-f", tag, check=False)


def without_metrics(src: Path, dst: Path) -> None:
    """Copy a sparrowd config leaving out its `metrics:` section."""
    out, skip = [], False
    for line in src.read_text().splitlines():
        if line.startswith("metrics:"):
            skip = True
            continue
        if skip and line.startswith("  "):
            continue
        skip = False
        out.append(line)
    dst.write_text("\n".join(out) + "\n")


def has_metrics(image: str) -> bool:
    """Run the image's sparrowd --check-config on its own config: True when it
    passes, False when the binary predates the `metrics` section (the only
    error allowed)."""
    r = podman("run", "--rm", *RUN_ARGS, "--no-healthcheck", image,
               "--check-config", "/etc/sparrow/sparrow.yaml", check=False)
    if r.returncode == 0:
        return True
    errors = [line for line in (r.stdout + r.stderr).splitlines() if "sparrow.yaml:" in line]
    assert len(errors) == 1 and "unknown field `metrics`" in errors[0], \
        f"the image's config fails --check-config:\n{r.stdout}\n{r.stderr}"
    print("sparrowd has no `metrics` section yet: running without it")
    return False


def test_image_answers_dig_on_published_port(image, tmp_path):
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    cfg = info.get("Config") or {}
    assert cfg.get("User") == "10001:10001", cfg
    health = info.get("Healthcheck") or {}
    assert health.get("Test", [])[:3] == ["CMD", "/usr/local/bin/sparrowctl", "ready"], health
    assert "http://127.0.0.1:9153/readyz" in health["Test"], health

    no_metrics = None
    if not has_metrics(image):
        no_metrics = tmp_path / "sparrow.yaml"
        without_metrics(DOCKER / "sparrow.yaml", no_metrics)
    dns_port, metrics_port = free_port(), free_port()
    name = f"sparrow-test-{os.getpid()}"
    argv = ["run", "-d", "--name", name, *RUN_ARGS,
            "-p", f"127.0.0.1:{dns_port}:5353/udp", "-p", f"127.0.0.1:{dns_port}:5353/tcp",
            "-p", f"127.0.0.1:{metrics_port}:9153/tcp"]
    if no_metrics:
        argv += ["-v", f"{no_metrics}:/etc/sparrow/sparrow.yaml:ro"]
    try:
        r = podman(*argv, image, check=False)
        assert r.returncode == 0, f"podman run failed:\n{r.stdout}\n{r.stderr}"
        try:
            wait_until(lambda: dig(dns_port, "www.example.test", "A") == "192.0.2.80",
                       timeout=30, desc="an A answer over UDP on the published port")
        except TimeoutError:
            print(podman("logs", name, check=False).stderr)
            raise
        assert dig(dns_port, "+tcp", "www.example.test", "AAAA") == "2001:db8::80"
        top = podman("top", name, "huser", "args").stdout
        assert "10001" in top and "sparrowd" in top, top
        if no_metrics:
            # Nothing on 9153: the health check runs (sparrowctl in the
            # container) and must report unhealthy.
            h = podman("healthcheck", "run", name, check=False)
            assert h.returncode != 0 and "unhealthy" in h.stdout + h.stderr, h
        else:
            # The image's config has no peers: readiness must not wait for
            # an End-of-RIB that cannot come.
            url = f"http://127.0.0.1:{metrics_port}/readyz"
            wait_until(lambda: ready_200(url), timeout=30,
                       desc=f"{url} 200 through the published port")
            wait_until(lambda: podman("healthcheck", "run", name, check=False).returncode == 0,
                       timeout=30, desc="podman healthcheck run: healthy")
    finally:
        podman("rm", "-f", "-t", "2", name, check=False)


def test_compose_file_parses():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = doc["services"]
    assert {"sparrowd-x", "sparrowd-y", "border-x", "border-y"} <= set(services), services
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (DOCKER / src).exists(), f"{name}: {src} missing"
    # podman-compose (PyPI; tests/run-all.sh installs it) resolves the file as
    # `up` would: networks, static addresses, ports.
    if importlib.util.find_spec("podman_compose") is None:
        pytest.skip("podman_compose not installed: YAML parse only")
    r = run([sys.executable, "-m", "podman_compose", "-f", str(DOCKER / "compose.yaml"), "config"],
            check=False, timeout=60)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    resolved = yaml.safe_load(r.stdout)
    x = resolved["services"]["sparrowd-x"]["networks"]
    assert x["pop-x"]["ipv4_address"] == "203.0.113.2", x


BIRD_IMAGE = "localhost/sparrow-bird:bookworm"


def test_compose_two_pops_with_bird(image, tmp_path):
    """docker/compose.yaml up: two BIRD border routers (from the Debian rootfs
    image, built here if missing and then removed again), two sparrowd; each
    POP steers the clients near it to itself and the others to the other POP."""
    if importlib.util.find_spec("podman_compose") is None:
        pytest.fail("podman_compose missing (tests/run-all.sh installs it)")
    built_bird = False
    if podman("image", "exists", BIRD_IMAGE, check=False).returncode != 0:
        if not shutil.which("mmdebstrap"):
            pytest.fail("mmdebstrap missing (tests/run-all.sh installs it)")
        r = run([str(DOCKER / "build-base-images.sh"), "bird"], check=False, timeout=240)
        assert r.returncode == 0, f"BIRD image build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        built_bird = True
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work)
    if not has_metrics(image):
        for pop in ("pop-x", "pop-y"):
            f = work / "two-pop" / f"{pop}.yaml"
            without_metrics(f, f)
    ports = {k: str(free_port()) for k in ("X_DNS_PORT", "Y_DNS_PORT", "X_METRICS_PORT",
                                           "Y_METRICS_PORT")}
    env = {**os.environ, **ports, "SPARROW_IMAGE": image, "BIRD_IMAGE": BIRD_IMAGE,
           "CONTAINERS_CONF": str(work / "containers.conf")}
    compose = [sys.executable, "-m", "podman_compose", "-f", str(work / "compose.yaml")]

    def sh(*args: str, timeout: float = 120.0):
        return subprocess.run([*compose, *args], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=work)
    try:
        r = sh("up", "-d", timeout=120)
        assert r.returncode == 0, f"compose up failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        want = {("100.64.1.1", "192.0.2.80"), ("100.64.2.1", "198.51.100.80")}
        for pop in ("X", "Y"):
            port = int(ports[f"{pop}_DNS_PORT"])
            for client, answer in want:
                try:
                    wait_until(lambda: dig(port, "www.example.test", "A",
                                           f"+subnet={client}/32") == answer,
                               timeout=60, desc=f"POP {pop} answers {answer} to {client}")
                except TimeoutError:
                    print(sh("logs", timeout=60).stdout[-6000:])
                    raise
        peers = podman("exec", "sparrow-two-pop_sparrowd-x_1", "sparrowctl", "-s",
                       "/run/sparrow/sparrow.sock", "peers").stdout
        assert peers.count("Established") == 2, peers
    finally:
        sh("down", "-t", "1", timeout=120)
        if built_bird:
            podman("rmi", "-f", BIRD_IMAGE, check=False)
