"""The agent: what `consulpy agent` runs on every host.

It owns this node's identity (name, ID), the HTTP listeners and, on servers, the server role.
HTTP handlers reach the replicated state only through `agent.delegate` (the server here; an
RPC client on client agents), which exposes write / read / session_renew.
"""

from __future__ import annotations

import os
import platform
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from consulpy.config import ConfigError
from consulpy.http.app import build_app
from consulpy.server.server import Server
from consulpy.version import CONSUL_COMPAT_VERSION, __version__

if TYPE_CHECKING:
    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.agent")

# Serf member status codes as Consul renders them in /v1/agent/members.
MEMBER_ALIVE = 1


class AgentError(Exception):
    """The agent cannot start with this configuration (message for the user)."""


def _is_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.node_name: str = config.node_name
        self.datacenter: str = config.datacenter
        self.pretty_json: bool = bool(config.dev)
        self.node_id = self._load_node_id()
        self.advertise_addr = self._advertise_addr()
        self.started_at = time.time()
        self.http_addresses: list[tuple[str, int]] = []
        self._runner: web.AppRunner | None = None
        if not config.server:
            raise AgentError(
                "client agents forward to servers over RPC, which arrives with the cluster "
                "work; run with -dev or -server for now"
            )
        if not config.dev:
            raise AgentError(
                "a non-dev server needs the Raft-backed store, which arrives with the cluster "
                "work; run with -dev for now"
            )
        self.server = Server(
            node_name=self.node_name,
            node_id=self.node_id,
            datacenter=self.datacenter,
            advertise_addr=self.advertise_addr,
            server_port=self._server_port(),
            node_meta=self.node_meta(),
            tagged_addresses=self.tagged_addresses(),
        )
        self.delegate = self.server

    # ----------------------------------------------------------- identity
    def _load_node_id(self) -> str:
        configured = getattr(self.config, "node_id", None)
        if configured:
            return str(configured).lower()
        data_dir = self.config.data_dir
        if not data_dir:
            return str(uuid.uuid4())
        path = os.path.join(data_dir, "node-id")
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
            uuid.UUID(value)
            return value
        except FileNotFoundError:
            pass
        except ValueError as exc:
            raise AgentError(f"node ID in {path} is not a valid UUID: {exc}") from exc
        value = str(uuid.uuid4())
        os.makedirs(data_dir, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return value

    def _advertise_addr(self) -> str:
        try:
            return self.config.effective_advertise()
        except ConfigError as exc:
            raise AgentError(str(exc)) from exc

    def _server_port(self) -> int:
        port = self.config.ports.server
        return port if port and port > 0 else 8300

    def node_meta(self) -> dict[str, str]:
        meta = {"consul-network-segment": "", "consul-version": CONSUL_COMPAT_VERSION}
        meta.update(self.config.node_meta or {})
        return meta

    def tagged_addresses(self) -> dict[str, str]:
        addr = self.advertise_addr
        family = "ipv6" if ":" in addr else "ipv4"
        wan = getattr(self.config, "advertise_addr_wan", None) or addr
        out = {"lan": addr, "wan": wan}
        if _is_ip(addr):
            out[f"lan_{family}"] = addr
        if _is_ip(wan):
            out[f"wan_{'ipv6' if ':' in wan else 'ipv4'}"] = wan
        return out

    # ---------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.server.start()
        listeners = self.config.http_addresses()
        if listeners:
            app = build_app(self)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            for host, port in listeners:
                site = web.TCPSite(self._runner, host, port, reuse_address=True)
                await site.start()
                for sock in site._server.sockets if site._server else ():  # type: ignore[union-attr]
                    bound = sock.getsockname()
                    self.http_addresses.append((bound[0], bound[1]))
        log.info(
            "agent started",
            node=self.node_name,
            node_id=self.node_id,
            datacenter=self.datacenter,
            server=bool(self.config.server),
            http=[f"{h}:{p}" for h, p in self.http_addresses],
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.server.stop()
        log.info("agent stopped", node=self.node_name)

    # ----------------------------------------------------------- views
    def member(self) -> dict[str, Any]:
        cfg = self.config
        tags = {
            "acls": "0",
            "build": f"{CONSUL_COMPAT_VERSION}:consulpy-{__version__}",
            "dc": self.datacenter,
            "ft_fs": "1",
            "ft_si": "1",
            "id": self.node_id,
            "port": str(self._server_port()),
            "raft_vsn": "3",
            "role": "consul" if cfg.server else "node",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
            "wan_join_port": str(cfg.ports.serf_wan),
        }
        if cfg.server and cfg.bootstrap:
            tags["bootstrap"] = "1"
        if cfg.server and cfg.bootstrap_expect:
            tags["expect"] = str(cfg.bootstrap_expect)
        return {
            "Name": self.node_name,
            "Addr": self.advertise_addr,
            "Port": cfg.ports.serf_lan if cfg.ports.serf_lan > 0 else 8301,
            "Tags": tags,
            "Status": MEMBER_ALIVE,
            "ProtocolMin": 1,
            "ProtocolMax": 5,
            "ProtocolCur": 2,
            "DelegateMin": 2,
            "DelegateMax": 5,
            "DelegateCur": 4,
        }

    def members(self, wan: bool = False) -> list[dict[str, Any]]:
        member = self.member()
        if wan:
            member = dict(member, Name=f"{self.node_name}.{self.datacenter}")
        return [member]

    def version_info(self) -> dict[str, Any]:
        return {
            "SHA": "",
            "BuildDate": "",
            "HumanVersion": CONSUL_COMPAT_VERSION,
            "FIPS": "",
            "consulpy": __version__,
        }

    def self_info(self) -> dict[str, Any]:
        cfg = self.config
        store = self.server.store
        leader_addr = self.server.leader_address()
        return {
            "Config": {
                "Datacenter": self.datacenter,
                "PrimaryDatacenter": getattr(cfg, "primary_datacenter", "") or self.datacenter,
                "NodeName": self.node_name,
                "NodeID": self.node_id,
                "Revision": f"consulpy-{__version__}",
                "Server": bool(cfg.server),
                "Version": CONSUL_COMPAT_VERSION,
                "BuildDate": "",
            },
            "DebugConfig": cfg.as_debug_dict(),
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
            "Member": self.member(),
            "Stats": {
                "agent": {"check_monitors": "0", "check_ttls": "0", "checks": "0", "services": "0"},
                "build": {
                    "prerelease": "",
                    "revision": f"consulpy-{__version__}",
                    "version": CONSUL_COMPAT_VERSION,
                    "version_metadata": "",
                },
                "consul": {
                    "acl": "disabled",
                    "bootstrap": str(bool(cfg.bootstrap)).lower(),
                    "known_datacenters": "1",
                    "leader": "true" if self.server.applier.is_leader() else "false",
                    "leader_addr": leader_addr,
                    "server": "true",
                },
                "raft": {
                    "applied_index": str(store.last_index),
                    "commit_index": str(store.last_index),
                    "state": "Leader" if self.server.applier.is_leader() else "Follower",
                    "num_peers": "0",
                },
                "runtime": {
                    "arch": platform.machine(),
                    "os": platform.system().lower(),
                    "version": f"python{platform.python_version()}",
                },
            },
            "Meta": self.node_meta(),
            "xDS": None,
        }
