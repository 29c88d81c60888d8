# Loaded last by dc2's server, on top of server.hcl, encrypt.hcl, acl.hcl and dc2/agent.hcl.

# dc2 runs one server: enough to show the federation, and cheaper to start. Use 3 for a
# datacenter that must survive losing a server.
bootstrap_expect = 1

# server.hcl's primary_datacenter = "dc1" makes this server a secondary: dc1 holds the CA
# (dc2's is an intermediate signed by dc1's root), the config entries and the ACL objects,
# and dc2's leader replicates them. It joins dc1's servers in the WAN pool with
# -retry-join-wan (docker-compose.yml), every second (retry_interval_wan in server.hcl).

acl {
  # Tokens are created in dc1; dc2's leader copies the global ones (every token of the dev
  # cluster is global), so the same secrets work in both datacenters.
  enable_token_replication = true
  tokens {
    # DEV-ONLY: the replication reads dc1's ACL objects with this token. The dev cluster
    # uses the management token; a real secondary gets a token with acl = "write" (and
    # operator = "write" for the CA) made for the purpose (docs/multi-dc.md).
    replication = "dddddddd-0000-4000-8000-00000000a001"
  }
}
