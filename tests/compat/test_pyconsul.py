"""The PyPI `py-consul` client's KV, session and txn calls against a real agent."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator

import consul
import pytest

from consulpy.testing import DevAgent


@pytest.fixture(scope="module")
def dev() -> Iterator[DevAgent]:
    with DevAgent(config={"session_ttl_min": "1s"}).in_thread() as agent:
        yield agent


@pytest.fixture
def c(dev: DevAgent) -> consul.Consul:
    client = consul.Consul(host=dev.host, port=dev.port)
    client.kv.delete("", recurse=True)
    return client


def test_kv_put_get_delete(c: consul.Consul) -> None:
    assert c.kv.put("pc/a", "1") is True
    index, data = c.kv.get("pc/a")
    assert data["Value"] == b"1" and int(index) >= 1  # py-consul returns the header text
    assert c.kv.put("pc/b", b"\x00\xff", flags=9) is True
    _, items = c.kv.get("pc/", recurse=True)
    assert [(i["Key"], i["Value"], i["Flags"]) for i in items] == [
        ("pc/a", b"1", 0),
        ("pc/b", b"\x00\xff", 9),
    ]
    _, keys = c.kv.get("", keys=True, separator="/")
    assert keys == ["pc/"]
    _, missing = c.kv.get("pc/none")
    assert missing is None
    assert c.kv.delete("pc/a") is True
    _, gone = c.kv.get("pc/a")
    assert gone is None
    assert c.kv.delete("pc/", recurse=True) is True
    _, empty = c.kv.get("pc/", recurse=True)
    assert empty is None


def test_consistency_modes(c: consul.Consul) -> None:
    c.kv.put("cm", "v")
    for mode in ("default", "consistent", "stale"):
        _, data = c.kv.get("cm", consistency=mode)
        assert data["Value"] == b"v"


def test_cas_loop_under_contention(c: consul.Consul, dev: DevAgent) -> None:
    c.kv.put("counter", "0")
    workers, increments = 4, 15

    def worker() -> None:
        client = consul.Consul(host=dev.host, port=dev.port)
        done = 0
        while done < increments:
            _, entry = client.kv.get("counter")
            value = int(entry["Value"]) + 1
            if client.kv.put("counter", str(value), cas=entry["ModifyIndex"]):
                done += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _, entry = c.kv.get("counter")
    assert int(entry["Value"]) == workers * increments


def test_session_lock_acquire_release(c: consul.Consul) -> None:
    sid = c.session.create(name="leader-election", ttl=15, behavior="release", lock_delay=0)
    other = c.session.create(checks=[])
    assert c.kv.put("service/db/leader", "me", acquire=sid) is True
    assert c.kv.put("service/db/leader", "them", acquire=other) is False
    _, entry = c.kv.get("service/db/leader")
    assert entry["Session"] == sid and entry["LockIndex"] == 1
    assert c.kv.put("service/db/leader", "me", release=sid) is True
    assert c.kv.put("service/db/leader", "them", acquire=other) is True
    _, info = c.session.info(sid)
    assert info["Name"] == "leader-election" and info["TTL"] == "15s"
    _, sessions = c.session.list()
    assert {s["ID"] for s in sessions} >= {sid, other}
    renewed = c.session.renew(sid)
    assert renewed["ID"] == sid
    assert c.session.destroy(sid) is True
    _, info = c.session.info(sid)
    assert info is None
    # Patroni recreates its session when renew says 404
    with pytest.raises(consul.NotFound):
        c.session.renew(sid)


def test_session_delete_behavior(c: consul.Consul) -> None:
    # (py-consul refuses TTLs under 10 s client-side; TTL expiry is covered over plain HTTP.)
    sid = c.session.create(ttl=10, behavior="delete", lock_delay=0)
    assert c.kv.put("ephemeral", "x", acquire=sid) is True
    assert c.session.destroy(sid) is True
    assert c.kv.get("ephemeral")[1] is None


def test_blocking_get(c: consul.Consul, dev: DevAgent) -> None:
    c.kv.put("watched", "1")
    index, _ = c.kv.get("watched")
    result: dict[str, object] = {}

    def waiter() -> None:
        result["index"], result["data"] = consul.Consul(host=dev.host, port=dev.port).kv.get(
            "watched", index=index, wait="30s"
        )

    t = threading.Thread(target=waiter)
    t.start()
    c.kv.put("watched", "2")
    t.join(10)
    assert not t.is_alive()
    assert result["data"]["Value"] == b"2" and int(result["index"]) > int(index)


def test_txn(c: consul.Consul) -> None:
    def b64(v: bytes) -> str:
        return base64.b64encode(v).decode()

    out = c.txn.put(
        [
            {"KV": {"Verb": "set", "Key": "tx/a", "Value": b64(b"1")}},
            {"KV": {"Verb": "set", "Key": "tx/b", "Value": b64(b"2")}},
            {"KV": {"Verb": "get", "Key": "tx/a"}},
        ]
    )
    assert out["Errors"] is None and len(out["Results"]) == 3
    with pytest.raises(consul.ConsulException):
        c.txn.put([{"KV": {"Verb": "cas", "Key": "tx/a", "Index": 1, "Value": b64(b"x")}}])
    _, entry = c.kv.get("tx/a")
    assert entry["Value"] == b"1"


def test_status_and_agent(c: consul.Consul, dev: DevAgent) -> None:
    assert c.status.leader() == dev.agent.server.rpc_address
    assert len(c.status.peers()) == 1
    me = c.agent.self()
    assert me["Config"]["Datacenter"] == "dc1"
    assert c.agent.members()[0]["Status"] == 1


def test_agent_catalog_health(c: consul.Consul, dev: DevAgent) -> None:
    node = dev.agent.node_name
    assert (
        c.agent.service.register(
            "web",
            service_id="web-1",
            port=8080,
            tags=["v1"],
            check=consul.Check.ttl("15s"),
            enable_tag_override=True,
        )
        is True
    )
    assert "web-1" in c.agent.services()
    check_id = "service:web-1"
    assert c.agent.checks()[check_id]["Status"] == "critical"
    c.agent.check.ttl_pass(check_id, notes="ok")
    _, nodes = c.health.service("web", passing=True)
    assert [n["Service"]["ID"] for n in nodes] == ["web-1"]
    _, services = c.catalog.services()
    assert services["web"] == ["v1"]
    _, rows = c.catalog.service("web")
    assert rows[0]["Node"] == node and rows[0]["ServicePort"] == 8080
    _, node_info = c.catalog.node(node)
    assert "web-1" in node_info["Services"]
    _, catalog_nodes = c.catalog.nodes()
    assert node in [n["Node"] for n in catalog_nodes]
    _, checks = c.health.checks("web")
    assert checks[0]["CheckID"] == check_id
    _, state = c.health.state("passing")
    assert check_id in {s["CheckID"] for s in state}
    _, node_checks = c.health.node(node)
    assert {"serfHealth", check_id} <= {s["CheckID"] for s in node_checks}
    assert c.agent.check.register("disk", consul.Check.ttl("30s"), check_id="disk") is True
    c.agent.check.ttl_warn("disk", notes="80% full")
    assert c.agent.checks()["disk"]["Status"] == "warning"
    assert c.agent.check.deregister("disk") is True
    c.agent.maintenance(True, "upgrade")
    _, nodes = c.health.service("web", passing=True)
    assert nodes == []
    c.agent.maintenance(False)
    c.agent.service.maintenance("web-1", True, "deploy")
    _, nodes = c.health.service("web", passing=True)
    assert nodes == []
    c.agent.service.maintenance("web-1", False)
    assert (
        c.catalog.register(
            "ext",
            "10.1.1.1",
            service={"Service": "ext-db", "Port": 5432},
            check={"Name": "ext alive", "Status": "passing", "ServiceID": "ext-db"},
        )
        is True
    )
    _, ext = c.health.service("ext-db", passing=True)
    assert ext[0]["Node"]["Address"] == "10.1.1.1"
    assert c.catalog.deregister("ext") is True
    assert c.agent.service.deregister("web-1") is True
    _, rows = c.catalog.service("web")
    assert rows == []


def test_http_check_via_pyconsul(c: consul.Consul, dev: DevAgent) -> None:
    # An HTTP check pointed at the agent's own status endpoint: passing once it has run.
    url = f"http://{dev.http_addr}/v1/status/leader"
    c.agent.service.register("selfcheck", check=consul.Check.http(url, "1s", timeout="2s"))
    deadline = time.monotonic() + 15
    while True:
        _, nodes = c.health.service("selfcheck", passing=True)
        if nodes:
            break
        assert time.monotonic() < deadline, "HTTP check never passed"
        time.sleep(0.1)
    out = c.agent.checks()["service:selfcheck"]["Output"]
    assert out.startswith(f"HTTP GET {url}: 200 OK Output: ")
    c.agent.service.deregister("selfcheck")


def test_connect_ca_intentions_and_config(c: consul.Consul, dev: DevAgent) -> None:
    deadline = time.monotonic() + 20
    while not c.connect.ca.roots()["Roots"]:
        assert time.monotonic() < deadline, "the CA never initialised"
        time.sleep(0.1)
    roots = c.connect.ca.roots()
    assert roots["ActiveRootID"] and roots["TrustDomain"].endswith(".consul")
    assert c.connect.ca.configuration()["Provider"] == "consul"
    assert c.connect.intentions.upsert("web", "db", action="allow") is True
    assert c.connect.intentions.upsert("*", "db", action="deny") is True
    got = c.connect.intentions.read("web", "db")
    assert got["Action"] == "allow" and got["Precedence"] == 9
    assert [i["SourceName"] for i in c.connect.intentions.list()] == ["web", "*"]
    assert c.connect.intentions.check("web", "db") is True
    assert c.connect.intentions.check("api", "db") is False
    assert c.connect.intentions.delete("web", "db") is True
    assert c.connect.intentions.check("web", "db") is False
    assert c.connect.intentions.delete("*", "db") is True
    assert c.config.set("service-defaults", "web", {"Protocol": "http"}) is True
    assert c.config.get("service-defaults", "web")["Protocol"] == "http"
    assert [e["Name"] for e in c.config.list("service-defaults")] == ["web"]
    c.config.delete("service-defaults", "web")
    assert c.config.get("service-defaults", "web") is None  # py-consul maps the 404 to None
