"""Certificates for the TLS tests, made with `consulpy tls` itself (in-process, in a directory)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from consulpy.cli import tls as tls_cli


def run_tls(directory: Path, *argv: str) -> str:
    """`consulpy tls <argv>` in `directory`; returns stdout, fails on a non-zero exit."""
    out = io.StringIO()
    with contextlib.chdir(directory), contextlib.redirect_stdout(out):
        code = tls_cli.main(list(argv))
    assert code == 0, (argv, out.getvalue())
    return out.getvalue()


@dataclass
class Material:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def new_server_cert(self) -> tuple[Path, Path]:
        """Issue another server certificate (next free number) from the same CA."""
        before = set(self.dir.glob("dc1-server-consul-*"))
        run_tls(self.dir, "cert", "create", "-server")
        made = sorted(set(self.dir.glob("dc1-server-consul-*")) - before)
        key = next(p for p in made if p.name.endswith("-key.pem"))
        cert = next(p for p in made if not p.name.endswith("-key.pem"))
        return cert, key


def make_material(directory: Path) -> Material:
    run_tls(directory, "ca", "create")
    run_tls(directory, "cert", "create", "-server")
    run_tls(directory, "cert", "create", "-client")
    return Material(
        directory,
        directory / "consul-agent-ca.pem",
        directory / "dc1-server-consul-0.pem",
        directory / "dc1-server-consul-0-key.pem",
        directory / "dc1-client-consul-0.pem",
        directory / "dc1-client-consul-0-key.pem",
    )


def https_config(m: Material, **https: object) -> dict[str, object]:
    """Agent config: tls.defaults from `m`, extra `tls.https` keys from `https`."""
    tls: dict[str, object] = {
        "defaults": {
            "ca_file": str(m.ca),
            "cert_file": str(m.server_cert),
            "key_file": str(m.server_key),
        }
    }
    if https:
        tls["https"] = dict(https)
    return {"tls": tls}
