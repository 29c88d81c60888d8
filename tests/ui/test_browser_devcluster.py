"""The web UI of the docker-free dev cluster (`consulpy dev-cluster up`: three servers, two
clients, web and api with real Envoy sidecars, ACLs default deny), in a real Chromium:
logging in with a token and seeing only what it may read (and a 403 naming the missing
permission), the ACL screens as the management token, and a deny intention created in the
UI making api's Envoy reject web's calls.

One cluster and one browser for the module; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consulpy.devcluster import procs
from consulpy.devcluster import topology as topo
from tests.cluster.harness import eventually
from tests.ui.browser import LIVE, Page, api, chromium

expect: Any = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MGMT = topo.MANAGEMENT_TOKEN


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL")}
    # The cluster's agents (children of `dev-cluster up`) run this tree's consulpy, installed
    # or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "consulpy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


class Cluster:
    def __init__(self, data: Path) -> None:
        self.data = data

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.data / "cluster.json").read_text())

    def url(self, name: str, key: str = "http") -> str:
        return f"http://127.0.0.1:{self.state['ports'][name][key]}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("ui-devcluster") / "dev"
    up = run(
        "dev-cluster", "up", f"-data-dir={data}", f"-configs-dir={ROOT / 'configs'}", "-timeout=90s"
    )
    handle = Cluster(data)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield handle
    finally:
        if (data / "cluster.json").exists():
            tracked = [
                procs.Tracked(name, rec["pid"], rec.get("started"))
                for name, rec in handle.state["processes"].items()
                if rec.get("pid")
            ]
            run("dev-cluster", "down", f"-data-dir={data}", "-timeout=10s")
            for t in tracked:
                t.signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Any, cluster: Cluster) -> Iterator[Page]:
    page = Page(browser, cluster.url(topo.CLIENTS[0].name))
    yield page
    page.close()


def login(ui: Page, secret: str) -> Any:
    page = ui.open("/ui/login")
    page.get_by_label("Token (SecretID)").fill(secret)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(ui.base + "/ui/dc1/services")
    return page


def web_answer(cluster: Cluster) -> tuple[int, str]:
    status, body = api(cluster.url("web", "port"), "GET", "/")
    return status, body if isinstance(body, str) else json.dumps(body)


def test_a_token_under_default_deny_sees_only_what_it_may_read(ui: Page, cluster: Cluster) -> None:
    base = ui.base
    rules = 'service "api" { policy = "read" }\nnode_prefix "" { policy = "read" }'
    status, out = api(
        base, "PUT", "/v1/acl/policy", {"Name": "ui-api-read", "Rules": rules}, token=MGMT
    )
    assert status == 200, out
    status, token = api(
        base,
        "PUT",
        "/v1/acl/token",
        {"Description": "api reader", "Policies": [{"Name": "ui-api-read"}]},
        token=MGMT,
    )
    assert status == 200, token
    page = login(ui, token["SecretID"])
    expect(page.locator("#whoami")).to_have_text("Token: api reader")
    table = page.get_by_role("table", name="Services")
    expect(table.get_by_role("link")).to_have_text(["api"], timeout=LIVE)
    ui.shot("login-services")
    # The cluster screen needs operator:read: the 403 says so.
    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("alert")).to_contain_text("lacks permission 'operator:read'")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "/ui/login")


def test_acl_screens_as_management(ui: Page, cluster: Cluster) -> None:
    page = login(ui, MGMT)
    page.get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="Create a policy").click()
    page.get_by_label("Name", exact=True).fill("ui-kv-read")
    page.get_by_label("Description").fill("read app/ keys")
    page.get_by_label("Rules (HCL or JSON)").fill('key_prefix "app/" { policy = "read" }')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("table", name="Policies")).to_contain_text("ui-kv-read")
    ui.shot("acl-policies")
    page.get_by_role("link", name="Roles").click()
    page.get_by_role("link", name="Create a role").click()
    page.get_by_label("Name", exact=True).fill("ui-reader")
    page.get_by_label("Policies (names, comma separated)").fill("ui-kv-read")
    page.get_by_role("button", name="Save").click()
    roles = page.get_by_role("table", name="Roles")
    expect(roles).to_contain_text("ui-kv-read")
    roles.get_by_role("link", name="ui-reader").click()
    page.get_by_label("Description").fill("reads app/")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("table", name="Roles")).to_contain_text("reads app/")
    ui.shot("acl-roles")
    page.get_by_role("link", name="Tokens").click()
    page.get_by_role("link", name="Create a token").click()
    page.get_by_label("Description").fill("ui made me")
    page.get_by_label("Roles (names, comma separated)").fill("ui-reader")
    page.get_by_role("button", name="Save").click()
    tokens = page.get_by_role("table", name="Tokens")
    expect(tokens).to_contain_text("ui made me")
    ui.shot("acl-tokens")
    status, listed = api(ui.base, "GET", "/v1/acl/tokens", token=MGMT)
    assert status == 200, listed
    made = next(t for t in listed if t["Description"] == "ui made me")
    assert [r["Name"] for r in made["Roles"]] == ["ui-reader"]
    # Editing a token keeps what the form does not show (an agent token's node identity).
    agent = next(t for t in listed if t["Description"] == "agent token of consul-server-1")
    tokens.get_by_role("link", name=agent["AccessorID"]).click()
    page.get_by_label("Description").fill("agent token of consul-server-1 (edited)")
    page.get_by_role("button", name="Save").click()
    expect(tokens).to_contain_text("(edited)")
    status, after = api(ui.base, "GET", f"/v1/acl/token/{agent['AccessorID']}", token=MGMT)
    assert status == 200 and after["NodeIdentities"] == agent["NodeIdentities"], after
    assert after["SecretID"] == agent["SecretID"]
    # A policy the API refuses (bad rules): its error is shown and nothing is created.
    page.get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="Create a policy").click()
    page.get_by_label("Name", exact=True).fill("ui-broken")
    page.get_by_label("Rules (HCL or JSON)").fill('key_prefix "app/" { policy = "sideways" }')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text('Invalid key_prefix policy: {Prefix:"app/"')
    assert api(ui.base, "GET", "/v1/acl/policy/name/ui-broken", token=MGMT)[0] in (403, 404)


def test_a_deny_intention_from_the_ui_makes_envoy_reject_web_to_api(
    ui: Page, cluster: Cluster
) -> None:
    eventually(lambda: web_answer(cluster)[0] == 200, timeout=30, what="web -> api through Envoy")
    page = login(ui, MGMT)
    # The cluster as the management token sees it: three servers, one leader, every member.
    page.get_by_role("link", name="Cluster").click()
    servers = page.get_by_role("table", name="Servers")
    expect(servers.get_by_role("row")).to_have_count(4, timeout=LIVE)  # heading + 3 servers
    expect(servers).to_contain_text("leader")
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_text("alive")).to_have_count(len(topo.AGENTS), timeout=LIVE)
    ui.shot("cluster-devcluster")
    page.get_by_role("link", name="Intentions").click()
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_label("Action").select_option("deny")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("table", name="Intentions")).to_contain_text("deny")

    def denied() -> bool:
        status, body = web_answer(cluster)
        return status == 502 and "403" in body

    eventually(denied, timeout=30, what="api's Envoy rejecting web's calls")
    page.get_by_label("Source service").fill("web")
    page.get_by_label("Destination service").fill("api")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#check-result")).to_have_text("Denied")
    # The service's own screen shows web as a downstream, denied.
    page = ui.open("/ui/dc1/services/api")
    expect(page.locator("#downstreams")).to_contain_text("denied", timeout=LIVE)
    ui.shot("service-topology")
    # Allow again (with default deny, deleting would leave web denied).
    page = ui.open("/ui/dc1/intentions/edit?source=web&destination=api")
    page.get_by_label("Action").select_option("allow")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("table", name="Intentions")).to_contain_text("allow")
    eventually(lambda: web_answer(cluster)[0] == 200, timeout=30, what="web -> api allowed again")
