"""The UI's datacenter selector in a real Chromium: two one-server datacenters joined over the
WAN, the browser on dc1's agent only. Choosing dc2 shows dc2's services (the same screen, now
in dc2), a key created on dc2's KV screen is written in dc2 and not in dc1, links keep the
chosen datacenter, the cluster screen shows dc2's servers, and an unknown datacenter in the
URL shows the API's `No path to datacenter` in words, and a screen's path without a
datacenter opens this agent's.

One federation and one browser for the module; every wait polls with a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Node, eventually
from tests.ui.browser import LIVE, Page, api, chromium
from tests.wan.harness import Federation, federation

expect: Any = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    f = federation(Path(tmp_path_factory.mktemp("uidc")), servers=1, clients=0)
    f.dc1.servers[0].extra.append("-ui")
    with f.running():
        one = f.dc1.servers[0]
        eventually(
            lambda: one.json("GET", "/v1/catalog/datacenters") == ["dc1", "dc2"],
            60,
            what="dc1's agent lists dc1 and dc2",
        )
        yield f


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def url(node: Node) -> str:
    return f"http://{node.http_addr}"


def test_selector_switches_screens_reads_and_writes_to_dc2(fed: Federation, browser: Any) -> None:
    dc1, dc2 = url(fed.dc1.servers[0]), url(fed.dc2.servers[0])
    status, out = api(dc2, "PUT", "/v1/agent/service/register", {"Name": "only-in-dc2"})
    assert status == 200, out
    assert api(dc2, "PUT", "/v1/kv/dc2-folder/seed", raw=b"dc2")[0] == 200
    ui = Page(browser, dc1)
    page = ui.open("/ui/dc1/services")
    table = page.get_by_role("table", name="Services")
    expect(table.get_by_role("link", name="consul", exact=True)).to_be_visible(timeout=LIVE)
    expect(table.get_by_role("link", name="only-in-dc2")).to_have_count(0)
    selector = page.get_by_label("Datacenter")
    expect(selector.locator("option")).to_have_text(["dc1", "dc2"], timeout=LIVE)

    # Switching keeps the screen and shows dc2's catalog, read through dc1's agent.
    selector.select_option("dc2")
    expect(page).to_have_url(dc1 + "/ui/dc2/services")
    expect(table.get_by_role("link", name="only-in-dc2")).to_be_visible(timeout=LIVE)
    expect(selector).to_have_value("dc2")
    ui.shot("services-dc2")
    # Links keep the chosen datacenter; the service's own screen reads dc2.
    page.get_by_role("link", name="only-in-dc2").click()
    expect(page).to_have_url(dc1 + "/ui/dc2/services/only-in-dc2")
    node = page.get_by_role("main").get_by_role("link", name=fed.dc2.servers[0].name, exact=True)
    expect(node).to_have_attribute("href", "/ui/dc2/nodes/s0", timeout=LIVE)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Key/Value")).to_have_attribute("href", "/ui/dc2/kv")

    # KV in dc2: its folder is listed, a key created here is written in dc2 and not in dc1.
    nav.get_by_role("link", name="Key/Value").click()
    expect(page).to_have_url(dc1 + "/ui/dc2/kv")
    expect(page.get_by_role("link", name="dc2-folder/")).to_be_visible(timeout=LIVE)
    page.get_by_role("link", name="Create").click()
    expect(page).to_have_url(dc1 + "/ui/dc2/kv/create")
    page.get_by_label("Key or folder name").fill("made-in-ui")
    page.get_by_label("Value").fill("hello dc2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="made-in-ui")).to_be_visible(timeout=LIVE)
    assert api(dc1, "GET", "/v1/kv/made-in-ui?raw&dc=dc2") == (200, "hello dc2")
    assert api(dc2, "GET", "/v1/kv/made-in-ui?raw") == (200, "hello dc2")
    assert api(dc1, "GET", "/v1/kv/made-in-ui")[0] == 404
    # Back to dc1 on the same screen: dc1's KV has neither key.
    selector.select_option("dc1")
    expect(page).to_have_url(dc1 + "/ui/dc1/kv/")
    expect(page.get_by_text("This folder is empty.")).to_be_visible(timeout=LIVE)

    # An intention made on dc2's screen is dc2's: its check there says Denied, dc1 has none.
    page = ui.open("/ui/dc2/intentions")
    page.get_by_role("link", name="Create").click()
    expect(page).to_have_url(dc1 + "/ui/dc2/intentions/create")
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_label("Action").select_option("deny")
    page.get_by_role("button", name="Save").click()
    ixns = page.get_by_role("table", name="Intentions")
    expect(ixns).to_contain_text("deny", timeout=LIVE)
    expect(ixns.get_by_role("link", name="Edit")).to_have_attribute(
        "href", "/ui/dc2/intentions/edit?source=web&destination=api"
    )
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#check-result")).to_have_text("Denied", timeout=LIVE)
    exact = "/v1/connect/intentions/exact?source=web&destination=api"
    assert api(dc2, "GET", exact)[1]["Action"] == "deny"
    assert api(dc1, "GET", exact)[0] == 404

    # The cluster screen of dc2: dc2's server and leader, its WAN member; no dc1 server.
    page = ui.open("/ui/dc2/overview")
    servers = page.get_by_role("table", name="Servers")
    expect(servers).to_contain_text(fed.dc2.servers[0].rpc_addr, timeout=LIVE)
    expect(page.locator("#leader")).to_have_text(fed.dc2.servers[0].rpc_addr, timeout=LIVE)
    members = page.get_by_role("table", name="Members")
    expect(members).to_contain_text("s0.dc2", timeout=LIVE)
    expect(members).not_to_contain_text("s0.dc1")
    ui.shot("cluster-dc2")

    # A datacenter nobody knows: the API's answer, in words, and the selector still works.
    page = ui.open("/ui/dc9/services")
    expect(page.get_by_role("alert")).to_contain_text("No path to datacenter dc9", timeout=LIVE)
    page.get_by_label("Datacenter").select_option("dc1")
    expect(page).to_have_url(dc1 + "/ui/dc1/services")
    expect(page.get_by_role("alert")).to_be_empty(timeout=LIVE)
    # A screen's path without a datacenter is this agent's datacenter.
    page = ui.open("/ui/kv/")
    expect(page).to_have_url(dc1 + "/ui/dc1/kv/")
    expect(page.get_by_text("This folder is empty.")).to_be_visible(timeout=LIVE)
    ui.close()
