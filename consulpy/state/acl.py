"""ACL state: tokens, policies, roles, auth methods, binding rules and the bootstrap marker.

Rows are plain dicts in Consul's field names. Links (a token's policies and roles, a role's
policies) are stored by ID only, so a rename shows up everywhere on the next read. A token's
expiry is kept as `_expires` (unix seconds, 0 = never) next to its RFC 3339
`ExpirationTime`; underscore fields never leave the store's views.

Tables (and their blocking-query topics, `("t", table)`): acl-tokens, acl-policies,
acl-roles, acl-auth-methods, acl-binding-rules. Secondary indexes: SecretID, policy and role
names; the rarer filters (by policy, role, auth method, service identity, expiry) scan, which
is cheap at the sizes ACL tables have.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.txn import WriteTxn

Row = dict[str, Any]

TOKENS = "acl-tokens"
POLICIES = "acl-policies"
ROLES = "acl-roles"
AUTH_METHODS = "acl-auth-methods"
BINDING_RULES = "acl-binding-rules"


class _Table:
    """A keyed table of rows with an optional unique secondary index on one field."""

    def __init__(
        self, name: str, key: str, unique: str | None = None, *, uuids: bool = False
    ) -> None:
        self.name = name
        self.key = key
        self.unique = unique
        # UUID-keyed tables keep the case a client chose (as Consul does) but match any case,
        # as Consul's UUID indexes compare the parsed bytes.
        self.uuids = uuids
        self.rows: dict[str, Row] = {}
        self.by_unique: dict[str, str] = {}

    def _fold(self, value: str) -> str:
        return value.lower() if self.uuids else value

    def get(self, key: str) -> Row | None:
        return self.rows.get(self._fold(key))

    def get_unique(self, value: str) -> Row | None:
        key = self.by_unique.get(self._fold(value))
        return self.rows.get(key) if key is not None else None

    def list(self) -> list[Row]:
        return [self.rows[k] for k in sorted(self.rows)]

    def put(self, txn: WriteTxn, row: Row) -> Row:
        key = self._fold(row[self.key])
        old = self.rows.get(key)
        row = dict(row)
        row["CreateIndex"] = old["CreateIndex"] if old is not None else txn.index
        row["ModifyIndex"] = txn.index
        self._set(key, old, row)
        txn.on_undo(lambda: self._set(key, row, old))
        txn.touch(self.name)
        return row

    def delete(self, txn: WriteTxn, key: str) -> Row | None:
        key = self._fold(key)
        old = self.rows.get(key)
        if old is None:
            return None
        self._set(key, old, None)
        txn.on_undo(lambda: self._set(key, None, old))
        txn.touch(self.name)
        return old

    def _set(self, key: str, old: Row | None, new: Row | None) -> None:
        if self.unique is not None and old is not None:
            self.by_unique.pop(self._fold(old[self.unique]), None)
        if new is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = new
            if self.unique is not None:
                self.by_unique[self._fold(new[self.unique])] = key

    def load(self, rows: list[Row]) -> None:
        self.rows.clear()
        self.by_unique.clear()
        for row in rows:
            self._set(self._fold(row[self.key]), None, row)


class ACLTables:
    def __init__(self) -> None:
        self.tokens = _Table(TOKENS, "AccessorID", unique="SecretID", uuids=True)
        self.policies = _Table(POLICIES, "ID", unique="Name")
        self.roles = _Table(ROLES, "ID", unique="Name")
        self.auth_methods = _Table(AUTH_METHODS, "Name")
        self.binding_rules = _Table(BINDING_RULES, "ID")
        # Raft index of the bootstrap (0: bootstrap still allowed).
        self.bootstrap_index = 0

    # --------------------------------------------------------------- tokens
    def token_by_secret(self, secret: str, now: float | None = None) -> Row | None:
        row = self.tokens.get_unique(secret)
        return None if row is None or expired(row, now) else row

    def token(self, accessor: str, now: float | None = None) -> Row | None:
        row = self.tokens.get(accessor)
        return None if row is None or expired(row, now) else row

    def list_tokens(
        self,
        now: float | None = None,
        *,
        policy: str = "",
        role: str = "",
        auth_method: str = "",
        service_name: str = "",
    ) -> list[Row]:
        out = []
        for row in self.tokens.list():
            if expired(row, now):
                continue
            if policy and not any(p["ID"] == policy for p in row.get("Policies") or ()):
                continue
            if role and not any(r["ID"] == role for r in row.get("Roles") or ()):
                continue
            if auth_method and row.get("AuthMethod", "") != auth_method:
                continue
            if service_name and not any(
                s.get("ServiceName") == service_name for s in row.get("ServiceIdentities") or ()
            ):
                continue
            out.append(row)
        return out

    def expired_accessors(self, now: float, limit: int = 256) -> list[str]:
        out = [a for a, row in self.tokens.rows.items() if expired(row, now)]
        return sorted(out)[:limit]

    def set_bootstrap(self, txn: WriteTxn) -> None:
        old = self.bootstrap_index
        self.bootstrap_index = txn.index

        def undo() -> None:
            self.bootstrap_index = old

        txn.on_undo(undo)
        txn.touch("acl-bootstrap")

    # ------------------------------------------------------------- snapshot
    def dump(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens.list(),
            "policies": self.policies.list(),
            "roles": self.roles.list(),
            "auth_methods": self.auth_methods.list(),
            "binding_rules": self.binding_rules.list(),
            "bootstrap_index": self.bootstrap_index,
        }

    def frozen_copy(self) -> dict[str, Any]:
        return self.dump()

    def load(self, data: dict[str, Any]) -> None:
        self.tokens.load(list(data.get("tokens") or []))
        self.policies.load(list(data.get("policies") or []))
        self.roles.load(list(data.get("roles") or []))
        self.auth_methods.load(list(data.get("auth_methods") or []))
        self.binding_rules.load(list(data.get("binding_rules") or []))
        self.bootstrap_index = int(data.get("bootstrap_index") or 0)


def expired(row: Row, now: float | None) -> bool:
    expires = row.get("_expires") or 0
    return bool(expires) and now is not None and expires <= now


# ------------------------------------------------------------------ FSM commands
# Each takes the tables, the write transaction and the command; errors are returned as text
# (the FSM turns them into {"Error": text}). The endpoint validated the rows already; what is
# checked here is what depends on the exact state the command lands on (uniqueness, links).
def _missing_link(acl: ACLTables, row: Row) -> str | None:
    for link in row.get("Policies") or ():
        if acl.policies.get(link["ID"]) is None:
            return f'No such ACL policy with ID "{link["ID"]}"'
    for link in row.get("Roles") or ():
        if acl.roles.get(link["ID"]) is None:
            return f'No such ACL role with ID "{link["ID"]}"'
    return None


def _token_set(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    row = cmd["token"]
    accessor, secret = row["AccessorID"], row["SecretID"]
    existing = acl.tokens.get(accessor)
    if cmd.get("create") and existing is not None:
        return "Invalid Token: AccessorID is already in use"
    if not cmd.get("create") and existing is None:
        return f'Cannot find token "{accessor}"'
    holder = acl.tokens.get_unique(secret)
    if holder is not None and holder["AccessorID"].lower() != accessor.lower():
        return "Invalid Token: SecretID is already in use"
    problem = _missing_link(acl, row)
    if problem:
        return problem
    return acl.tokens.put(txn, row)


def _token_delete(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return sum(1 for accessor in cmd["ids"] if acl.tokens.delete(txn, accessor) is not None)


def _named_set(table: _Table, what: str, txn: WriteTxn, row: Row) -> Any:
    holder = table.get_unique(row["Name"])
    if holder is not None and holder["ID"] != row["ID"]:
        return f'Invalid {what}: A {what} with Name "{row["Name"]}" already exists'
    return table.put(txn, row)


def _policy_set(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return _named_set(acl.policies, "Policy", txn, cmd["row"])


def _policy_delete(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return acl.policies.delete(txn, cmd["id"]) is not None


def _role_set(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    problem = _missing_link(acl, cmd["row"])
    if problem:
        return problem
    return _named_set(acl.roles, "Role", txn, cmd["row"])


def _role_delete(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return acl.roles.delete(txn, cmd["id"]) is not None


def _auth_method_set(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return acl.auth_methods.put(txn, cmd["row"])


def _auth_method_delete(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    name = cmd["id"]
    if acl.auth_methods.delete(txn, name) is None:
        return False
    for rule in acl.binding_rules.list():
        if rule.get("AuthMethod") == name:
            acl.binding_rules.delete(txn, rule["ID"])
    for token in acl.tokens.list():
        if token.get("AuthMethod") == name:
            acl.tokens.delete(txn, token["AccessorID"])
    return True


def _binding_rule_set(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    row = cmd["row"]
    if acl.auth_methods.get(row["AuthMethod"]) is None:
        return f'cannot find auth method with name "{row["AuthMethod"]}"'
    return acl.binding_rules.put(txn, row)


def _binding_rule_delete(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    return acl.binding_rules.delete(txn, cmd["id"]) is not None


def _bootstrap(acl: ACLTables, txn: WriteTxn, cmd: dict[str, Any]) -> Any:
    if acl.bootstrap_index and cmd["reset_index"] != acl.bootstrap_index:
        return f"ACL bootstrap no longer allowed (reset index: {acl.bootstrap_index})"
    row = cmd["token"]
    holder = acl.tokens.get_unique(row["SecretID"])
    if holder is not None and holder["AccessorID"] != row["AccessorID"]:
        return "Invalid Token: SecretID is already in use"
    stored = acl.tokens.put(txn, row)
    acl.set_bootstrap(txn)
    return stored


HANDLERS: dict[str, Any] = {
    "acl_bootstrap": _bootstrap,
    "acl_token_set": _token_set,
    "acl_token_delete": _token_delete,
    "acl_policy_set": _policy_set,
    "acl_policy_delete": _policy_delete,
    "acl_role_set": _role_set,
    "acl_role_delete": _role_delete,
    "acl_auth_method_set": _auth_method_set,
    "acl_auth_method_delete": _auth_method_delete,
    "acl_binding_rule_set": _binding_rule_set,
    "acl_binding_rule_delete": _binding_rule_delete,
}
