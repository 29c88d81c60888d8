"""Value checks for individual settings (a port's range, an address, a key's encoding, ...).

Each takes the typed value and returns it, possibly normalised, or raises ValueError with the
reason; the schema adds the file and key path to the message.
"""

from __future__ import annotations

import base64
import binascii
import grp
import ipaddress
import json
import pwd
import re
from typing import Any

from consulpy.config.netaddr import normalise_ip, normalise_ip_list, parse_ip

_BASIC_NAME = re.compile(r"^[a-z0-9_-]+$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_META_KEY = re.compile(r"^[a-zA-Z0-9_-]+$")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
META_MAX_PAIRS = 64


def port(value: int) -> int:
    """-1 (or any negative value) disables a listener; 0 asks the OS for a free port.

    Consul reads 0 as "disabled" too; consulpy keeps 0 so that tests and embedders can bind
    ephemeral ports (docs/configuration.md lists this difference). Above 65535 is an error.
    """
    if value < 0:
        return -1
    if value > 65535:
        raise ValueError(
            f"invalid port {value}: ports are 1-65535, 0 for any free port, or -1 to disable"
        )
    return value


def ip(value: str) -> str:
    return normalise_ip(value)


def bind_ip(value: str) -> str:
    if len(value.split()) > 1 and "{{" not in value:
        raise ValueError(
            "cannot contain multiple addresses; use addresses.{dns,http,https} instead"
        )
    return normalise_ip(value)


def advertise_ip(value: str) -> str:
    addr = normalise_ip(value)
    if parse_ip(addr).is_unspecified:
        raise ValueError("advertise address cannot be 0.0.0.0, :: or [::]")
    return addr


def advertise_ipv4(value: str) -> str:
    """advertise_addr_ipv4 / advertise_addr_wan_ipv4: an IPv4 advertise address."""
    addr = advertise_ip(value)
    if parse_ip(addr).version != 4:
        raise ValueError("must be an ipv4 address")
    return addr


def advertise_ipv6(value: str) -> str:
    """advertise_addr_ipv6 / advertise_addr_wan_ipv6: an IPv6 advertise address."""
    addr = advertise_ip(value)
    if parse_ip(addr).version != 6:
        raise ValueError("must be an ipv6 address")
    return addr


def ip_list(value: str) -> str:
    return normalise_ip_list(value)


def json_object_text(value: str) -> str:
    """ui_config.metrics_provider_options_json: empty, or JSON text of one object."""
    if value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError("must be empty or a string containing a JSON object")
    return value


def positive_rate(value: float) -> float:
    """A rate per second that must allow something (xds.update_max_per_second)."""
    if not value > 0:
        raise ValueError(f"must be greater than 0, got {value:g}")
    return value


def socket_mode(value: str) -> str:
    """unix_sockets.mode: permission bits in octal, as chmod takes them."""
    text = value.strip()
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"invalid mode {value!r}: give octal bits like 0770")
    return text


def socket_user(value: str) -> str:
    """unix_sockets.user: a user name or numeric ID that exists here (numbers are taken as is)."""
    text = value.strip()
    if not text.isdigit():
        try:
            pwd.getpwnam(text)
        except KeyError:
            raise ValueError(f"no such user: {value!r}") from None
    return text


def socket_group(value: str) -> str:
    """unix_sockets.group: a group name or numeric ID (Consul takes IDs only)."""
    text = value.strip()
    if not text.isdigit():
        try:
            grp.getgrnam(text)
        except KeyError:
            raise ValueError(f"no such group: {value!r}") from None
    return text


def listen_list(value: str) -> str:
    """addresses.http/https: IPs and `unix:///absolute/path` sockets, space-separated."""
    out = []
    for part in value.split():
        if part.startswith("unix://"):
            path = part.removeprefix("unix://")
            if not path.startswith("/"):
                raise ValueError(f"a unix socket needs an absolute path (unix:///path): {part!r}")
            out.append(part)
        else:
            out.append(normalise_ip_list(part))
    return " ".join(out)


def join_address(value: str) -> str:
    """A retry_join/start_join entry: host, IP, host:port or [v6]:port; no templates/auto-join."""
    if "{{" in value:
        raise ValueError(f"go-sockaddr templates are not supported: {value!r}")
    if value.startswith("provider=") or " provider=" in value:
        raise ValueError(f"cloud auto-join (go-discover) is not supported: {value!r}")
    if not value.strip():
        raise ValueError("empty address")
    return value.strip()


def filter_rule(value: str) -> str:
    """A telemetry.prefix_filter rule: "+prefix" allows, "-prefix" blocks."""
    rule = value.strip()
    if len(rule) < 2 or rule[0] not in "+-":
        raise ValueError(f"Filter rule must begin with either '+' or '-': {value!r}")
    return rule


def metrics_address(value: str) -> str:
    """A statsd/DogStatsD sink address: host:port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


def cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"invalid CIDR {value!r}") from None


def datacenter(value: str) -> str:
    """Consul lower-cases datacenter names, then allows only [a-z0-9_-]."""
    name = value.lower()
    if not name:
        raise ValueError("cannot be empty")
    if not _BASIC_NAME.match(name):
        raise ValueError(
            f"can only contain lowercase alphanumeric, - or _ characters, got {value!r}"
        )
    return name


def optional_datacenter(value: str) -> str:
    return datacenter(value) if value else value


def node_id(value: str) -> str:
    lowered = value.lower()
    if not _UUID.match(lowered):
        raise ValueError(f"must be a UUID like 8-4-4-4-12 hex digits, got {value!r}")
    return lowered


def encrypt_key(value: str) -> str:
    """The gossip key: standard base64 of 16, 24 or 32 bytes (AES-128/192/256)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid key: not valid base64") from None
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"invalid key: must decode to 16, 24 or 32 bytes, got {len(raw)}")
    return value


def log_level(value: str) -> str:
    """Consul accepts these names in any case, and ERR for error."""
    level = value.lower()
    if level == "err":
        level = "error"
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def event_loop(value: str) -> str:
    """auto, uvloop or asyncio; uvloop must be installed when named (a setting is honoured).
    EventLoopError is a ValueError, which the config loader reports with the key's name."""
    from consulpy.util.eventloop import check

    return check(value)


def raft_protocol(value: int) -> int:
    if value != 3:
        raise ValueError(f"raft_protocol version {value} is not supported (only 3)")
    return value


def raft_multiplier(value: int) -> int:
    if not 1 <= value <= 10:
        raise ValueError(f"cannot be {value}; must be between 1 and 10")
    return value


def ca_provider(value: str) -> str:
    if value in ("", "consul"):
        return value
    if value in ("vault", "aws-pca"):
        raise ValueError(f"CA provider {value!r} is not supported; only the built-in 'consul'")
    raise ValueError(f"{value!r} is not a valid CA provider")


def node_meta_entry(meta: dict[str, Any]) -> dict[str, Any]:
    """Consul's node metadata rules: key chars/lengths, reserved prefix, value length."""
    for key, value in meta.items():
        if not key:
            raise ValueError("key cannot be blank")
        if not _META_KEY.match(key):
            raise ValueError(f"key {key!r} can only contain alphanumeric, - or _ characters")
        if len(key) > 128:
            raise ValueError(f"key {key!r} is longer than 128 characters")
        if key.startswith("consul-"):
            raise ValueError(f"key {key!r} uses the reserved prefix 'consul-'")
        if len(value) > 512:
            raise ValueError(f"value of key {key!r} is longer than 512 characters")
    if len(meta) > META_MAX_PAIRS:
        raise ValueError(f"cannot have more than {META_MAX_PAIRS} key/value pairs")
    return meta
