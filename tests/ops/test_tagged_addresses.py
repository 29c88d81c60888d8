"""The node's tagged addresses in the catalog: `lan`/`wan` and the family-tagged
`lan_ipv4`/`wan_ipv4` from the advertise addresses, `advertise_addr_ipv4`/`advertise_addr_ipv6`
as `lan_ipv4`/`lan_ipv6`, and the user's `tagged_addresses` kept beside them."""

from __future__ import annotations

from tests.cli.agentproc import consulpy
from tests.helpers import eventually_value
from tests.ops.procs import DEV, get_json, start


async def test_node_tagged_addresses() -> None:
    hcl = (
        'advertise_addr_ipv4 = "127.0.0.2"\n'
        'advertise_addr_ipv6 = "fd00::5"\n'
        'tagged_addresses { custom = "198.51.100.7" lan = "192.0.2.1" }\n'
    )
    agent = start(*DEV, "-hcl", hcl)
    try:
        name = get_json(agent, "/v1/agent/self")["Config"]["NodeName"]

        def tagged() -> dict[str, str] | None:
            node = get_json(agent, f"/v1/catalog/node/{name}")
            return node and node["Node"]["TaggedAddresses"]

        found = await eventually_value(tagged, timeout=60, what="node in the catalog")
        assert found == {
            "lan": "127.0.0.1",  # the agent's own address wins over tagged_addresses.lan
            "lan_ipv4": "127.0.0.2",
            "lan_ipv6": "fd00::5",
            "wan": "127.0.0.1",
            "wan_ipv4": "127.0.0.1",
            "custom": "198.51.100.7",
        }
    finally:
        agent.stop()


def test_family_is_checked() -> None:
    for key, value, want in (
        ("advertise_addr_ipv4", "fd00::5", "must be an ipv4 address"),
        ("advertise_addr_ipv6", "10.0.0.1", "must be an ipv6 address"),
    ):
        result = consulpy("agent", *DEV, "-hcl", f'{key} = "{value}"')
        assert result.returncode == 1
        assert key in result.stderr and want in result.stderr, result.stderr
