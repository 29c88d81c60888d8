"""SIGHUP on a real agent process rotates its HTTPS certificate: a certificate replaced on
disk is served to new connections, while a keep-alive connection opened before goes on."""

from __future__ import annotations

import json
import re
import shutil
import signal
import ssl
from pathlib import Path

from tests.helpers import eventually_value
from tests.ops.procs import DEV, start
from tests.tls.certs import https_config, make_material
from tests.tls.test_https import KeepAlive, client_context, serial_of

BANNER_HTTPS = re.compile(r"HTTPS: (\d+\.\d+\.\d+\.\d+:\d+)")


async def test_sighup_serves_a_rotated_certificate_to_new_connections(tmp_path: Path) -> None:
    material = make_material(tmp_path)
    conf = tmp_path / "tls.json"
    config = https_config(material, verify_incoming=True)
    conf.write_text(json.dumps(config))
    agent = start(*DEV, "-https-port=0", f"-config-file={conf}")
    try:
        match = BANNER_HTTPS.search(agent.output())
        assert match, agent.output()
        addr = match.group(1)
        ctx: ssl.SSLContext = client_context(material)
        old_serial = serial_of(material.server_cert)
        old = await KeepAlive.open(addr, ctx)
        try:
            assert await old.get("/v1/status/leader") == 200
            assert old.peer_serial() == old_serial

            new_cert, new_key = material.new_server_cert()
            shutil.copyfile(new_cert, material.server_cert)
            shutil.copyfile(new_key, material.server_key)
            new_serial = serial_of(material.server_cert)
            assert agent.proc is not None
            agent.proc.send_signal(signal.SIGHUP)

            async def served() -> int | None:
                fresh = await KeepAlive.open(addr, ctx)
                try:
                    assert await fresh.get("/v1/status/leader") == 200
                    serial = fresh.peer_serial()
                finally:
                    await fresh.close()
                return serial if serial == new_serial else None

            assert await eventually_value(served, what="the new certificate") == new_serial
            # the connection from before the reload still answers, with its old certificate
            assert await old.get("/v1/agent/self") == 200
            assert old.peer_serial() == old_serial
            assert agent.proc.poll() is None
        finally:
            await old.close()
    finally:
        agent.stop()
