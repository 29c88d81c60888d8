"""`consulpy acl ...`, `consulpy login` and `consulpy logout`: HTTP clients of /v1/acl/*.

Output follows Consul's CLI: `Key: value` blocks by default, the API's JSON with
`-format=json`. Every command takes the common HTTP flags (-token, -token-file, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from consulpy.cli.client import APIError, Client, add_http_flags, fail

USAGE = """Usage: consulpy acl <subcommand> [options] [args]

Subcommands:
    auth-method        Manage Consul's ACL auth methods
    binding-rule       Manage Consul's ACL binding rules
    bootstrap          Bootstrap Consul's ACL system
    policy             Manage Consul's ACL policies
    role               Manage Consul's ACL roles
    set-agent-token    Assign tokens for the Consul Agent's usage
    token              Manage Consul's ACL tokens"""

Action = Callable[[Client, argparse.Namespace], int]


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"consulpy {prog}", allow_abbrev=False)
    add_http_flags(parser)
    _flag(parser, "format", default="pretty", choices=("pretty", "json"))
    return parser


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


def _text_arg(value: str | None) -> str:
    """Consul's `@file` / `-` (stdin) / literal argument."""
    if value is None:
        return ""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as fh:
            return fh.read()
    return value


# ------------------------------------------------------------------- output
def _show(obj: Any, fmt: str, kind: str) -> None:
    if fmt == "json":
        print(json.dumps(obj, indent=4))
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            if i:
                print()
            _show(item, fmt, kind)
        return
    for line in _pretty(obj, kind):
        print(line)


def _links(obj: dict[str, Any], key: str) -> list[str]:
    return [f"   {link['ID']} - {link['Name']}" for link in obj.get(key) or ()]


def _identities(obj: dict[str, Any]) -> list[str]:
    out = []
    if obj.get("ServiceIdentities"):
        out.append("Service Identities:")
        for ident in obj["ServiceIdentities"]:
            dcs = ", ".join(ident.get("Datacenters") or []) or "all"
            out.append(f"   {ident['ServiceName']} (Datacenters: {dcs})")
    if obj.get("NodeIdentities"):
        out.append("Node Identities:")
        for ident in obj["NodeIdentities"]:
            out.append(f"   {ident['NodeName']} (Datacenter: {ident['Datacenter']})")
    return out


def _pretty(obj: dict[str, Any], kind: str) -> list[str]:
    if kind == "token":
        out = [
            f"AccessorID:       {obj['AccessorID']}",
            f"SecretID:         {obj['SecretID']}",
        ]
        if obj.get("AuthMethod"):
            out.append(f"Auth Method:      {obj['AuthMethod']}")
        out += [
            f"Description:      {obj.get('Description', '')}",
            f"Local:            {str(obj.get('Local', False)).lower()}",
            f"Create Time:      {obj.get('CreateTime', '')}",
        ]
        if obj.get("ExpirationTime"):
            out.append(f"Expiration Time:  {obj['ExpirationTime']}")
        if obj.get("Policies"):
            out += ["Policies:", *_links(obj, "Policies")]
        if obj.get("Roles"):
            out += ["Roles:", *_links(obj, "Roles")]
        return out + _identities(obj)
    if kind == "policy":
        out = [
            f"ID:           {obj['ID']}",
            f"Name:         {obj['Name']}",
            f"Description:  {obj.get('Description', '')}",
            f"Datacenters:  {', '.join(obj.get('Datacenters') or [])}",
        ]
        if "Rules" in obj:
            out += ["Rules:", obj["Rules"]]
        return out
    if kind == "role":
        out = [
            f"ID:           {obj['ID']}",
            f"Name:         {obj['Name']}",
            f"Description:  {obj.get('Description', '')}",
        ]
        if obj.get("Policies"):
            out += ["Policies:", *_links(obj, "Policies")]
        return out + _identities(obj)
    width = max((len(k) for k in obj), default=0) + 1
    return [
        f"{k + ':':<{width}}  {json.dumps(v) if isinstance(v, (dict, list)) else v}"
        for k, v in obj.items()
    ]


# ------------------------------------------------------------------- common
def _call(client: Client, method: str, path: str, body: Any = None, **params: Any) -> Any:
    data = None if body is None else json.dumps(body).encode()
    return client.request(method, path, params=params or None, body=data).json()


def _service_identities(values: list[str]) -> list[dict[str, Any]]:
    out = []
    for value in values:
        name, _, dcs = value.partition(":")
        ident: dict[str, Any] = {"ServiceName": name}
        if dcs:
            ident["Datacenters"] = dcs.split(",")
        out.append(ident)
    return out


def _node_identities(values: list[str]) -> list[dict[str, str]]:
    out = []
    for value in values:
        name, sep, dc = value.partition(":")
        if not sep or not name or not dc:
            raise APIError(0, f"Malformed -node-identity argument: {value!r}")
        out.append({"NodeName": name, "Datacenter": dc})
    return out


def _link_flags(parser: argparse.ArgumentParser, roles: bool = True) -> None:
    _flag(parser, "policy-id", action="append", default=[])
    _flag(parser, "policy-name", action="append", default=[])
    if roles:
        _flag(parser, "role-id", action="append", default=[])
        _flag(parser, "role-name", action="append", default=[])
    _flag(parser, "service-identity", action="append", default=[])
    _flag(parser, "node-identity", action="append", default=[])


def _links_body(args: argparse.Namespace, roles: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Policies": [{"ID": i} for i in args.policy_id] + [{"Name": n} for n in args.policy_name],
        "ServiceIdentities": _service_identities(args.service_identity),
        "NodeIdentities": _node_identities(args.node_identity),
    }
    if roles:
        body["Roles"] = [{"ID": i} for i in args.role_id] + [{"Name": n} for n in args.role_name]
    return body


# ------------------------------------------------------------------- tokens
def _token(argv: list[str]) -> int:
    def configure(sub: str, parser: argparse.ArgumentParser) -> None:
        if sub in ("read", "update", "clone", "delete"):
            _flag(parser, "id", default="")
        if sub == "read":
            _flag(parser, "self", action="store_true")
        if sub in ("create", "update", "clone"):
            _flag(parser, "description", default=None)
        if sub in ("create", "update"):
            _link_flags(parser)
        if sub == "create":
            _flag(parser, "local", action="store_true")
            _flag(parser, "expires-ttl", default="")
            _flag(parser, "accessor", default="")
            _flag(parser, "secret", default="")

    def run(sub: str, client: Client, args: argparse.Namespace) -> Any:
        if sub == "list":
            return _call(client, "GET", "/v1/acl/tokens")
        if sub == "read":
            if args.self:
                return _call(client, "GET", "/v1/acl/token/self")
            return _call(client, "GET", f"/v1/acl/token/{_need(args.id, 'id')}")
        if sub == "delete":
            _call(client, "DELETE", f"/v1/acl/token/{_need(args.id, 'id')}")
            return f"Token {args.id!r} deleted successfully"
        if sub == "clone":
            body = {"Description": args.description or ""}
            return _call(client, "PUT", f"/v1/acl/token/{_need(args.id, 'id')}/clone", body)
        body = _links_body(args)
        if args.description is not None:
            body["Description"] = args.description
        if sub == "create":
            body.update(Local=args.local)
            if args.expires_ttl:
                body["ExpirationTTL"] = args.expires_ttl
            if args.accessor:
                body["AccessorID"] = args.accessor
            if args.secret:
                body["SecretID"] = args.secret
            return _call(client, "PUT", "/v1/acl/token", body)
        accessor = _need(args.id, "id")
        current = _call(client, "GET", f"/v1/acl/token/{accessor}")
        for key in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities"):
            if not body[key]:
                body[key] = current.get(key) or []
        body.setdefault("Description", current.get("Description", ""))
        return _call(client, "PUT", f"/v1/acl/token/{accessor}", body)

    return _family(
        "token", ("create", "read", "update", "clone", "delete", "list"), configure, run, argv
    )


# ---------------------------------------------------------------- policies
def _policy(argv: list[str]) -> int:
    def configure(sub: str, parser: argparse.ArgumentParser) -> None:
        if sub in ("read", "update", "delete"):
            _flag(parser, "id", default="")
        if sub in ("create", "read", "update", "delete"):
            _flag(parser, "name", default="")
        if sub in ("create", "update"):
            _flag(parser, "description", default=None)
            _flag(parser, "rules", default=None)
            _flag(parser, "valid-datacenter", action="append", default=[])

    def run(sub: str, client: Client, args: argparse.Namespace) -> Any:
        if sub == "list":
            return _call(client, "GET", "/v1/acl/policies")
        if sub == "create":
            body = {
                "Name": _need(args.name, "name"),
                "Description": args.description or "",
                "Rules": _text_arg(args.rules),
                "Datacenters": args.valid_datacenter,
            }
            return _call(client, "PUT", "/v1/acl/policy", body)
        policy_id = (
            args.id or _call(client, "GET", f"/v1/acl/policy/name/{_need(args.name, 'id')}")["ID"]
        )
        if sub == "read":
            return _call(client, "GET", f"/v1/acl/policy/{policy_id}")
        if sub == "delete":
            _call(client, "DELETE", f"/v1/acl/policy/{policy_id}")
            return f"Policy {policy_id!r} deleted successfully"
        current = _call(client, "GET", f"/v1/acl/policy/{policy_id}")
        body = {
            "ID": policy_id,
            "Name": (args.name if args.id else "") or current["Name"],
            "Description": current.get("Description", "")
            if args.description is None
            else args.description,
            "Rules": current.get("Rules", "") if args.rules is None else _text_arg(args.rules),
            "Datacenters": args.valid_datacenter or current.get("Datacenters") or [],
        }
        return _call(client, "PUT", f"/v1/acl/policy/{policy_id}", body)

    return _family("policy", ("create", "read", "update", "delete", "list"), configure, run, argv)


# -------------------------------------------------------------------- roles
def _role(argv: list[str]) -> int:
    def configure(sub: str, parser: argparse.ArgumentParser) -> None:
        if sub in ("read", "update", "delete"):
            _flag(parser, "id", default="")
        if sub in ("create", "read", "update", "delete"):
            _flag(parser, "name", default="")
        if sub in ("create", "update"):
            _flag(parser, "description", default=None)
            _link_flags(parser, roles=False)

    def run(sub: str, client: Client, args: argparse.Namespace) -> Any:
        if sub == "list":
            return _call(client, "GET", "/v1/acl/roles")
        if sub == "create":
            body = _links_body(args, roles=False)
            body.update(Name=_need(args.name, "name"), Description=args.description or "")
            return _call(client, "PUT", "/v1/acl/role", body)
        role_id = (
            args.id or _call(client, "GET", f"/v1/acl/role/name/{_need(args.name, 'id')}")["ID"]
        )
        if sub == "read":
            return _call(client, "GET", f"/v1/acl/role/{role_id}")
        if sub == "delete":
            _call(client, "DELETE", f"/v1/acl/role/{role_id}")
            return f"Role {role_id!r} deleted successfully"
        current = _call(client, "GET", f"/v1/acl/role/{role_id}")
        body = _links_body(args, roles=False)
        for key in ("Policies", "ServiceIdentities", "NodeIdentities"):
            if not body[key]:
                body[key] = current.get(key) or []
        body["ID"] = role_id
        body["Name"] = (args.name if args.id else "") or current["Name"]
        body["Description"] = (
            current.get("Description", "") if args.description is None else args.description
        )
        return _call(client, "PUT", f"/v1/acl/role/{role_id}", body)

    return _family("role", ("create", "read", "update", "delete", "list"), configure, run, argv)


# ------------------------------------------------------- auth methods, rules
def _auth_method(argv: list[str]) -> int:
    def configure(sub: str, parser: argparse.ArgumentParser) -> None:
        if sub != "list":
            _flag(parser, "name", default="")
        if sub in ("create", "update"):
            _flag(parser, "type", default="")
            _flag(parser, "display-name", default=None)
            _flag(parser, "description", default=None)
            _flag(parser, "max-token-ttl", default=None)
            _flag(parser, "token-locality", default=None)
            _flag(parser, "config", default=None)

    def run(sub: str, client: Client, args: argparse.Namespace) -> Any:
        if sub == "list":
            return _call(client, "GET", "/v1/acl/auth-methods")
        name = _need(args.name, "name")
        if sub == "read":
            return _call(client, "GET", f"/v1/acl/auth-method/{name}")
        if sub == "delete":
            _call(client, "DELETE", f"/v1/acl/auth-method/{name}")
            return f"Auth-method {name!r} deleted successfully"
        body: dict[str, Any] = {"Name": name}
        if sub == "update":
            body = _call(client, "GET", f"/v1/acl/auth-method/{name}")
        if args.type:
            body["Type"] = args.type
        for flag, key in (
            ("display_name", "DisplayName"),
            ("description", "Description"),
            ("max_token_ttl", "MaxTokenTTL"),
            ("token_locality", "TokenLocality"),
        ):
            if getattr(args, flag) is not None:
                body[key] = getattr(args, flag)
        if args.config is not None:
            body["Config"] = json.loads(_text_arg(args.config))
        if sub == "create":
            return _call(client, "PUT", "/v1/acl/auth-method", body)
        return _call(client, "PUT", f"/v1/acl/auth-method/{name}", body)

    return _family(
        "auth-method", ("create", "read", "update", "delete", "list"), configure, run, argv
    )


def _binding_rule(argv: list[str]) -> int:
    def configure(sub: str, parser: argparse.ArgumentParser) -> None:
        if sub in ("read", "update", "delete"):
            _flag(parser, "id", default="")
        if sub in ("create", "list"):
            _flag(parser, "method", default="")
        if sub in ("create", "update"):
            _flag(parser, "description", default=None)
            _flag(parser, "selector", default=None)
            _flag(parser, "bind-type", default=None)
            _flag(parser, "bind-name", default=None)

    def run(sub: str, client: Client, args: argparse.Namespace) -> Any:
        if sub == "list":
            params = {"authmethod": args.method} if args.method else {}
            return _call(client, "GET", "/v1/acl/binding-rules", **params)
        if sub == "create":
            body: dict[str, Any] = {"AuthMethod": _need(args.method, "method")}
        else:
            rule_id = _need(args.id, "id")
            if sub == "read":
                return _call(client, "GET", f"/v1/acl/binding-rule/{rule_id}")
            if sub == "delete":
                _call(client, "DELETE", f"/v1/acl/binding-rule/{rule_id}")
                return f"Binding rule {rule_id!r} deleted successfully"
            body = _call(client, "GET", f"/v1/acl/binding-rule/{rule_id}")
        for flag, key in (
            ("description", "Description"),
            ("selector", "Selector"),
            ("bind_type", "BindType"),
            ("bind_name", "BindName"),
        ):
            if getattr(args, flag) is not None:
                body[key] = getattr(args, flag)
        if sub == "create":
            return _call(client, "PUT", "/v1/acl/binding-rule", body)
        return _call(client, "PUT", f"/v1/acl/binding-rule/{body['ID']}", body)

    return _family(
        "binding-rule", ("create", "read", "update", "delete", "list"), configure, run, argv
    )


# --------------------------------------------------------------- dispatcher
def _need(value: str, flag: str) -> str:
    if not value:
        raise APIError(0, f"Must specify the -{flag} parameter")
    return value


def _family(
    kind: str,
    subs: tuple[str, ...],
    configure: Callable[[str, argparse.ArgumentParser], None],
    run: Callable[[str, Client, argparse.Namespace], Any],
    argv: list[str],
) -> int:
    if not argv or argv[0] not in subs:
        return fail(f"Usage: consulpy acl {kind} <{'|'.join(subs)}> [options]")
    sub = argv[0]
    parser = _parser(f"acl {kind} {sub}")
    configure(sub, parser)
    args = parser.parse_args(argv[1:])
    try:
        client = Client.from_args(args)
        result = run(sub, client, args)
    except APIError as exc:
        return fail(f"Failed to {sub} {kind}: {exc}" if exc.status else str(exc))
    if isinstance(result, str):
        print(result)
    else:
        show_kind = kind if kind in ("token", "policy", "role") else "other"
        _show(result, args.format, show_kind)
    return 0


def _bootstrap(argv: list[str]) -> int:
    parser = _parser("acl bootstrap")
    args = parser.parse_args(argv)
    try:
        token = _call(Client.from_args(args), "PUT", "/v1/acl/bootstrap")
    except APIError as exc:
        return fail(f"Failed ACL bootstrapping: {exc}")
    _show(token, args.format, "token")
    return 0


def _set_agent_token(argv: list[str]) -> int:
    parser = _parser("acl set-agent-token")
    parser.add_argument("kind")
    # Not dest "token": that is the -token flag, the caller's own token.
    parser.add_argument("secret", metavar="token")
    args = parser.parse_args(argv)
    try:
        _call(Client.from_args(args), "PUT", f"/v1/agent/token/{args.kind}", {"Token": args.secret})
    except APIError as exc:
        return fail(f"Failed to set {args.kind} token: {exc}")
    print("ACL token set successfully")
    return 0


FAMILIES: dict[str, Callable[[list[str]], int]] = {
    "bootstrap": _bootstrap,
    "token": _token,
    "policy": _policy,
    "role": _role,
    "auth-method": _auth_method,
    "binding-rule": _binding_rule,
    "set-agent-token": _set_agent_token,
}


def acl_main(argv: list[str]) -> int:
    if not argv or argv[0] not in FAMILIES:
        print(USAGE, file=sys.stderr)
        return 1
    return FAMILIES[argv[0]](argv[1:])


def login_main(argv: list[str]) -> int:
    parser = _parser("login")
    _flag(parser, "method", default="")
    _flag(parser, "bearer-token-file", default="")
    _flag(parser, "token-sink-file", default="")
    _flag(parser, "meta", action="append", default=[])
    args = parser.parse_args(argv)
    if not args.method:
        return fail("Missing required '-method' flag")
    if not args.bearer_token_file:
        return fail("Missing required '-bearer-token-file' flag")
    if not args.token_sink_file:
        return fail("Missing required '-token-sink-file' flag")
    try:
        with open(args.bearer_token_file, encoding="utf-8") as fh:
            bearer = fh.read().strip()
    except OSError as exc:
        return fail(f"Error reading bearer token file: {exc}")
    meta = dict(item.partition("=")[::2] for item in args.meta)
    body = {"AuthMethod": args.method, "BearerToken": bearer, "Meta": meta}
    try:
        token = _call(Client.from_args(args), "POST", "/v1/acl/login", body)
    except APIError as exc:
        return fail(f"Error logging in: {exc}")
    with open(args.token_sink_file, "w", encoding="utf-8") as fh:
        fh.write(token["SecretID"])
    return 0


def logout_main(argv: list[str]) -> int:
    parser = _parser("logout")
    args = parser.parse_args(argv)
    try:
        _call(Client.from_args(args), "POST", "/v1/acl/logout")
    except APIError as exc:
        return fail(f"Error destroying token: {exc}")
    return 0
