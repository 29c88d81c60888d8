# service-defaults for `web`: it speaks HTTP too (see 10-defaults-api.hcl).
Kind     = "service-defaults"
Name     = "web"
Protocol = "http"
