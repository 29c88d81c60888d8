"""`consulpy agent`: load the configuration, start an agent (through the composition root,
`consulpy.runtime`), stop it cleanly on a signal."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from consulpy.config import AgentConfig, ConfigError, flags_help, load_agent_config
from consulpy.version import CONSUL_COMPAT_VERSION, __version__


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server_addr(agent: Any) -> str:
    """Advertised and bound RPC/Raft address: they differ when binding 0.0.0.0."""
    server = getattr(agent, "server", None)
    if server is None:
        return "client agent"
    raft = getattr(server, "raft", None)
    if raft is None:
        return str(server.rpc_address)
    return f"{raft.node.config.address} (bound: {raft.transport.bound_address})"


def _banner(cfg: AgentConfig, agent: Any) -> str:
    http = ", ".join(f"{h}:{p}" for h, p in getattr(agent, "http_addresses", [])) or "disabled"
    https = ", ".join(f"{h}:{p}" for h, p in getattr(agent, "https_addresses", [])) or "-1"
    ports = cfg.ports
    dns_ports = sorted({str(p) for _, p in getattr(agent, "dns_addresses", [])})
    dns = ", ".join(dns_ports) or "disabled"
    lines = [
        "==> Starting consulpy agent...",
        f"               Version: '{__version__}' (Consul API {CONSUL_COMPAT_VERSION})",
        f"               Node ID: '{getattr(agent, 'node_id', '')}'",
        f"             Node name: '{cfg.node_name}'",
        f"            Datacenter: '{cfg.datacenter}'",
        f"                Server: {str(bool(cfg.server)).lower()} "
        f"(Bootstrap: {str(bool(cfg.bootstrap)).lower()})",
        f"           Client Addr: {cfg.client_addrs} (HTTP: {http}, HTTPS: {https}, "
        f"DNS: {dns}, "
        f"gRPC: {agent.mesh.plaintext_port}, gRPC-TLS: {agent.mesh.tls_port})",
        f"          Cluster Addr: {getattr(agent, 'advertise_addr', '')} "
        f"(LAN: {agent.gossip.port}, WAN: {ports.serf_wan})",
        f"          Cluster Bind: {_join(cfg.serf_lan_bind_address()[0], agent.gossip.port)}",
        f"           Server Addr: {_server_addr(agent)}",
        f"     Gossip Encryption: {str(bool(cfg.encrypt)).lower()}",
        "",
        "==> Log data will now stream in as it occurs:",
        "",
    ]
    return "\n".join(lines)


async def run(cfg: AgentConfig, argv: list[str] | None = None) -> int:
    from consulpy.agent.agent import AgentError
    from consulpy.runtime import Runtime

    # Signals are handled before anything is announced, so a supervisor that stops us as
    # soon as the banner appears still gets a graceful shutdown.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(name: str) -> None:
        received.append(name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        runtime = Runtime(cfg, reload_config=lambda: load_agent_config(argv or []))
    except AgentError as exc:
        print(f"==> {exc}", file=sys.stderr)
        return 1
    agent = runtime.agent
    try:
        await runtime.start()  # stops what it started when it fails
    except (OSError, AgentError) as exc:
        print(f"==> Error starting agent: {exc}", file=sys.stderr)
        return 1
    print(_banner(cfg, agent), file=sys.stderr, flush=True)
    waiters = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(agent.shutdown_requested.wait()),
    ]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if received:
        print(f"==> Caught signal: {received[0]}", file=sys.stderr, flush=True)
        # Consul: SIGTERM leaves when leave_on_terminate; SIGINT leaves unless
        # skip_leave_on_interrupt (servers skip by default, clients leave).
        leave = (
            cfg.leave_on_terminate if received[0] == "SIGTERM" else not cfg.skip_leave_on_interrupt
        )
        if leave and not agent.gossip.left:
            print("==> Gracefully leaving the cluster...", file=sys.stderr, flush=True)
            await agent.leave()
    else:
        print("==> Leave requested through the API", file=sys.stderr, flush=True)
    print("==> Gracefully shutting down agent...", file=sys.stderr, flush=True)
    await runtime.stop()
    return 0


def main(argv: list[str]) -> int:
    if any(a in ("-h", "-help", "--help") for a in argv):
        print("Usage: consulpy agent [options]\n\n" + flags_help())
        return 0
    try:
        cfg = load_agent_config(argv)
    except ConfigError as exc:
        print(f"==> {exc}", file=sys.stderr)
        return 1
    from consulpy.log import setup_logging

    setup_logging(cfg.log_level, cfg.log_json)
    for warning in cfg.warnings:
        print(f"==> WARNING: {warning}", file=sys.stderr)
    return asyncio.run(run(cfg, argv))
