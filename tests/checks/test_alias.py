"""Alias checks following a source of checks, and the aggregation rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from consulpy.agent.checks import CheckError, aggregate_alias, make_runner
from tests.checks.support import Recorder, fast


class Source:
    """An in-memory AliasSource: node -> service -> checks; notifies subscribers on change."""

    def __init__(self) -> None:
        self.services: dict[str, set[str]] = {"": {"web-1"}}
        self.checks: list[dict] = []
        self.subscribers: list[Callable[[], None]] = []
        self.fail: Exception | None = None
        self.asynchronous = False

    def set_check(
        self, check_id: str, status: str, output: str = "", service: str = "web-1", node: str = ""
    ) -> None:
        self.checks = [c for c in self.checks if c["CheckID"] != check_id]
        self.checks.append(
            {
                "Node": node,
                "CheckID": check_id,
                "Name": check_id.upper(),
                "Status": status,
                "Output": output,
                "ServiceID": service,
            }
        )
        for callback in list(self.subscribers):
            callback()

    def checks_for(self, node, service_id):
        if self.fail is not None:
            raise self.fail
        key = node or ""
        if service_id and service_id not in self.services.get(key, set()):
            result = None
        else:
            result = [c for c in self.checks if (c["Node"] or "") == key]
        if self.asynchronous:

            async def later():
                await asyncio.sleep(0)
                return result

            return later()
        return result

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)


async def start_alias(source: Source, **body):
    rec = Recorder()
    defn = fast({"Name": "alias", **body})
    runner = make_runner("alias-1", defn, rec, alias_source=source)
    await runner.start()
    return runner, rec


async def test_follows_the_aliased_service() -> None:
    source = Source()
    runner, rec = await start_alias(source, AliasService="web-1")
    try:
        assert await rec.first() == ("passing", "No checks found.")
        source.set_check("http", "passing", "fine")
        assert await rec.count(2) == ("passing", "All checks passing.")
        source.set_check("tcp", "warning", "slow")
        assert await rec.count(3) == ("warning", 'Aliased check "TCP" failing: slow')
        source.set_check("http", "critical", "down")
        assert await rec.count(4) == ("critical", 'Aliased check "HTTP" failing: down')
        source.set_check("http", "passing", "fine")
        source.set_check("tcp", "passing", "ok")
        assert await rec.wait(lambda u: u[-1][1] == "passing") == ("passing", "All checks passing.")
        assert len(source.subscribers) == 1
    finally:
        await runner.stop()
    assert source.subscribers == []


async def test_other_services_are_ignored_and_node_checks_count() -> None:
    source = Source()
    source.set_check("db", "critical", "db down", service="db-1")
    runner, rec = await start_alias(source, AliasService="web-1")
    try:
        assert await rec.first() == ("passing", "No checks found.")
        source.set_check("serfHealth", "critical", "node down", service="")
        assert await rec.count(2) == ("critical", 'Aliased check "SERFHEALTH" failing: node down')
    finally:
        await runner.stop()


async def test_missing_service_is_critical() -> None:
    source = Source()
    runner, rec = await start_alias(source, AliasService="api-9")
    try:
        assert await rec.first() == ("critical", "Service api-9 could not be found on node ")
    finally:
        await runner.stop()


async def test_remote_node_and_async_source() -> None:
    source = Source()
    source.asynchronous = True
    source.services["n2"] = {"web-2"}
    runner, rec = await start_alias(source, AliasService="web-2", AliasNode="n2")
    try:
        assert await rec.first() == ("passing", "No checks found.")
        source.set_check("h", "critical", "x", service="web-2", node="n2")
        assert await rec.count(2) == ("critical", 'Aliased check "H" failing: x')
    finally:
        await runner.stop()


async def test_source_errors_are_critical_and_recover() -> None:
    source = Source()
    source.fail = RuntimeError("no leader")
    runner, rec = await start_alias(source, AliasService="web-1")
    try:
        assert await rec.first() == (
            "critical",
            "Failure checking aliased node or service: no leader",
        )
        source.fail = None
        source.set_check("http", "passing")
        assert await rec.count(2) == ("passing", "All checks passing.")
    finally:
        await runner.stop()


def test_alias_needs_a_source() -> None:
    with pytest.raises(CheckError, match="alias source"):
        make_runner("a", fast({"Name": "a", "AliasService": "web"}), Recorder())


def test_aggregation_rules() -> None:
    checks = [
        {"CheckID": "a", "Name": "a", "Status": "warning", "Output": "w", "ServiceID": "s"},
        {"CheckID": "b", "Name": "b", "Status": "passing", "Output": "", "ServiceID": "s"},
    ]
    # a warning is not overwritten by a later passing check
    assert aggregate_alias(checks, node="", service_id="s") == (
        "warning",
        'Aliased check "a" failing: w',
    )
    # critical wins and stops the scan
    checks.append(
        {"CheckID": "c", "Name": "c", "Status": "critical", "Output": "x", "ServiceID": "s"}
    )
    checks.append(
        {"CheckID": "d", "Name": "d", "Status": "warning", "Output": "y", "ServiceID": "s"}
    )
    assert aggregate_alias(checks, node="", service_id="s")[0] == "critical"
    # a node alias only looks at node-level checks of that node
    node_checks = [
        {
            "Node": "n1",
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": "passing",
            "ServiceID": "",
        },
        {"Node": "n1", "CheckID": "svc", "Name": "svc", "Status": "critical", "ServiceID": "s"},
        {"Node": "n2", "CheckID": "other", "Name": "o", "Status": "critical", "ServiceID": ""},
    ]
    assert aggregate_alias(node_checks, node="N1", service_id="") == (
        "passing",
        "All checks passing.",
    )
    # a local node-level alias does not watch itself
    own = [{"CheckID": "me", "Name": "me", "Status": "critical", "ServiceID": ""}]
    assert aggregate_alias(own, node="", service_id="s", own_check_id="me") == (
        "passing",
        "No checks found.",
    )
