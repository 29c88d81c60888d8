# Loaded after the other files by every agent of the second datacenter (compose profile
# `dc2`, `consulpy dev-cluster up -dc2`): the same agents as dc1's, in another datacenter.
# docs/multi-dc.md walks through the two-datacenter dev cluster.
datacenter = "dc2"
