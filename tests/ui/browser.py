"""What the browser tests share: Debian's Chromium driven by Playwright (one browser per
module), screenshots into docs/ui/, and a small JSON client for setting the scene."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go to a scratch folder, so a test run leaves the checkout clean;
# CONSULPY_UI_SHOTS=docs/ui regenerates the ones the docs show.
SHOTS = Path(os.environ.get("CONSULPY_UI_SHOTS") or tempfile.gettempdir() + "/consulpy-ui-shots")
if not SHOTS.is_absolute():
    SHOTS = ROOT / SHOTS
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Long enough for a blocking query's wake-up and a TTL to lapse on a busy 2-core machine.
LIVE = 20_000


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Chromium (Debian's binary: Playwright's own download is not reachable)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install chromium; see .ci/run)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """One browser page on one agent's UI, recording every host it talks to."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.hosts: set[str] = set()
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.hosts.add(urlsplit(r.url).hostname or r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: d.accept())  # confirm() of deletes

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)

    def close(self) -> None:
        assert not self.errors, self.errors
        # No third-party requests: only the agent itself (and data: URLs) are ever asked.
        assert self.hosts <= {"127.0.0.1", None, ""}, self.hosts
        self.context.close()


def api(
    base: str, method: str, path: str, body: Any = None, token: str = "", raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"X-Consul-Token": token} if token else {}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    try:
        return status, json.loads(out) if out else None
    except ValueError:
        return status, out.decode()
