# Policy `dns-read`, of the dev cluster's default token (acl.hcl's tokens.default): DNS and
# anonymous HTTP callers may find services and nodes, and nothing else (no KV, no writes).
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
