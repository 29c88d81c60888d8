# ACLs of the dev cluster, loaded by every agent: on, and deny whatever no token allows.
#
# DEV-ONLY: the secrets below are fixed and public (they are in this repository). They let the
# containers name their tokens before the cluster exists. A real cluster leaves
# initial_management out, runs `consulpy acl bootstrap` once and keeps its secrets private
# (docs/acl.md).
acl {
  enabled                  = true
  default_policy           = "deny"
  # Tokens set with `consulpy acl set-agent-token` (the config job sets each agent's agent
  # token) survive a restart: they are kept in the data directory.
  enable_token_persistence = true

  tokens {
    # The servers' leader creates this global-management token. Use it as CONSUL_HTTP_TOKEN
    # (`consulpy dev-cluster env` prints it).
    initial_management = "dddddddd-0000-4000-8000-00000000a001"
    # What callers without a token (and DNS) act as: policy dns-read (acl/dns-read.hcl),
    # created by the config job.
    default = "dddddddd-0000-4000-8000-00000000a002"
  }
}
