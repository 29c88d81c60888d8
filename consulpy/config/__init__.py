"""Agent configuration: Consul-compatible HCL/JSON files, flags, defaults and validation.

    cfg = load_agent_config(["-dev", "-node", "n1"])
    errors = validate_paths(["/etc/consulpy.d"])

See docs/configuration.md for the keys, flags, merge order and dev mode.
"""

from consulpy.config.errors import ConfigError
from consulpy.config.flags import FLAGS, flags_help
from consulpy.config.loader import load_agent_config, load_config_files, validate_paths
from consulpy.config.model import (
    ACL,
    TLS,
    Addresses,
    AgentConfig,
    Autopilot,
    Connect,
    Gossip,
    Limits,
    Performance,
    Ports,
    TLSProtocol,
    UIConfig,
)
from consulpy.config.sources import ConfigSource

__all__ = [
    "ACL",
    "FLAGS",
    "TLS",
    "Addresses",
    "AgentConfig",
    "Autopilot",
    "ConfigError",
    "ConfigSource",
    "Connect",
    "Gossip",
    "Limits",
    "Performance",
    "Ports",
    "TLSProtocol",
    "UIConfig",
    "flags_help",
    "load_agent_config",
    "load_config_files",
    "validate_paths",
]
