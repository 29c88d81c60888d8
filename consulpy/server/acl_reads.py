"""ACL reads (tokens, policies, roles, auth methods, binding rules) and the views they render.

Links are stored by ID; the views resolve names again on every read (a renamed policy shows
its new name on every token, a deleted one disappears). An expired token is absent.
"""

from __future__ import annotations

import time
from typing import Any

from consulpy.state.acl import ACLTables, Row
from consulpy.state.store import StateStore
from consulpy.state.watch import WatchSet

# The clock the reads use to hide expired tokens (tests replace it, with Server.clock).
_now = time.time


def _named_links(table: Any, links: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for link in links or ():
        row = table.get(link["ID"])
        if row is not None:  # a deleted policy or role disappears from its tokens
            out.append({"ID": row["ID"], "Name": row["Name"]})
    return out


def token_view(acl: ACLTables, row: Row, *, stub: bool = False) -> Row:
    out: Row = {"AccessorID": row["AccessorID"], "SecretID": row["SecretID"]}
    out["Description"] = row.get("Description", "")
    policies = _named_links(acl.policies, row.get("Policies") or [])
    roles = _named_links(acl.roles, row.get("Roles") or [])
    if policies:
        out["Policies"] = policies
    if roles:
        out["Roles"] = roles
    if row.get("ServiceIdentities"):
        out["ServiceIdentities"] = row["ServiceIdentities"]
    if row.get("NodeIdentities"):
        out["NodeIdentities"] = row["NodeIdentities"]
    out["Local"] = bool(row.get("Local"))
    if row.get("AuthMethod"):
        out["AuthMethod"] = row["AuthMethod"]
    if row.get("ExpirationTime"):
        out["ExpirationTime"] = row["ExpirationTime"]
    if row.get("ExpirationTTL") and not stub:
        out["ExpirationTTL"] = row["ExpirationTTL"]
    out["CreateTime"] = row["CreateTime"]
    out["Hash"] = row["Hash"]
    out["CreateIndex"] = row["CreateIndex"]
    out["ModifyIndex"] = row["ModifyIndex"]
    out["Legacy"] = False
    return out


def policy_view(row: Row, *, stub: bool = False) -> Row:
    out: Row = {"ID": row["ID"], "Name": row["Name"], "Description": row.get("Description", "")}
    if not stub:
        out["Rules"] = row.get("Rules", "")
    if row.get("Datacenters"):
        out["Datacenters"] = row["Datacenters"]
    out.update(Hash=row["Hash"], CreateIndex=row["CreateIndex"], ModifyIndex=row["ModifyIndex"])
    return out


def role_view(acl: ACLTables, row: Row) -> Row:
    out: Row = {"ID": row["ID"], "Name": row["Name"], "Description": row.get("Description", "")}
    policies = _named_links(acl.policies, row.get("Policies") or [])
    if policies:
        out["Policies"] = policies
    if row.get("ServiceIdentities"):
        out["ServiceIdentities"] = row["ServiceIdentities"]
    if row.get("NodeIdentities"):
        out["NodeIdentities"] = row["NodeIdentities"]
    out.update(Hash=row["Hash"], CreateIndex=row["CreateIndex"], ModifyIndex=row["ModifyIndex"])
    return out


def auth_method_view(row: Row, *, stub: bool = False) -> Row:
    out = {k: v for k, v in row.items() if not k.startswith("_") and v not in ("", None)}
    if stub:
        out.pop("Config", None)
    return out


def _filtered(items: list[Row], args: dict[str, Any]) -> list[Row]:
    """`?filter=` over the rendered rows (Consul's ACL lists ignore it; consulpy applies it
    rather than parse a setting and drop it)."""
    expr = args.get("filter") or ""
    if not expr:
        return items
    from consulpy.filter import FilterError, compile_filter
    from consulpy.server.reads import ReadError

    try:
        return compile_filter(expr).apply(items)
    except FilterError as exc:
        raise ReadError(f"Failed to create boolean expression evaluator: {exc}") from exc


# ---------------------------------------------------------------------- reads
def _watch(ws: WatchSet | None, *tables: str) -> None:
    if ws is not None:
        for table in tables:
            ws.add(("t", table))


def read_token(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-tokens", "acl-policies", "acl-roles")
    index = store.table_index("acl-tokens", "acl-policies", "acl-roles")
    if args.get("secret"):
        row = store.acl.token_by_secret(args["secret"], _now())
    else:
        row = store.acl.token(args["accessor"], _now())
    return index, (token_view(store.acl, row) if row is not None else None)


def resolve_token(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """What an agent's ACL resolver needs of a secret in one read: the token, the policies it
    links directly or through its roles, and those roles (possession of the secret is the
    permission, as for /v1/acl/token/self)."""
    _watch(ws, "acl-tokens", "acl-policies", "acl-roles")
    index = store.table_index("acl-tokens", "acl-policies", "acl-roles")
    acl = store.acl
    row = acl.token_by_secret(args.get("secret") or "", _now())
    if row is None:
        return index, None
    roles = [r for r in (acl.roles.get(link["ID"]) for link in row.get("Roles") or []) if r]
    policy_ids = [link["ID"] for link in row.get("Policies") or []]
    for role in roles:
        policy_ids.extend(link["ID"] for link in role.get("Policies") or [])
    policies = [p for p in (acl.policies.get(pid) for pid in dict.fromkeys(policy_ids)) if p]
    return index, {
        "Token": token_view(acl, row),
        "Policies": [policy_view(p) for p in policies],
        "Roles": [role_view(acl, r) for r in roles],
    }


def list_tokens(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-tokens", "acl-policies", "acl-roles")
    rows = store.acl.list_tokens(
        _now(),
        policy=args.get("policy", ""),
        role=args.get("role", ""),
        auth_method=args.get("authmethod", ""),
        service_name=args.get("servicename", ""),
    )
    index = store.table_index("acl-tokens", "acl-policies", "acl-roles")
    return index, _filtered([token_view(store.acl, r, stub=True) for r in rows], args)


def read_policy(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-policies")
    acl = store.acl
    row = (
        acl.policies.get_unique(args["name"]) if args.get("name") else acl.policies.get(args["id"])
    )
    return store.table_index("acl-policies"), (policy_view(row) if row is not None else None)


def list_policies(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-policies")
    rows = store.acl.policies.list()
    return store.table_index("acl-policies"), _filtered(
        [policy_view(r, stub=True) for r in rows], args
    )


def read_role(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-roles", "acl-policies")
    acl = store.acl
    row = acl.roles.get_unique(args["name"]) if args.get("name") else acl.roles.get(args["id"])
    index = store.table_index("acl-roles", "acl-policies")
    return index, (role_view(acl, row) if row is not None else None)


def list_roles(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    _watch(ws, "acl-roles", "acl-policies")
    acl = store.acl
    rows = acl.roles.list()
    if args.get("policy"):
        rows = [r for r in rows if any(p["ID"] == args["policy"] for p in r.get("Policies") or ())]
    return store.table_index("acl-roles", "acl-policies"), _filtered(
        [role_view(acl, r) for r in rows], args
    )


def read_auth_method(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    _watch(ws, "acl-auth-methods")
    row = store.acl.auth_methods.get(args["name"])
    return store.table_index("acl-auth-methods"), (
        auth_method_view(row) if row is not None else None
    )


def list_auth_methods(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    _watch(ws, "acl-auth-methods")
    rows = store.acl.auth_methods.list()
    return store.table_index("acl-auth-methods"), _filtered(
        [auth_method_view(r, stub=True) for r in rows], args
    )


def read_binding_rule(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    _watch(ws, "acl-binding-rules")
    row = store.acl.binding_rules.get(args["id"])
    return store.table_index("acl-binding-rules"), (dict(row) if row is not None else None)


def list_binding_rules(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    _watch(ws, "acl-binding-rules")
    rows = store.acl.binding_rules.list()
    if args.get("authmethod"):
        rows = [r for r in rows if r["AuthMethod"] == args["authmethod"]]
    return store.table_index("acl-binding-rules"), _filtered([dict(r) for r in rows], args)


ACL_READS = {
    "ACL.TokenRead": read_token,
    "ACL.ResolveToken": resolve_token,
    "ACL.TokenList": list_tokens,
    "ACL.PolicyRead": read_policy,
    "ACL.PolicyList": list_policies,
    "ACL.RoleRead": read_role,
    "ACL.RoleList": list_roles,
    "ACL.AuthMethodRead": read_auth_method,
    "ACL.AuthMethodList": list_auth_methods,
    "ACL.BindingRuleRead": read_binding_rule,
    "ACL.BindingRuleList": list_binding_rules,
}


# What a secondary datacenter replicates, by the name it asks for: the stored rows as they are
# (a replicated token must keep its secret and links), global tokens only.
REPLICATED_TABLES = {"policies": "acl-policies", "roles": "acl-roles", "tokens": "acl-tokens"}


def replication_rows(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    table = REPLICATED_TABLES[args["table"]]
    _watch(ws, table)
    acl = store.acl
    rows = {"acl-policies": acl.policies, "acl-roles": acl.roles, "acl-tokens": acl.tokens}[table]
    out = [dict(r) for r in rows.list() if not (table == "acl-tokens" and r.get("Local"))]
    return store.table_index(table), out


ACL_READS["ACL.ReplicationRows"] = replication_rows
