# service-defaults for `api`: speak HTTP, so that sidecars route and authorize each request
# (L7) rather than each TCP connection: a changed intention applies to the very next request,
# and api sees the caller's identity in the X-Forwarded-Client-Cert header.
# Written at start by `consulpy config write` (compose: the consul-config one-shot; the twin:
# `consulpy dev-cluster up`). Change it with `consulpy config write <file>`.
Kind     = "service-defaults"
Name     = "api"
Protocol = "http"
