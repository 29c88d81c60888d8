"""The server role: the replicated state store driven by consensus, reads with Consul's
consistency modes and blocking semantics, and the leader's duties."""
