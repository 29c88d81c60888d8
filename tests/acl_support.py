"""What every ACL test directory needs: a dev agent's ACL config and a wait for the built-ins."""

from __future__ import annotations

from typing import Any

from consulpy.testing import DevAgent
from tests.helpers import eventually

ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"


def acl_config(management: str, **extra: Any) -> dict[str, Any]:
    """ACLs on, default deny, `management` as the initial management token."""
    return {
        "acl": {
            "enabled": True,
            "default_policy": "deny",
            "tokens": {"initial_management": management},
            **extra,
        }
    }


async def acl_ready(dev: DevAgent, management: str) -> None:
    """The leader writes the built-ins and the management token after the agent starts."""
    assert dev.agent is not None
    server = dev.agent.server
    await eventually(
        lambda: (
            server.store.acl.tokens.get_unique(management) is not None
            and server.store.acl.policies.get_unique("builtin/global-read-only") is not None
            and server.store.acl.tokens.get(ANONYMOUS_ACCESSOR) is not None
        ),
        what="ACL built-ins",
    )
