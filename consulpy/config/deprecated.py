"""Old spellings of settings, moved to their current place within one source.

Consul still reads many keys it has renamed (top-level `acl_*` and TLS keys, `ui`, ...). As in
Consul, the translation happens per source before merging, and the current key wins when one
source sets both. Each use of an old key adds a warning for the agent to log.
"""

from __future__ import annotations

from typing import Any

# old key path -> current key path
_RENAMED: dict[str, str] = {
    "acl.tokens.agent_master": "acl.tokens.agent_recovery",
    "acl.tokens.master": "acl.tokens.initial_management",
    "acl_agent_master_token": "acl.tokens.agent_recovery",
    "acl_agent_token": "acl.tokens.agent",
    "acl_token": "acl.tokens.default",
    "acl_master_token": "acl.tokens.initial_management",
    "acl_replication_token": "acl.tokens.replication",
    "enable_acl_replication": "acl.enable_token_replication",
    "acl_datacenter": "primary_datacenter",
    "acl_default_policy": "acl.default_policy",
    "acl_down_policy": "acl.down_policy",
    "acl_ttl": "acl.token_ttl",
    "acl_enable_key_list_policy": "acl.enable_key_list_policy",
    "ca_file": "tls.defaults.ca_file",
    "ca_path": "tls.defaults.ca_path",
    "cert_file": "tls.defaults.cert_file",
    "key_file": "tls.defaults.key_file",
    "tls_cipher_suites": "tls.defaults.tls_cipher_suites",
    "tls_min_version": "tls.defaults.tls_min_version",
    "verify_incoming": "tls.defaults.verify_incoming",
    "verify_incoming_https": "tls.https.verify_incoming",
    "verify_incoming_rpc": "tls.internal_rpc.verify_incoming",
    "verify_outgoing": "tls.defaults.verify_outgoing",
    "verify_server_hostname": "tls.internal_rpc.verify_server_hostname",
    "ui": "ui_config.enabled",
    "ui_dir": "ui_config.dir",
    "ui_content_path": "ui_config.content_path",
    "non_voting_server": "read_replica",
    "raft_boltdb.NoFreelistSync": "raft_logstore.boltdb.no_freelist_sync",
}

_DROPPED = ("acl_enforce_version_8", "tls_prefer_server_cipher_suites")


def apply_deprecated(fragment: dict[str, Any]) -> list[str]:
    """Rewrite old keys of one typed source in place; return the warnings to log."""
    warnings: list[str] = []
    for old, new in _RENAMED.items():
        found, value = _pop(fragment, old)
        if not found:
            continue
        if old == "verify_incoming":
            # Before Consul 1.12 the top-level key never turned on client-cert checks for gRPC.
            _set_default(fragment, "tls.grpc.verify_incoming", False)
        if old == "acl_replication_token":
            _set(fragment, "acl.enable_token_replication", True)
        if old == "acl_datacenter":
            _set(fragment, "acl.enabled", True)
        _set_default(fragment, new, value)
        warnings.append(f"The '{old}' field is deprecated. Use the '{new}' field instead.")
    for old in _DROPPED:
        found, _ = _pop(fragment, old)
        if found:
            warnings.append(f"The '{old}' field is deprecated and is ignored.")
    if "start_join" in fragment or "start_join_wan" in fragment:
        warnings.append(
            "The 'start_join' and 'start_join_wan' fields (and -join) are deprecated. "
            "Use 'retry_join' and 'retry_join_wan' instead."
        )
    # A lone `service`/`check` cannot be merged key-wise across files: it joins the list.
    for single, plural in (("service", "services"), ("check", "checks")):
        items = fragment.pop(single, None)
        if items:
            fragment[plural] = [*fragment.get(plural, []), *items]
    return warnings


def _pop(fragment: dict[str, Any], path: str) -> tuple[bool, Any]:
    *parents, leaf = path.split(".")
    node: Any = fragment
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return False, None
    if leaf not in node:
        return False, None
    return True, node.pop(leaf)


def _node(fragment: dict[str, Any], parents: list[str]) -> dict[str, Any]:
    node = fragment
    for part in parents:
        node = node.setdefault(part, {})
    return node


def _set(fragment: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    _node(fragment, parents)[leaf] = value


def _set_default(fragment: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    _node(fragment, parents).setdefault(leaf, value)
