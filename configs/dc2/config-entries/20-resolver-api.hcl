# `api` fails over to dc2: while dc1 has a healthy api instance web's sidecar sends it there;
# once none is (stop dc1's api and its health check fails), it sends web's calls through the
# mesh gateways to dc2's api, and back when dc1's is healthy again.
#
# Try it: `consulpy dev-cluster kill api` (compose: `docker compose stop api`), then
# `curl $WEB_URL/` answers with "instance": "api-dc2" within a few seconds (api's check runs
# every 5 s); `consulpy dev-cluster up` (compose: `docker compose start api`) brings it back.
Kind = "service-resolver"
Name = "api"
Failover = {
  "*" = {
    Datacenters = ["dc2"]
  }
}
