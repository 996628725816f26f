"""Shared pytest fixtures for the sparrow namespace lab (the API: the harness package).

Fixtures:
  lab         a harness.Lab for one test: namespaces/processes removed afterwards,
              log tails printed when the test failed.  Its working directory is the
              test's tmp_path, or with ``@pytest.mark.lab_public_dir`` a fresh 0755
              directory under /tmp (removed afterwards) that an unprivileged daemon can
              reach (tmp_path lies under a 0700 directory of root's).
  sparrow_bin directory with sparrowd/sparrowctl (fails the test if missing).
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness


def pytest_configure(config):
    config.addinivalue_line("markers", "sparrowd: needs the sparrowd/sparrowctl binaries")
    config.addinivalue_line("markers", "lab_public_dir: the lab fixture's directory is reachable by any user")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def _lab_session():
    """Once per session, before the first namespace test: root check + stale sp- cleanup."""
    if not harness.is_root():
        pytest.skip("the namespace lab needs root")
    if not shutil.which("ip"):
        pytest.fail("iproute2 (ip) missing")
    removed = harness.clean_stale_namespaces()
    if removed:
        print(f"removed stale lab namespaces: {removed}")
    yield


@pytest.fixture
def lab(request, tmp_path, _lab_session):
    public = request.node.get_closest_marker("lab_public_dir") is not None
    workdir = Path(tempfile.mkdtemp(prefix="sparrow-lab-", dir="/tmp")) if public else tmp_path
    if public:
        workdir.chmod(0o755)
    lab = harness.Lab(request.node.name, workdir)
    yield lab
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if failed or os.environ.get("SPARROW_LAB_VERBOSE"):
        print(f"\n===== lab logs ({workdir}) =====\n{lab.log_tails(60)}")
    lab.cleanup()
    if public:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def sparrow_bin():
    d = harness.sparrow_bin_dir()
    for b in ("sparrowd", "sparrowctl"):
        if not (d / b).exists():
            pytest.fail(f"{d / b} missing: run `cargo build --release` or set SPARROW_BIN")
    return d
