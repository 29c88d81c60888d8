"""Service mesh (Connect) logic: the built-in CA, SPIFFE identities and intention matching."""
