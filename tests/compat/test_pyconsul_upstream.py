"""py-consul 1.8.0's own ACL tests (shipped in its sdist) against a consulpy dev agent with
ACLs on. Their fixture starts Consul in Docker; ours (pyconsul_upstream/
pyconsul_acl_fixtures.py) starts a DevAgent instead. The sdist is not vendored: point
PYCONSUL_SDIST at `py_consul-1.8.0.tar.gz` (`pip download --no-binary :all: --no-deps
py-consul==1.8.0`); without it the test is skipped.

KNOWN_FAILING lists the upstream tests consulpy does not pass yet, with why; every other one
must pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
KNOWN_FAILING = {
    # Server-side enforcement of /v1/acl/* (issue 13, the servers' part) not merged here yet.
    "test_acl_token_permission_denied": "servers do not enforce acl:read/write yet",
    "test_acl_role_permission_denied": "servers do not enforce acl:read/write yet",
    "test_acl_token_read": "servers do not enforce acl:read yet",
    "test_acl_policy_read": "servers do not enforce acl:read yet",
    "test_acl_token_create": "servers do not enforce acl:read yet (anonymous read)",
    "test_acl_token_delete": "servers do not enforce acl:read yet (anonymous read)",
    # ACL state differences.
    "test_acl_token_clone": "clone of an unknown token: 403 'ACL not found' vs Consul's text",
    "test_acl_token_update": "update of an unknown token answers 500, py-consul expects 404",
    "test_acl_token_list_filters": "client-chosen upper-case UUIDs come back lower-cased",
    "test_acl_token_create_templated": "templated policies are not supported",
    "test_acl_templated_policy_preview": "templated policies are not supported",
    "test_acl_templated_policy_read": "templated policies are not supported",
    "test_acl_templated_policy_list": "templated policies are not supported",
}


@pytest.mark.skipif(not os.environ.get("PYCONSUL_SDIST"), reason="PYCONSUL_SDIST not set")
def test_pyconsul_acl_tests_pass(tmp_path: Path) -> None:
    with tarfile.open(os.environ["PYCONSUL_SDIST"]) as tar:
        tar.extractall(tmp_path, filter="data")
    (src,) = tmp_path.iterdir()
    env = dict(os.environ, PYTHONPATH=f"{HERE / 'pyconsul_upstream'}{os.pathsep}{ROOT}")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--noconftest",
            "-p",
            "pyconsul_acl_fixtures",
            "tests/api/test_acl.py",
            "tests/api/test_acl_templated_policy.py",
        ],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcomes: dict[str, str] = {}
    for line in out.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR") and "::" in rest:
            outcomes[rest.split(" ")[0].rsplit("::", 1)[1]] = word
    failed = sorted(name for name, word in outcomes.items() if word != "PASSED")
    assert set(failed) <= set(KNOWN_FAILING), out.stdout[-3000:]
    passed = [name for name, word in outcomes.items() if word == "PASSED"]
    assert len(passed) == len(outcomes) - len(failed) and len(passed) >= 14, outcomes
