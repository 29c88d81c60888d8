"""ACL: bootstrap, tokens, policies, roles, auth methods, binding rules, login and logout.

Writes are validated completely here, on the leader, with Consul's texts, and stamped with
the leader's clock (CreateTime, ExpirationTime) before the FSM command is built. Links to
policies and roles are accepted by ID or by Name and stored by ID; the reads resolve the names
again, so a rename shows up on every token and role. An expired token is absent from every
read (the leader reaps it later, see consulpy/server/leader.py).

When ACLs are disabled every endpoint answers Consul's "ACL support disabled" (the HTTP layer
renders it as 401).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consulpy.acl import identities as ids
from consulpy.acl.rules import RuleError, parse_rules
from consulpy.server import acl_reads
from consulpy.server.acl_reads import auth_method_view, policy_view, role_view, token_view
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import leader, read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.state import commands as C
from consulpy.state.acl import ACLTables, Row
from consulpy.util.durations import DurationError, format_duration_ns, parse_duration_ns

if TYPE_CHECKING:
    from consulpy.server.server import Server
    from consulpy.state.store import StateStore

# Built-in identities: one definition, in consulpy.acl.identities.
GLOBAL_MANAGEMENT_ID = ids.GLOBAL_MANAGEMENT_POLICY_ID
GLOBAL_MANAGEMENT_NAME = ids.GLOBAL_MANAGEMENT_POLICY_NAME
READ_ONLY_ID = ids.GLOBAL_READ_ONLY_POLICY_ID
READ_ONLY_NAME = ids.GLOBAL_READ_ONLY_POLICY_NAME
ANONYMOUS_ACCESSOR = ids.ANONYMOUS_TOKEN_ACCESSOR_ID
ANONYMOUS_SECRET = ids.ANONYMOUS_TOKEN_SECRET_ID
RESERVED_PREFIX = ids.RESERVED_ID_PREFIX
GLOBAL_MANAGEMENT_RULES = ids.GLOBAL_MANAGEMENT_RULES_TEXT
READ_ONLY_RULES = ids.GLOBAL_READ_ONLY_RULES_TEXT
BUILTIN_POLICIES = (GLOBAL_MANAGEMENT_ID, READ_ONLY_ID)

DISABLED = "ACL support disabled"
NOT_FOUND = "ACL not found"
RESET_FILE = "acl-bootstrap-reset"
MIN_EXPIRATION_TTL_NS = 60 * 1_000_000_000
MAX_EXPIRATION_TTL_NS = 24 * 3600 * 1_000_000_000
AUTH_METHOD_TYPES = ("jwt",)
BIND_TYPES = ("service", "node", "role", "policy")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_POLICY_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
_METHOD_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")
_IDENTITY_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$")


def _check_rules(text: str) -> None:
    """Refuse policy rules the rule language rejects (Consul's texts)."""
    try:
        parse_rules(text)
    except RuleError as exc:
        raise CommandError(str(exc)) from exc


def _check_method_config(kind: str, config: dict[str, Any]) -> None:
    if kind != "jwt":
        return
    from consulpy.acl.jwt_method import check_config

    try:
        check_config(config)
    except ValueError as exc:
        raise CommandError(f"Invalid Auth Method: {exc}") from exc


# ----------------------------------------------------------------- payloads
@dataclass(frozen=True, slots=True)
class ACLBootstrap:
    secret: str = ""


@dataclass(frozen=True, slots=True)
class TokenSet:
    token: dict[str, Any]
    create: bool = True


@dataclass(frozen=True, slots=True)
class TokenClone:
    accessor: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ByID:
    id: str


@dataclass(frozen=True, slots=True)
class RowSet:
    row: dict[str, Any]
    create: bool = True


@dataclass(frozen=True, slots=True)
class TokenRead:
    accessor: str = ""
    secret: str = ""  # /v1/acl/token/self: possession of the secret is the permission


@dataclass(frozen=True, slots=True)
class TokenList:
    policy: str = ""
    role: str = ""
    authmethod: str = ""
    servicename: str = ""
    filter: str = ""


@dataclass(frozen=True, slots=True)
class ACLRead:
    """Policy, role (by `id` or `name`), auth method (`name`), binding rule (`id`)."""

    id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class ACLList:
    filter: str = ""
    policy: str = ""  # roles linking this policy
    authmethod: str = ""  # binding rules of this method


@dataclass(frozen=True, slots=True)
class Login:
    method: str
    bearer_token: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Logout:
    pass


# ------------------------------------------------------------------- helpers
def rfc3339(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    ns = round((ts - int(ts)) * 1e9) % 1_000_000_000
    frac = f".{ns:09d}".rstrip("0") if ns else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def parse_rfc3339(text: str) -> float:
    raw = text.strip()
    if raw.endswith("Z") or raw.endswith("z"):
        raw = raw[:-1] + "+00:00"
    frac = 0.0
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)(.*)$", raw)
    if m:
        raw, frac = m.group(1) + m.group(3), float("0" + m.group(2))
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise RequestError(f"Invalid ExpirationTime {text!r}") from exc
    if moment.tzinfo is None:
        raise RequestError(f"Invalid ExpirationTime {text!r}")
    return moment.timestamp() + frac


def _hash(row: Row, fields: tuple[str, ...]) -> str:
    doc = json.dumps({f: row.get(f) for f in fields}, sort_keys=True, default=str)
    return base64.b64encode(hashlib.blake2b(doc.encode(), digest_size=32).digest()).decode()


def _enabled(server: Server) -> None:
    if not server.acl_enabled:
        raise CommandError(DISABLED)


def _uuid_field(value: Any, what: str, kind: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise CommandError(f"Invalid {kind}: {what} is not a valid UUID")
    if value.startswith(RESERVED_PREFIX):
        raise CommandError(
            f'Invalid {kind}: UUIDs with the prefix "{RESERVED_PREFIX}" are reserved'
        )
    return value  # kept as given; the token table matches UUIDs in any case


def _links(acl: ACLTables, links: Any, kind: str) -> list[dict[str, str]]:
    """Resolve policy or role links given by ID or Name into `[{"ID": id}]`."""
    table = acl.policies if kind == "policy" else acl.roles
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for link in links or ():
        if not isinstance(link, dict):
            raise RequestError(f"invalid {kind} link {link!r}")
        link_id, name = link.get("ID") or "", link.get("Name") or ""
        if link_id:
            if table.get(link_id) is None:
                raise CommandError(f'No such ACL {kind} with ID "{link_id}"')
        elif name:
            row = table.get_unique(name)
            if row is None:
                raise CommandError(f'No such ACL {kind} with name "{name}"')
            link_id = row["ID"]
        else:
            raise CommandError(f"{kind.capitalize()} link is missing both the ID and Name fields")
        if link_id not in seen:
            seen.add(link_id)
            out.append({"ID": link_id})
    return out


def _identities(row: Row, what: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services = []
    for ident in row.get("ServiceIdentities") or ():
        name = ident.get("ServiceName") or "" if isinstance(ident, dict) else ""
        if not name:
            raise CommandError(f"Service identity is missing the service name field on this {what}")
        if not _IDENTITY_NAME.match(name):
            raise CommandError(
                f'Service identity "{name}" has an invalid name. Only lowercase alphanumeric '
                "characters, '-' and '_' are allowed."
            )
        out: dict[str, Any] = {"ServiceName": name}
        dcs = ident.get("Datacenters") or []
        if dcs:
            out["Datacenters"] = [str(d) for d in dcs]
        services.append(out)
    nodes = []
    for ident in row.get("NodeIdentities") or ():
        name = ident.get("NodeName") or "" if isinstance(ident, dict) else ""
        if not name:
            raise CommandError(f"Node identity is missing the node name field on this {what}")
        if not ident.get("Datacenter"):
            raise CommandError(f"Node identity is missing the datacenter field on this {what}")
        if not _IDENTITY_NAME.match(name):
            raise CommandError(
                "Node identity has an invalid name. Only lowercase alphanumeric characters, "
                "'-' and '_' are allowed."
            )
        nodes.append({"NodeName": name, "Datacenter": str(ident["Datacenter"])})
    return services, nodes


TOKEN_HASH_FIELDS = (
    "Description",
    "Policies",
    "Roles",
    "ServiceIdentities",
    "NodeIdentities",
    "Local",
    "AuthMethod",
)


def _token_row(server: Server, body: Row, existing: Row | None, now: float) -> Row:
    """Validate a token create (existing None) or update and build the row to store."""
    acl = server.store.acl
    if existing is None:
        accessor = body.get("AccessorID") or ""
        accessor = _uuid_field(accessor, "AccessorID", "Token") if accessor else str(uuid.uuid4())
        if acl.tokens.get(accessor) is not None:
            raise CommandError("Invalid Token: AccessorID is already in use")
        secret = body.get("SecretID") or ""
        secret = _uuid_field(secret, "SecretID", "Token") if secret else str(uuid.uuid4())
        if acl.tokens.get_unique(secret) is not None:
            raise CommandError("Invalid Token: SecretID is already in use")
    else:
        accessor = existing["AccessorID"]
        secret = existing["SecretID"]
        if body.get("SecretID") and body["SecretID"] != secret:
            raise CommandError("Changing a tokens SecretID is not permitted")
        if "Local" in body and bool(body["Local"]) != bool(existing.get("Local")):
            raise CommandError(f"cannot toggle local mode of {accessor}")
        if body.get("AuthMethod") and body["AuthMethod"] != existing.get("AuthMethod", ""):
            raise CommandError(f"Cannot change AuthMethod of {accessor}")
    ttl_raw = body.get("ExpirationTTL")
    exp_raw = body.get("ExpirationTime")
    ttl_ns = 0
    if ttl_raw not in (None, "", 0):
        try:
            ttl_ns = parse_duration_ns(ttl_raw) if isinstance(ttl_raw, str) else int(ttl_raw)
        except (DurationError, ValueError) as exc:
            raise RequestError(f"Invalid ExpirationTTL {ttl_raw!r}") from exc
    expires = 0.0
    if existing is not None:
        if ttl_ns or (exp_raw and parse_rfc3339(exp_raw) != existing.get("_expires")):
            raise CommandError("Cannot change expiration time of an existing token")
        expires = existing.get("_expires") or 0.0
    else:
        if ttl_ns and exp_raw:
            raise CommandError("Token Expiration TTL and Expiration Time cannot both be set")
        if ttl_ns:
            if ttl_ns < 0:
                text = format_duration_ns(ttl_ns)
                raise CommandError(f"Token Expiration TTL '{text}' should be > 0")
            if not MIN_EXPIRATION_TTL_NS <= ttl_ns <= MAX_EXPIRATION_TTL_NS:
                raise CommandError(
                    f"Token Expiration TTL '{format_duration_ns(ttl_ns)}' should be between "
                    f"{format_duration_ns(MIN_EXPIRATION_TTL_NS)} and "
                    f"{format_duration_ns(MAX_EXPIRATION_TTL_NS)}"
                )
            expires = now + ttl_ns / 1e9
        elif exp_raw:
            expires = parse_rfc3339(exp_raw)
            if expires <= now:
                raise CommandError("ExpirationTime cannot be in the past")
            span = (expires - now) * 1e9
            if not MIN_EXPIRATION_TTL_NS <= span <= MAX_EXPIRATION_TTL_NS:
                raise CommandError(
                    "ExpirationTime cannot be more than "
                    f"{format_duration_ns(MAX_EXPIRATION_TTL_NS)} or less than "
                    f"{format_duration_ns(MIN_EXPIRATION_TTL_NS)} in the future"
                )
    description = body.get("Description") or ""
    if not isinstance(description, str):
        raise RequestError("Description must be a string")
    services, nodes = _identities(body, "token")
    row: Row = {
        "AccessorID": accessor,
        "SecretID": secret,
        "Description": description,
        "Policies": _links(acl, body.get("Policies"), "policy"),
        "Roles": _links(acl, body.get("Roles"), "role"),
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
        "Local": bool(existing.get("Local")) if existing is not None else bool(body.get("Local")),
        "AuthMethod": (existing or body).get("AuthMethod") or "",
        "CreateTime": existing["CreateTime"] if existing is not None else rfc3339(now),
        "_expires": expires,
        "ExpirationTime": rfc3339(expires) if expires else "",
    }
    if existing is None and ttl_ns:
        row["ExpirationTTL"] = format_duration_ns(ttl_ns)
    elif existing is not None and existing.get("ExpirationTTL"):
        row["ExpirationTTL"] = existing["ExpirationTTL"]
    row["Hash"] = _hash(row, TOKEN_HASH_FIELDS)
    return row


# ----------------------------------------------------------------- bootstrap
def _reset_index(server: Server) -> int:
    if not server.acl_data_dir:
        return 0
    try:
        with open(os.path.join(server.acl_data_dir, RESET_FILE), encoding="utf-8") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def _remove_reset_file(server: Server) -> None:
    if server.acl_data_dir:
        try:
            os.remove(os.path.join(server.acl_data_dir, RESET_FILE))
        except OSError:
            pass


def management_token(secret: str, accessor: str, description: str, now: float) -> Row:
    row: Row = {
        "AccessorID": accessor,
        "SecretID": secret,
        "Description": description,
        "Policies": [{"ID": GLOBAL_MANAGEMENT_ID}],
        "Roles": [],
        "ServiceIdentities": [],
        "NodeIdentities": [],
        "Local": False,
        "AuthMethod": "",
        "CreateTime": rfc3339(now),
        "_expires": 0,
        "ExpirationTime": "",
    }
    row["Hash"] = _hash(row, TOKEN_HASH_FIELDS)
    return row


async def bootstrap(server: Server, req: Request[ACLBootstrap]) -> Row:
    _enabled(server)
    if not server.is_primary():
        raise CommandError(DISABLED)  # as Consul: only the primary bootstraps
    acl = server.store.acl
    reset = _reset_index(server)
    if acl.bootstrap_index and reset != acl.bootstrap_index:
        raise CommandError(
            "Permission denied: ACL bootstrap no longer allowed "
            f"(reset index: {acl.bootstrap_index})"
        )
    secret = req.payload.secret
    if secret:
        secret = _uuid_field(secret, "SecretID", "Token")
    now = server.now()
    token = management_token(
        secret or str(uuid.uuid4()),
        str(uuid.uuid4()),
        "Bootstrap Token (Global Management)",
        now,
    )
    try:
        stored = await server.propose(C.acl_bootstrap(token, reset, ts=now))
    except CommandError as exc:
        if "no longer allowed" in str(exc):
            raise CommandError(f"Permission denied: {exc}") from exc
        raise
    _remove_reset_file(server)
    return token_view(acl, stored)


# ---------------------------------------------------------------- token writes
async def token_set(server: Server, req: Request[TokenSet]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    body = req.payload.token
    acl = server.store.acl
    now = server.now()
    existing = None
    if not req.payload.create:
        accessor = body.get("AccessorID") or ""
        if not _UUID.match(accessor):
            raise CommandError("Invalid Token: AccessorID is not a valid UUID")
        existing = acl.token(accessor, now)
        if existing is None:
            raise CommandError(f'Cannot find token "{accessor}"')
    row = _token_row(server, body, existing, now)
    stored = await server.propose(C.acl_token_set(row, req.payload.create, ts=now))
    return token_view(acl, stored)


async def token_clone(server: Server, req: Request[TokenClone]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    acl = server.store.acl
    now = server.now()
    source = acl.token(req.payload.accessor, now)
    if source is None:
        raise CommandError(NOT_FOUND)
    if source.get("AuthMethod"):
        raise CommandError("Cannot clone a token created from an auth method")
    body = {
        k: source.get(k)
        for k in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities", "Local")
    }
    body["Description"] = req.payload.description or source.get("Description", "")
    if source.get("_expires"):
        body["ExpirationTime"] = source["ExpirationTime"]
    row = _token_row(server, body, None, now)
    stored = await server.propose(C.acl_token_set(row, True, ts=now))
    return token_view(acl, stored)


async def token_delete(server: Server, req: Request[ByID]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    accessor = req.payload.id
    if not _UUID.match(accessor):
        raise CommandError("Invalid Token: AccessorID is not a valid UUID")
    if accessor == ANONYMOUS_ACCESSOR:
        raise CommandError("Delete operation not permitted on the anonymous token")
    acl = server.store.acl
    token = acl.token(accessor, server.now())
    if token is None:
        raise CommandError(f"Cannot find token to delete: {NOT_FOUND}")
    if req.token and token["SecretID"] == req.token:
        raise CommandError("Deletion of the request's authorization token is not permitted")
    await server.propose(C.acl_token_delete([accessor], ts=server.now()))
    return True


# -------------------------------------------------------------- policy writes
POLICY_HASH_FIELDS = ("Name", "Description", "Rules", "Datacenters")


async def policy_set(server: Server, req: Request[RowSet]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    body = req.payload.row
    acl = server.store.acl
    policy_id = body.get("ID") or ""
    existing = None
    if req.payload.create:
        if policy_id:
            raise RequestError("Cannot specify an ID in Policy Creation")
        policy_id = str(uuid.uuid4())
    else:
        existing = acl.policies.get(policy_id)
        if existing is None:
            raise CommandError(f"Cannot find policy {policy_id}")
    name = body.get("Name") or ""
    if not name:
        raise CommandError("Invalid Policy: no Name is set")
    builtin = policy_id in BUILTIN_POLICIES
    if not _POLICY_NAME.match(name) and not (builtin and name == existing_name(existing)):
        raise CommandError(
            "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
        )
    holder = acl.policies.get_unique(name)
    if holder is not None and holder["ID"] != policy_id:
        raise CommandError(f'Invalid Policy: A Policy with Name "{name}" already exists')
    rules = body.get("Rules") or ""
    datacenters = [str(d) for d in body.get("Datacenters") or ()]
    if existing is not None and builtin:
        label = "global-management" if policy_id == GLOBAL_MANAGEMENT_ID else "global-read-only"
        if rules != existing.get("Rules"):
            raise CommandError(
                f"Changing the Rules for the builtin {label} policy is not permitted"
            )
        if datacenters != list(existing.get("Datacenters") or []):
            raise CommandError(
                f"Changing the Datacenters of the builtin {label} policy is not permitted"
            )
    _check_rules(rules)
    row: Row = {
        "ID": policy_id,
        "Name": name,
        "Description": body.get("Description") or "",
        "Rules": rules,
        "Datacenters": datacenters,
    }
    row["Hash"] = _hash(row, POLICY_HASH_FIELDS)
    stored = await server.propose(C.acl_policy_set(row, ts=server.now()))
    return policy_view(stored)


def existing_name(row: Row | None) -> str:
    return row.get("Name", "") if row is not None else ""


async def policy_delete(server: Server, req: Request[ByID]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    policy_id = req.payload.id
    if policy_id == GLOBAL_MANAGEMENT_ID:
        raise CommandError("Delete operation not permitted on the builtin global-management policy")
    if policy_id == READ_ONLY_ID:
        raise CommandError("Delete operation not permitted on the builtin global-read-only policy")
    if server.store.acl.policies.get(policy_id) is None:
        raise CommandError(f"Cannot find policy to delete: {NOT_FOUND}")
    await server.propose(C.acl_policy_delete(policy_id, ts=server.now()))
    return True


# ---------------------------------------------------------------- role writes
ROLE_HASH_FIELDS = ("Name", "Description", "Policies", "ServiceIdentities", "NodeIdentities")


async def role_set(server: Server, req: Request[RowSet]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    body = req.payload.row
    acl = server.store.acl
    role_id = body.get("ID") or ""
    if req.payload.create:
        if role_id:
            raise RequestError("Cannot specify an ID in Role Creation")
        role_id = str(uuid.uuid4())
    elif acl.roles.get(role_id) is None:
        raise CommandError(f"Cannot find role {role_id}")
    name = body.get("Name") or ""
    if not name:
        raise CommandError("Invalid Role: no Name is set")
    if not _ROLE_NAME.match(name):
        raise CommandError(
            "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
        )
    holder = acl.roles.get_unique(name)
    if holder is not None and holder["ID"] != role_id:
        raise CommandError(f'Invalid Role: A Role with Name "{name}" already exists')
    services, nodes = _identities(body, "role")
    row: Row = {
        "ID": role_id,
        "Name": name,
        "Description": body.get("Description") or "",
        "Policies": _links(acl, body.get("Policies"), "policy"),
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
    }
    row["Hash"] = _hash(row, ROLE_HASH_FIELDS)
    stored = await server.propose(C.acl_role_set(row, ts=server.now()))
    return role_view(acl, stored)


async def role_delete(server: Server, req: Request[ByID]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    if server.store.acl.roles.get(req.payload.id) is None:
        raise CommandError(f"Cannot find role to delete: {NOT_FOUND}")
    await server.propose(C.acl_role_delete(req.payload.id, ts=server.now()))
    return True


# --------------------------------------------------------- auth method writes
async def auth_method_set(server: Server, req: Request[RowSet]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    body = req.payload.row
    acl = server.store.acl
    name = body.get("Name") or ""
    if not name:
        raise CommandError("Invalid Auth Method: no Name is set")
    if not _METHOD_NAME.match(name):
        raise CommandError(
            "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' "
            "are allowed"
        )
    existing = acl.auth_methods.get(name)
    if req.payload.create and existing is not None:
        raise CommandError(f'Invalid Auth Method: An Auth Method with Name "{name}" already exists')
    if not req.payload.create and existing is None:
        raise CommandError(f"Cannot find auth method {name}")
    kind = body.get("Type") or ""
    if not kind:
        raise CommandError("Invalid Auth Method: Type is required")
    if existing is not None and kind != existing["Type"]:
        raise CommandError(
            f"the Type field is immutable: {kind!r} != {existing['Type']!r}".replace("'", '"')
        )
    if kind not in AUTH_METHOD_TYPES:
        raise CommandError(f"Invalid Auth Method: Type should be one of: {list(AUTH_METHOD_TYPES)}")
    locality = body.get("TokenLocality") or ""
    if locality not in ("", "local", "global"):
        raise CommandError(
            "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'"
        )
    max_ttl = body.get("MaxTokenTTL") or ""
    ttl_ns = 0
    if max_ttl:
        try:
            ttl_ns = parse_duration_ns(max_ttl) if isinstance(max_ttl, str) else int(max_ttl)
        except (DurationError, ValueError) as exc:
            raise RequestError(f"Invalid MaxTokenTTL {max_ttl!r}") from exc
        if not MIN_EXPIRATION_TTL_NS <= ttl_ns <= MAX_EXPIRATION_TTL_NS:
            raise CommandError(
                "Invalid Auth Method: MaxTokenTTL should be between "
                f"{format_duration_ns(MIN_EXPIRATION_TTL_NS)} and "
                f"{format_duration_ns(MAX_EXPIRATION_TTL_NS)}"
            )
    config = body.get("Config") or {}
    if not isinstance(config, dict):
        raise RequestError("Config must be an object")
    _check_method_config(kind, config)
    row: Row = {
        "Name": name,
        "Type": kind,
        "DisplayName": body.get("DisplayName") or "",
        "Description": body.get("Description") or "",
        "MaxTokenTTL": format_duration_ns(ttl_ns) if ttl_ns else "",
        "TokenLocality": locality,
        "Config": config,
    }
    stored = await server.propose(C.acl_auth_method_set(row, ts=server.now()))
    return auth_method_view(stored)


async def auth_method_delete(server: Server, req: Request[ByID]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    await server.propose(C.acl_auth_method_delete(req.payload.id, ts=server.now()))
    return True


# -------------------------------------------------------- binding rule writes
async def binding_rule_set(server: Server, req: Request[RowSet]) -> Row:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    body = req.payload.row
    acl = server.store.acl
    rule_id = body.get("ID") or ""
    if req.payload.create:
        if rule_id:
            raise RequestError("Cannot specify an ID in Binding Rule Creation")
        rule_id = str(uuid.uuid4())
    else:
        existing = acl.binding_rules.get(rule_id)
        if existing is None:
            raise CommandError(f"Cannot find binding rule {rule_id}")
        if body.get("AuthMethod") and body["AuthMethod"] != existing["AuthMethod"]:
            raise CommandError("The AuthMethod field of an Binding Rule is immutable")
        body = dict(body, AuthMethod=existing["AuthMethod"])
    method = body.get("AuthMethod") or ""
    if not method:
        raise CommandError("Invalid Binding Rule: no AuthMethod is set")
    if acl.auth_methods.get(method) is None:
        raise CommandError(f'Invalid Binding Rule: unknown auth method "{method}"')
    bind_type = body.get("BindType") or ""
    if not bind_type:
        raise CommandError("Invalid Binding Rule: no BindType is set")
    if bind_type not in BIND_TYPES:
        raise CommandError(f'Invalid Binding Rule: unknown BindType "{bind_type}"')
    bind_name = body.get("BindName") or ""
    if not bind_name:
        raise CommandError("Invalid Binding Rule: no BindName is set")
    selector = body.get("Selector") or ""
    if selector:
        from consulpy.filter import FilterError, compile_filter

        try:
            compile_filter(selector)
        except FilterError as exc:
            raise CommandError(f"invalid Binding Rule: Selector is invalid: {exc}") from exc
    row: Row = {
        "ID": rule_id,
        "Description": body.get("Description") or "",
        "AuthMethod": method,
        "Selector": selector,
        "BindType": bind_type,
        "BindName": bind_name,
    }
    stored = await server.propose(C.acl_binding_rule_set(row, ts=server.now()))
    return dict(stored)


async def binding_rule_delete(server: Server, req: Request[ByID]) -> bool:
    authorize(req.token, Resource.ACL, "", Access.WRITE)
    _enabled(server)
    await server.propose(C.acl_binding_rule_delete(req.payload.id, ts=server.now()))
    return True


# ----------------------------------------------------------- login / logout
async def login(server: Server, req: Request[Login]) -> Row:
    """Exchange a bearer token for an ACL token via an auth method and its binding rules."""
    _enabled(server)
    acl = server.store.acl
    method = acl.auth_methods.get(req.payload.method)
    if method is None:
        raise CommandError(f'auth method "{req.payload.method}" not found: {NOT_FOUND}')
    from consulpy.acl.jwt_method import keys_for, validate

    try:
        keys = await keys_for(method["Config"], req.payload.bearer_token)
        claims = validate(method["Config"], req.payload.bearer_token, keys)
    except ValueError as exc:
        raise CommandError(f"Permission denied: {exc}") from exc
    body = _bindings(acl, method["Name"], claims, server.datacenter)
    if (
        not body["Policies"]
        and not body["Roles"]
        and not body["ServiceIdentities"]
        and not (body["NodeIdentities"])
    ):
        raise CommandError("Permission denied")
    now = server.now()
    body["Description"] = f"token created via login: {json.dumps(req.payload.meta or {})}"
    body["AuthMethod"] = method["Name"]
    body["Local"] = method.get("TokenLocality") != "global"
    if not body["Local"] and not server.is_primary():
        # a global token is the primary's (the secondaries get it by replication)
        raise CommandError(
            "creating global tokens via auth methods is only permitted in the primary datacenter"
        )
    if method.get("MaxTokenTTL"):
        body["ExpirationTTL"] = method["MaxTokenTTL"]
    row = _token_row(server, body, None, now)
    stored = await server.propose(C.acl_token_set(row, True, ts=now))
    return token_view(acl, stored)


def _bindings(acl: ACLTables, method: str, claims: dict[str, Any], datacenter: str) -> Row:
    """What the binding rules whose selector matches grant (Consul skips a role or policy
    that does not exist)."""
    from consulpy.filter import compile_filter

    body: Row = {"Policies": [], "Roles": [], "ServiceIdentities": [], "NodeIdentities": []}
    variables = {str(k): v for k, v in (claims.get("value") or {}).items()}
    for rule in acl.binding_rules.list():
        if rule["AuthMethod"] != method:
            continue
        if rule["Selector"] and not compile_filter(rule["Selector"]).matches(claims):
            continue
        name = rule["BindName"]
        for key, value in variables.items():
            name = name.replace("${value." + key + "}", str(value))
        if rule["BindType"] == "service":
            body["ServiceIdentities"].append({"ServiceName": name})
        elif rule["BindType"] == "node":
            body["NodeIdentities"].append({"NodeName": name, "Datacenter": datacenter})
        elif rule["BindType"] == "role" and acl.roles.get_unique(name) is not None:
            body["Roles"].append({"Name": name})
        elif rule["BindType"] == "policy" and acl.policies.get_unique(name) is not None:
            body["Policies"].append({"Name": name})
    return body


async def logout(server: Server, req: Request[Logout]) -> bool:
    _enabled(server)
    acl = server.store.acl
    token = acl.token_by_secret(req.token, server.now()) if req.token else None
    if token is None:
        raise CommandError(NOT_FOUND)
    if not token.get("AuthMethod"):
        raise CommandError("Permission denied")
    await server.propose(C.acl_token_delete([token["AccessorID"]], ts=server.now()))
    return True


_ACL_READ = [Need(Resource.ACL, "", Access.READ)]


def _acl_read(_store: StateStore, _payload: Any) -> list[Need]:
    return _ACL_READ


def _token_read_needs(_store: StateStore, payload: TokenRead) -> list[Need]:
    return [] if payload.secret else _ACL_READ


def _possession(_store: StateStore, _payload: TokenRead) -> list[Need]:
    return []  # the agent's resolver: holding the secret is the permission


@dataclass(frozen=True, slots=True)
class ReplicationRows:
    table: str  # policies, roles or tokens


def _replication_needs(_store: StateStore, payload: ReplicationRows) -> list[Need]:
    if payload.table not in acl_reads.REPLICATED_TABLES:
        raise RequestError(f"unknown ACL replication table {payload.table!r}")
    # Secrets leave the datacenter: tokens need acl:write (Consul's token replication).
    access = Access.WRITE if payload.table == "tokens" else Access.READ
    return [Need(Resource.ACL, "", access)]


async def replication_status(server: Server, _req: Request[Any]) -> Any:
    """`/v1/acl/replication`: the leader's view of its ACL replication."""
    return server.replication.acl_status()


ENDPOINTS = [
    read("ACL.ReplicationRows", ReplicationRows, acl_reads.replication_rows, _replication_needs),
    leader("ACL.ReplicationStatus", Empty, replication_status),
    write("ACL.BootstrapTokens", ACLBootstrap, bootstrap),
    write("ACL.TokenSet", TokenSet, token_set),
    write("ACL.TokenClone", TokenClone, token_clone),
    write("ACL.TokenDelete", ByID, token_delete),
    read("ACL.TokenRead", TokenRead, acl_reads.read_token, _token_read_needs),
    read("ACL.ResolveToken", TokenRead, acl_reads.resolve_token, _possession),
    read("ACL.TokenList", TokenList, acl_reads.list_tokens, _acl_read),
    write("ACL.PolicySet", RowSet, policy_set),
    write("ACL.PolicyDelete", ByID, policy_delete),
    read("ACL.PolicyRead", ACLRead, acl_reads.read_policy, _acl_read),
    read("ACL.PolicyList", ACLList, acl_reads.list_policies, _acl_read),
    write("ACL.RoleSet", RowSet, role_set),
    write("ACL.RoleDelete", ByID, role_delete),
    read("ACL.RoleRead", ACLRead, acl_reads.read_role, _acl_read),
    read("ACL.RoleList", ACLList, acl_reads.list_roles, _acl_read),
    write("ACL.AuthMethodSet", RowSet, auth_method_set),
    write("ACL.AuthMethodDelete", ByID, auth_method_delete),
    read("ACL.AuthMethodRead", ACLRead, acl_reads.read_auth_method, _acl_read),
    read("ACL.AuthMethodList", ACLList, acl_reads.list_auth_methods, _acl_read),
    write("ACL.BindingRuleSet", RowSet, binding_rule_set),
    write("ACL.BindingRuleDelete", ByID, binding_rule_delete),
    read("ACL.BindingRuleRead", ACLRead, acl_reads.read_binding_rule, _acl_read),
    read("ACL.BindingRuleList", ACLList, acl_reads.list_binding_rules, _acl_read),
    write("ACL.Login", Login, login),
    write("ACL.Logout", Logout, logout),
]
