"""The ACL core: the rule language, authorizers and token resolution. Pure library code: it
imports nothing from consulpy/server, consulpy/http or consulpy/agent.

Interfaces the rest of consulpy codes against:

- `rules.parse_rules(text) -> PolicyRules` (HCL or JSON; `RuleError` with Consul's texts).
- `identities`: built-in IDs and rules (global-management, builtin/global-read-only, the
  anonymous token), `service_identity_rules`, `node_identity_rules`, `applies_in`.
- `authorizer.Authorizer(policies, default_policy=, enable_key_list_policy=)` with
  `allowed(resource, segment, access)` and typed helpers (`key_read`, `key_write_prefix`,
  `key_list_allowed`, `service_write`, `intention_write`, ...); `ManagementAuthorizer`,
  `AllowAllAuthorizer`, `DenyAllAuthorizer`; `PermissionDenied` and `permission_denied_text`.
- `resolver.Resolver(lookup, default_policy=, down_policy=, token_ttl=, policy_ttl=, role_ttl=,
  clock=, datacenter=, enable_key_list_policy=)`: `await resolve(secret) -> Resolved`
  (`accessor_id`, `authorizer`, `token`, `denied(resource, access, segment)`), raising
  `ACLNotFound`; `invalidate(index)`, `invalidate_token/policy/role`. `ACLLookup` is the
  Protocol a store or RPC client implements (`TokenInfo`, `PolicyInfo`, `RoleInfo`), raising
  `ACLUnreachable` when the servers cannot be reached.
"""
