# Who may call `api`: web. Intentions are stored as one service-intentions entry per
# destination. With ACLs off (as in the dev cluster) a connection that no intention matches
# is allowed; add a source "*" with Action = "deny" below web to allow web only, or run the
# agents with acl { default_policy = "deny" } for a deny-by-default mesh.
#
# Try it: `consulpy intention create -replace -deny web api` makes web's calls fail (403 from
# api's sidecar, web answers 502), `consulpy intention delete web api` (or -replace -allow)
# lets them through again.
Kind = "service-intentions"
Name = "api"
Sources = [
  {
    Name   = "web"
    Action = "allow"
  }
]
