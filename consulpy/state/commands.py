"""The commands the FSM applies, as msgpack-encodable dicts, and their builders.

Proposers build commands only through these functions so that the shapes live in one place.
Only the server role builds them (consulpy/server/endpoints for requests, the leader's own
duties), always on the leader. Every command carries `ts`, the leader's wall clock (unix
seconds), passed in explicitly: rules that depend on time (lock-delay, check timestamps) use it
instead of the applying server's clock, so every replica computes the same result.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

import msgpack

from consulpy.state import snapshot_stream

Command = dict[str, Any]

KV = "kv"
TXN = "txn"
SESSION_CREATE = "session_create"
SESSION_DESTROY = "session_destroy"
TOMBSTONE_REAP = "tombstone_reap"
REGISTER = "register"
DEREGISTER = "deregister"
RESTORE = "restore"
CONFIG_ENTRY_SET = "config_entry_set"
CONFIG_ENTRY_DELETE = "config_entry_delete"
CA_SET = "ca_set"
CA_SERIAL = "ca_serial"
PREPARED_QUERY = "prepared_query"
COORDINATE_BATCH_UPDATE = "coordinate_batch_update"
PREPARED_QUERY_OPS = ("create", "update", "delete")
AUTOPILOT_SET = "autopilot_set"
ACL_BOOTSTRAP = "acl_bootstrap"
ACL_TOKEN_SET = "acl_token_set"
ACL_TOKEN_DELETE = "acl_token_delete"
ACL_POLICY_SET = "acl_policy_set"
ACL_POLICY_DELETE = "acl_policy_delete"
ACL_ROLE_SET = "acl_role_set"
ACL_ROLE_DELETE = "acl_role_delete"
ACL_AUTH_METHOD_SET = "acl_auth_method_set"
ACL_AUTH_METHOD_DELETE = "acl_auth_method_delete"
ACL_BINDING_RULE_SET = "acl_binding_rule_set"
ACL_BINDING_RULE_DELETE = "acl_binding_rule_delete"

# KV verbs accepted by the `kv` command (a subset of the txn verbs: the writes).
KV_WRITE_VERBS = ("set", "cas", "lock", "unlock", "delete", "delete-cas", "delete-tree")


def kv(
    verb: str,
    key: str,
    value: bytes = b"",
    flags: int = 0,
    index: int = 0,
    session: str = "",
    *,
    ts: float,
) -> Command:
    return {
        "t": KV,
        "verb": verb,
        "key": key,
        "value": value,
        "flags": flags,
        "index": index,
        "session": session,
        "ts": ts,
    }


def txn(ops: list[dict[str, Any]], *, ts: float) -> Command:
    return {"t": TXN, "ops": ops, "ts": ts}


def autopilot_set(config: dict[str, Any], cas: int | None, *, ts: float) -> Command:
    """Store the autopilot configuration row (see state/autopilot.py); `cas` None: always."""
    return {"t": AUTOPILOT_SET, "config": config, "cas": cas, "ts": ts}


def session_create(session: dict[str, Any], *, ts: float) -> Command:
    return {"t": SESSION_CREATE, "session": session, "ts": ts}


def session_destroy(session_id: str, *, ts: float) -> Command:
    return {"t": SESSION_DESTROY, "id": session_id, "ts": ts}


def tombstone_reap(upto: int, *, ts: float) -> Command:
    return {"t": TOMBSTONE_REAP, "upto": upto, "ts": ts}


def register(request: dict[str, Any], *, ts: float) -> Command:
    return {"t": REGISTER, "req": request, "ts": ts}


def deregister(request: dict[str, Any], *, ts: float) -> Command:
    return {"t": DEREGISTER, "req": request, "ts": ts}


RESTORE_ZLIB = "zlib"


def restore(snapshot: bytes, *, ts: float, encoding: str = "") -> Command:
    """Replace the state; `encoding` "zlib": `snapshot` is compressed (the entry then costs
    about the archive's size, and is unpacked as it is decompressed)."""
    if encoding:
        return {"t": RESTORE, "data": snapshot, "enc": encoding, "ts": ts}
    return {"t": RESTORE, "data": snapshot, "ts": ts}


def restore_source(data: bytes, encoding: str) -> IO[bytes]:
    """A file over a restore command's state, decompressing it if it was compressed."""
    if encoding == RESTORE_ZLIB:
        return cast(IO[bytes], snapshot_stream.Inflater(data))
    if encoding:
        raise ValueError(f"unknown snapshot state encoding {encoding!r}")
    return io.BytesIO(data)


def config_entry_set(entry: dict[str, Any], cas: int | None = None, *, ts: float) -> Command:
    return {"t": CONFIG_ENTRY_SET, "entry": entry, "cas": cas, "ts": ts}


def config_entry_delete(kind: str, name: str, cas: int | None = None, *, ts: float) -> Command:
    return {"t": CONFIG_ENTRY_DELETE, "kind": kind, "name": name, "cas": cas, "ts": ts}


def ca_set(
    config: dict[str, Any], roots: list[dict[str, Any]], cas: int | None = None, *, ts: float
) -> Command:
    """Replace the CA configuration and roots (bootstrap, rotation); `cas` guards against a
    concurrent change (the ModifyIndex of the configuration read before)."""
    return {"t": CA_SET, "config": config, "roots": roots, "cas": cas, "ts": ts}


def ca_serial(*, ts: float) -> Command:
    return {"t": CA_SERIAL, "ts": ts}


def coordinate_batch_update(updates: list[dict[str, Any]], *, ts: float) -> Command:
    """Store nodes' coordinates: each update is `{"Node", "Segment", "Coord"}` (validated by
    Coordinate.Update); updates for nodes not in the catalog are skipped when applied."""
    return {"t": COORDINATE_BATCH_UPDATE, "updates": updates, "ts": ts}


def prepared_query(op: str, query: dict[str, Any], *, ts: float) -> Command:
    """Create, update (full replacement) or delete a prepared query; `query` is the validated
    definition with its ID (delete: only the ID is read)."""
    return {"t": PREPARED_QUERY, "op": op, "query": query, "ts": ts}


def acl_bootstrap(token: dict[str, Any], reset_index: int, *, ts: float) -> Command:
    """Store the bootstrap token, once: allowed while nothing was bootstrapped, or when
    `reset_index` names the index of the previous bootstrap (the reset file's content)."""
    return {"t": ACL_BOOTSTRAP, "token": token, "reset_index": reset_index, "ts": ts}


def acl_token_set(token: dict[str, Any], create: bool, *, ts: float) -> Command:
    """Upsert a validated token; `create` refuses an AccessorID or SecretID in use."""
    return {"t": ACL_TOKEN_SET, "token": token, "create": create, "ts": ts}


def acl_token_delete(accessors: list[str], *, ts: float) -> Command:
    """Delete tokens by AccessorID (one from the API, a batch when the leader reaps)."""
    return {"t": ACL_TOKEN_DELETE, "ids": accessors, "ts": ts}


def acl_policy_set(policy: dict[str, Any], *, ts: float) -> Command:
    return {"t": ACL_POLICY_SET, "row": policy, "ts": ts}


def acl_policy_delete(policy_id: str, *, ts: float) -> Command:
    return {"t": ACL_POLICY_DELETE, "id": policy_id, "ts": ts}


def acl_role_set(role: dict[str, Any], *, ts: float) -> Command:
    return {"t": ACL_ROLE_SET, "row": role, "ts": ts}


def acl_role_delete(role_id: str, *, ts: float) -> Command:
    return {"t": ACL_ROLE_DELETE, "id": role_id, "ts": ts}


def acl_auth_method_set(method: dict[str, Any], *, ts: float) -> Command:
    return {"t": ACL_AUTH_METHOD_SET, "row": method, "ts": ts}


def acl_auth_method_delete(name: str, *, ts: float) -> Command:
    """Delete an auth method with its binding rules and the tokens it issued."""
    return {"t": ACL_AUTH_METHOD_DELETE, "id": name, "ts": ts}


def acl_binding_rule_set(rule: dict[str, Any], *, ts: float) -> Command:
    return {"t": ACL_BINDING_RULE_SET, "row": rule, "ts": ts}


def acl_binding_rule_delete(rule_id: str, *, ts: float) -> Command:
    return {"t": ACL_BINDING_RULE_DELETE, "id": rule_id, "ts": ts}


def encode(cmd: Command) -> bytes:
    return msgpack.packb(cmd, use_bin_type=True)


def decode(data: bytes) -> Command:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
