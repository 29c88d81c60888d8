"""The web UI in a real Chromium against a real `consulpy agent -dev` process: the services
list and one service, a TTL check turning critical live, KV keys and folders, config entry and
key errors shown as the API gave them (and nothing changed), intentions, nodes, the cluster
screen, "no leader" in words (from a server that never gets one), keyboard-only use, and the
first paint of the services list with 1,000 services.

One agent and one browser for the module; every wait polls a condition with a deadline
(Playwright's expect), none sleeps. Screenshots of the main screens go to docs/ui/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.agentproc import AgentProcess
from tests.ui.browser import LIVE, Page, api, chromium

expect: Any = pytest.importorskip("playwright.sync_api").expect

FLAGS = (
    "-dev",
    "-node=ui-dev",
    "-http-port=0",
    "-dns-port=-1",
    "-grpc-port=-1",
    "-serf-lan-port=0",
    "-serf-wan-port=-1",
    "-server-port=0",
)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    proc = AgentProcess(*FLAGS).start()
    try:
        yield f"http://{proc.http_addr}"
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Any, base: str) -> Iterator[Page]:
    page = Page(browser, base)
    yield page
    page.close()


def register(base: str, body: dict[str, Any]) -> None:
    status, out = api(base, "PUT", "/v1/agent/service/register", body)
    assert status == 200, out


def test_services_list_search_and_one_service(ui: Page, base: str) -> None:
    for i in (1, 2):
        register(
            base,
            {
                "Name": "web",
                "ID": f"web-{i}",
                "Port": 8080 + i,
                "Tags": ["v1", "edge"],
                "Meta": {"team": "frontend"},
                "Check": {"CheckID": f"web-{i}-ttl", "TTL": "600s"},
            },
        )
        api(base, "PUT", f"/v1/agent/check/pass/web-{i}-ttl?note=served%20{i}")
    register(base, {"Name": "api", "Port": 9090, "Tags": ["internal"]})
    page = ui.open("/")
    expect(page).to_have_url(base + "/ui/dc1/services")
    table = page.get_by_role("table", name="Services")
    web_row = table.get_by_role("row").filter(has=page.get_by_role("link", name="web", exact=True))
    expect(web_row).to_contain_text("3 passing")  # two TTLs and the node's serfHealth
    expect(web_row.get_by_role("cell").nth(3)).to_have_text("2")
    expect(web_row).to_contain_text("edge")
    ui.shot("services")
    # Keyboard: "/" jumps to the search box; typing filters the list.
    page.keyboard.press("/")
    page.keyboard.type("internal")
    expect(table.get_by_role("link")).to_have_text(["api"])
    page.get_by_label("Search services").fill("")
    page.get_by_role("link", name="web", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + "/ui/dc1/services/web")
    instance = page.locator("[data-instance=web-1]")
    expect(instance).to_contain_text("ui-dev")
    expect(instance).to_contain_text("8081")
    expect(instance).to_contain_text("frontend")
    expect(instance.locator("[data-check=web-1-ttl]")).to_contain_text("served 1")
    ui.shot("service")


def test_a_check_turns_critical_live(ui: Page, base: str) -> None:
    register(base, {"Name": "pay", "Port": 7000, "Check": {"CheckID": "pay-ttl", "TTL": "2s"}})
    status, _ = api(base, "PUT", "/v1/agent/check/pass/pay-ttl?note=all%20good")
    assert status == 200
    page = ui.open("/ui/dc1/services/pay")
    check = page.locator("[data-check=pay-ttl]")
    expect(check).to_contain_text("passing")
    page.evaluate("window.__sameDocument = true")
    # Nobody passes the TTL again: the agent marks it critical and the page follows.
    expect(check).to_contain_text("critical", timeout=LIVE)
    expect(check).to_contain_text("TTL expired")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


def test_kv_create_edit_delete_key_and_folder(ui: Page, base: str) -> None:
    page = ui.open("/ui/dc1/kv/")
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Key or folder name").fill("app/")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(base + "/ui/dc1/kv/app/")
    assert api(base, "GET", "/v1/kv/app/")[0] == 200
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Key or folder name").fill("greeting")
    page.get_by_label("Value").fill("hello")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="greeting")).to_be_visible()
    status, raw = api(base, "GET", "/v1/kv/app/greeting?raw")
    assert (status, raw) == (200, "hello")
    ui.shot("kv")
    page.get_by_role("link", name="greeting").click()
    value = page.get_by_label("Value")
    expect(value).to_have_value("hello")
    value.fill('{"hello": "world"}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert api(base, "GET", "/v1/kv/app/greeting?raw") == (200, {"hello": "world"})
    ui.shot("kv-edit")
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(base + "/ui/dc1/kv/app/")
    assert api(base, "GET", "/v1/kv/app/greeting")[0] == 404
    # A folder with a key in it goes with everything under it.
    api(base, "PUT", "/v1/kv/app/inner/x", raw=b"1")
    page = ui.open("/ui/dc1/kv/")
    page.get_by_role("button", name="Delete app/").click()
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    assert api(base, "GET", "/v1/kv/app/?recurse")[0] == 404


def tab_to(page: Any, text: str) -> None:
    """Press Tab until the focused element reads `text` (it must be reachable by keyboard)."""
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab")


def test_keyboard_only_key_creation_and_a_live_list(ui: Page, base: str) -> None:
    page = ui.open("/ui/dc1/kv/")
    tab_to(page, "Create")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Key or folder name")).to_be_focused()
    page.keyboard.type("typed-key")
    page.keyboard.press("Tab")
    page.keyboard.type("typed by keyboard")
    tab_to(page, "Save")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="typed-key")).to_be_visible()
    assert api(base, "GET", "/v1/kv/typed-key?raw") == (200, "typed by keyboard")
    # A list follows the catalog without a reload (blocking query).
    page = ui.open("/ui/dc1/services")
    expect(page.get_by_role("link", name="consul", exact=True)).to_be_visible()
    register(base, {"Name": "late-arrival", "Port": 4000})
    expect(page.get_by_role("link", name="late-arrival")).to_be_visible(timeout=LIVE)
    api(base, "DELETE", "/v1/kv/typed-key")


def test_a_refused_key_shows_the_api_error_and_changes_nothing(ui: Page, base: str) -> None:
    page = ui.open("/ui/dc1/kv/create")
    page.get_by_label("Key or folder name").fill("bad/key ")
    page.get_by_label("Value").fill("x")
    page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("400")
    expect(alert).to_contain_text('Invalid key name "bad/key ": leading or trailing whitespace')
    expect(page).to_have_url(base + "/ui/dc1/kv/create")
    assert api(base, "GET", "/v1/kv/bad/?recurse")[0] == 404


def test_invalid_config_entry_json_shows_the_api_error(ui: Page, base: str) -> None:
    page = ui.open("/ui/dc1/config")
    editor = page.get_by_label("Entry (JSON)")
    editor.fill('{"Kind": "service-defaults", "Name": "web", "Protocol": "http",')
    page.get_by_role("button", name="Write").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The agent answered 400 for PUT /v1/config")
    assert api(base, "GET", "/v1/config/service-defaults/web")[0] == 404
    editor.fill('{"Kind": "service-defaults", "Name": "web", "Protocol": "http"}')
    page.get_by_role("button", name="Write").click()
    expect(page.get_by_role("status")).to_have_text("Written.")
    expect(alert).to_be_empty()
    status, entry = api(base, "GET", "/v1/config/service-defaults/web")
    assert status == 200 and entry["Protocol"] == "http"
    ui.shot("config")


def test_intentions_create_check_edit_delete(ui: Page, base: str) -> None:
    page = ui.open("/ui/dc1/intentions")
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_label("Action").select_option("deny")
    page.get_by_label("Description").fill("no calls")
    page.get_by_role("button", name="Save").click()
    table = page.get_by_role("table", name="Intentions")
    expect(table).to_contain_text("deny")
    expect(table).to_contain_text("9")  # exact -> exact precedence
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#check-result")).to_have_text("Denied")
    ui.shot("intentions")
    # Edit into an L7 intention with HTTP permissions.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("L7: HTTP permissions").check()
    perms = page.get_by_label("Permissions", exact=True)
    perms.fill('[{"Action": "allow", "HTTP": {"PathPrefix": "/v1"}}]')
    page.get_by_role("button", name="Save").click()
    expect(table).to_contain_text("L7: 1 permission(s)")
    status, ixn = api(base, "GET", "/v1/connect/intentions/exact?source=web&destination=api")
    assert status == 200 and ixn["Permissions"][0]["HTTP"]["PathPrefix"] == "/v1"
    # An L7 permission the API refuses: its error is shown, the stored one stays.
    page.get_by_role("link", name="Edit").click()
    perms.fill('[{"Action": "allow", "HTTP": {"PathPrefix": "no-slash"}}]')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("400")
    assert api(base, "GET", "/v1/connect/intentions/exact?source=web&destination=api")[1] == ixn
    page = ui.open("/ui/dc1/intentions")
    page.get_by_role("button", name="Delete web to api").click()
    expect(page.get_by_text("No intentions.")).to_be_visible()


def test_nodes_node_lock_sessions_and_cluster(ui: Page, base: str) -> None:
    status, session = api(base, "PUT", "/v1/session/create", {"Name": "deploy-lock"})
    assert status == 200
    sid = session["ID"]
    status, ok = api(base, "PUT", f"/v1/kv/locks/deploy?acquire={sid}", raw=b"owner")
    assert (status, ok) == (200, True)
    page = ui.open("/ui/dc1/nodes")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="ui-dev"))
    expect(row).to_contain_text("leader")
    expect(row).to_contain_text("passing")  # serfHealth, web's TTLs
    expect(row).to_contain_text("1 critical")  # pay's lapsed TTL
    ui.shot("nodes")
    page.get_by_role("link", name="ui-dev").click()
    expect(page.locator("#node")).to_contain_text("Serf Health Status")
    expect(page.locator("#sessions")).to_contain_text(sid)
    ui.shot("node")
    page = ui.open("/ui/dc1/kv/locks/deploy/edit")
    expect(page.locator("#kv-lock")).to_contain_text(f"Held by session {sid} on node ui-dev")
    page = ui.open("/ui/dc1/nodes/ui-dev")
    page.locator("#sessions").get_by_role("button", name="Destroy").click()
    expect(page.locator("#sessions")).to_contain_text("No sessions on this node.", timeout=LIVE)
    status, pair = api(base, "GET", "/v1/kv/locks/deploy")
    assert status == 200 and "Session" not in pair[0]
    page = ui.open("/ui/dc1/overview")
    expect(page.locator("#servers")).to_contain_text("leader")
    expect(page.locator("#autopilot")).to_contain_text("healthy")
    expect(page.locator("#raft")).to_contain_text("Leader")
    expect(page.locator("#members")).to_contain_text("alive")
    ui.shot("cluster")


def test_no_leader_is_said_in_words(browser: Any, tmp_path: Any) -> None:
    # A server waiting for two more servers that never come: it never has a leader.
    lonely = AgentProcess(
        "-server",
        "-bootstrap-expect=3",
        "-ui",
        "-node=lonely",
        f"-data-dir={tmp_path}",
        "-bind=127.0.0.1",
        "-client=127.0.0.1",
        "-http-port=0",
        "-dns-port=-1",
        "-grpc-port=-1",
        "-serf-lan-port=0",
        "-serf-wan-port=-1",
        "-server-port=0",
    ).start()
    try:
        ui = Page(browser, f"http://{lonely.http_addr}")
        page = ui.open("/ui/dc1/services")
        expect(page.get_by_role("alert")).to_contain_text(
            "No leader: the servers have not elected a leader", timeout=LIVE
        )
        ui.close()
    finally:
        lonely.kill()


def test_first_paint_of_1000_services(
    ui: Page, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = []
    for i in range(1000):
        name = f"bulk-{i:04d}"
        row = {"ID": name, "Service": name, "Port": 10000 + i, "Tags": ["bulk"]}
        ops.append({"Service": {"Verb": "set", "Node": "ui-dev", "Service": row}})
    for start in range(0, len(ops), 64):
        status, out = api(base, "PUT", "/v1/txn", ops[start : start + 64])
        assert status == 200, out
    page = ui.open("/ui/dc1/services")
    expect(page.locator("#service-count")).to_contain_text("of 10", timeout=LIVE)
    expect(page.get_by_role("link", name="bulk-0999")).to_be_visible()
    timing = page.evaluate("""() => {
        const nav = performance.getEntriesByType("navigation")[0];
        const fcp = performance.getEntriesByName("first-contentful-paint")[0];
        const drawn = performance.getEntriesByName("consulpy:services-drawn")[0];
        const rows = document.querySelectorAll("#services tbody tr").length;
        return {fcp: fcp ? fcp.startTime : null, drawn: drawn ? drawn.startTime : null,
                load: nav.loadEventEnd, rows};
    }""")
    assert timing["rows"] >= 1000 and timing["drawn"] is not None
    with capsys.disabled():
        print(
            f"\nservices page with {timing['rows']} services: first contentful paint "
            f"{timing['fcp']:.0f} ms, list drawn {timing['drawn']:.0f} ms after navigation start"
        )
