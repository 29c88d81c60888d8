# Every sidecar reaches other datacenters through its own datacenter's mesh gateway (mode
# local): web's sidecar -> mesh gateway dc1 -> mesh gateway dc2 -> api's sidecar in dc2.
# Written in dc1 (the primary) by the consul-config-dc2 one-shot (the twin: `dev-cluster up
# -dc2`); dc2 gets it by replication. docs/gateways.md describes the modes.
Kind = "proxy-defaults"
Name = "global"
MeshGateway {
  Mode = "local"
}
