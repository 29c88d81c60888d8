"""Flood join's choice of targets: which LAN members a server joins into the WAN pool."""

from __future__ import annotations

from consulpy.agent.wan import flood_targets
from consulpy.gossip.events import Member, MemberStatus


def member(
    name: str, addr: str = "10.0.0.1", status: MemberStatus = MemberStatus.ALIVE, **tags: str
) -> Member:
    base = {"role": "consul", "dc": "dc1", "wan_join_port": "8302"}
    base.update(tags)
    return Member(name, addr, 8301, {k: v for k, v in base.items() if v}, status, 2, 5, 5, 2, 5, 4)


def test_only_alive_servers_of_our_datacenter_missing_from_the_wan_pool() -> None:
    lan = [
        member("me"),
        member("s2", "10.0.0.2"),
        member("s3", "10.0.0.3"),  # already in the WAN pool
        member("other-dc", "10.0.0.4", dc="dc2"),
        member("client", "10.0.0.5", role="node"),
        member("failed", "10.0.0.6", status=MemberStatus.FAILED),
        member("no-wan", "10.0.0.7", wan_join_port=""),
        member("bad-port", "10.0.0.8", wan_join_port="0"),
        member("v6", "fd00::9", wan_join_port="9302"),
    ]
    got = flood_targets(lan, {"me.dc1", "s3.dc1"}, "dc1", "me")
    assert got == ["10.0.0.2:8302", "[fd00::9]:9302"]


def test_nothing_to_do_when_every_server_is_in() -> None:
    lan = [member("me"), member("s2", "10.0.0.2")]
    assert flood_targets(lan, {"me.dc1", "s2.dc1"}, "dc1", "me") == []
