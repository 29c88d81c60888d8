"""`consulpy agent`: load the configuration, start an agent (through the composition root,
`consulpy.runtime`), stop it cleanly on a signal."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from typing import Any, NoReturn

import structlog

from consulpy.config import AgentConfig, ConfigError, flags_help, load_agent_config
from consulpy.config.hcl import release_parser
from consulpy.version import CONSUL_COMPAT_VERSION, __version__

log = structlog.get_logger("consulpy.agent")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _wan_port(agent: Any, configured: int) -> int:
    """The WAN gossip port bound (port 0 asks the OS for one), else the configured one."""
    wan = getattr(agent, "wan", None)
    return wan.port if wan is not None else configured


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
    http_addrs = [f"{h}:{p}" for h, p in getattr(agent, "http_addresses", [])]
    http_addrs += [f"unix://{path}" for path in getattr(agent, "http_unix_paths", [])]
    http = ", ".join(http_addrs) or "disabled"
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
        f"(LAN: {agent.gossip.port}, WAN: {_wan_port(agent, ports.serf_wan)})",
        f"          Cluster Bind: {_join(cfg.serf_lan_bind_address()[0], agent.gossip.port)}",
        f"           Server Addr: {_server_addr(agent)}",
        f"     Gossip Encryption: {str(bool(cfg.encrypt)).lower()}",
        "",
        "==> Log data will now stream in as it occurs:",
        "",
    ]
    return "\n".join(lines)


# Consul gives a graceful leave this long before exiting with 1 anyway.
GRACEFUL_TIMEOUT = 15.0


def _exit_now(code: int) -> NoReturn:
    """Exit at once: after a second signal or a graceful leave that took too long, and after
    a completed shutdown (everything that holds state is closed by then; tearing down the
    event loop with thousands of abandoned blocking queries would only add seconds)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def run(cfg: AgentConfig, argv: list[str] | None = None) -> int:
    from consulpy.agent.agent import AgentError
    from consulpy.log import LOGS
    from consulpy.runtime import Runtime
    from consulpy.util.eventloop import loop_name

    # Signals are handled before anything is announced, so a supervisor that stops us as
    # soon as the banner appears still gets a graceful shutdown.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []
    started = False
    reloads: set[asyncio.Task[None]] = set()

    def on_signal(name: str) -> None:
        received.append(name)
        if len(received) > 1:
            print(f"==> Caught second signal {name}. Exiting", file=sys.stderr)
            _exit_now(1)
        stop.set()

    def on_hangup() -> None:
        if not started:
            log.error("cannot reload before agent started")
            return
        task = loop.create_task(_reload(runtime.agent))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        runtime = Runtime(cfg, reload_config=lambda: load_agent_config(argv or []))
    except AgentError as exc:
        print(f"==> {exc}", file=sys.stderr)
        return 1
    agent = runtime.agent
    agent.reload_hooks.append(lambda new: LOGS.set_level(new.log_level))
    agent.reload_hooks.append(lambda new: LOGS.set_sublevels(new.log_sublevels))
    try:
        await runtime.start()  # stops what it started when it fails
    except (OSError, AgentError) as exc:
        print(f"==> Error starting agent: {exc}", file=sys.stderr)
        return 1
    started = True
    # What start-up built (modules, config, the listeners) lives as long as the process: move
    # it out of the collector's sight, so the full collections that a busy server's steady
    # allocation triggers do not walk it again every time (issue 21).
    release_parser()  # rebuilt on the next HCL parse (a reload, an ACL policy)
    gc.collect()
    gc.freeze()
    print(_banner(cfg, agent), file=sys.stderr, flush=True)
    log.info("event loop", loop=loop_name(loop))
    waiters = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(agent.shutdown_requested.wait()),
    ]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if not received:
        print("==> Leave requested through the API", file=sys.stderr, flush=True)
        await runtime.stop(exiting=True)
        _exit_now(0)
    print(f"==> Caught signal: {received[0]}", file=sys.stderr, flush=True)
    # A process on its way out needs no cycle collection: with thousands of connections to
    # close, collections triggered by the teardown itself cost seconds.
    gc.disable()
    # Consul: SIGTERM leaves when leave_on_terminate; SIGINT leaves unless
    # skip_leave_on_interrupt (servers skip by default, clients leave). The values in force
    # now count (a reload may have changed them).
    now = agent.config
    graceful = (
        now.leave_on_terminate if received[0] == "SIGTERM" else not now.skip_leave_on_interrupt
    )
    if not graceful:
        print("==> Graceful shutdown disabled. Exiting", file=sys.stderr, flush=True)
        await runtime.stop(exiting=True)
        _exit_now(1)
    print("==> Gracefully shutting down agent...", file=sys.stderr, flush=True)

    async def leave_and_stop() -> None:
        if not agent.gossip.left:
            await agent.leave()
        await runtime.stop(exiting=True)

    try:
        await asyncio.wait_for(leave_and_stop(), GRACEFUL_TIMEOUT)
    except TimeoutError:
        print("==> Timeout on graceful leave. Exiting", file=sys.stderr)
        _exit_now(1)
    except Exception as exc:
        print(f"==> Error on leave: {exc}", file=sys.stderr, flush=True)
        await runtime.stop(exiting=True)
        _exit_now(1)
    print("==> Graceful exit completed", file=sys.stderr, flush=True)
    _exit_now(0)


async def _reload(agent: Any) -> None:
    """SIGHUP: reload as `consulpy reload` does; a failure is logged and changes nothing."""
    log.info("caught signal SIGHUP: reloading configuration")
    try:
        await agent.reload()
    except Exception as exc:
        log.error("Failed to reload configs", error=str(exc))


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

    try:
        setup_logging(
            cfg.log_level,
            cfg.log_json,
            log_file=cfg.log_file,
            rotate_bytes=cfg.log_rotate_bytes,
            rotate_duration=cfg.log_rotate_duration,
            rotate_max_files=cfg.log_rotate_max_files,
            syslog=cfg.enable_syslog,
            syslog_facility=cfg.syslog_facility,
            sublevels=cfg.log_sublevels,
        )
    except (OSError, ValueError) as exc:
        print(f"==> Failed to setup logging: {exc}", file=sys.stderr)
        return 1
    for warning in cfg.warnings:
        print(f"==> WARNING: {warning}", file=sys.stderr)
    raise_fd_limit()
    from consulpy.util.eventloop import EventLoopError
    from consulpy.util.eventloop import run as run_loop

    try:
        return run_loop(run(cfg, argv), cfg.event_loop)
    except EventLoopError as exc:  # $CONSULPY_EVENT_LOOP names an unknown or missing loop
        print(f"==> {exc}", file=sys.stderr)
        return 1


def raise_fd_limit() -> None:
    """Lift the soft RLIMIT_NOFILE to the hard one, as a Go program (Consul) does at start:
    every blocking query holds a connection, and a soft limit of 1024 caps an agent at about
    a thousand watchers. The hard limit stays whatever the operator set (ulimit -Hn)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # an unusual hard limit (infinity refused): keep the soft one
