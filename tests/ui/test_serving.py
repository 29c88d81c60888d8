"""Serving the UI: on with -dev (and -ui), off otherwise; `/` redirects to it; deep links get
index.html with the agent's settings; files come from the package or `ui_config.dir`; paths
cannot leave the UI directory; `content_path` moves it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from consulpy.testing import DevAgent


async def fetch(dev: DevAgent, path: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session:
        url = URL(dev.url + path, encoded=True)  # as sent: no client-side dot removal
        async with session.get(url, allow_redirects=False) as resp:
            return resp.status, dict(resp.headers), await resp.text()


def settings_of(page: str) -> dict[str, Any]:
    match = re.search(r'id="consulpy-settings" type="application/json">(.*?)</script>', page)
    assert match, page
    return json.loads(match.group(1))


async def test_dev_agent_serves_the_ui_and_redirects_root() -> None:
    config = {"http_config": {"response_headers": {"X-Frame-Options": "DENY"}}}
    async with DevAgent(config=config) as dev:
        status, headers, _ = await fetch(dev, "/")
        assert status == 301 and headers["Location"] == "/ui/"
        status, headers, page = await fetch(dev, "/ui/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert headers["X-Frame-Options"] == "DENY"
        assert '<base href="/ui/">' in page
        assert settings_of(page) == {
            "ContentPath": "/ui/",
            "ACLsEnabled": False,
            "LocalDatacenter": "dc1",
            "UIConfig": {
                "metrics_provider": "",
                "metrics_proxy_enabled": False,
                "dashboard_url_templates": {},
                "metrics_provider_options": {},
            },
        }
        status, _, deep = await fetch(dev, "/ui/dc1/services/web")  # client-side route
        assert status == 200 and deep == page
        status, headers, js = await fetch(dev, "/ui/js/app.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert "import" in js
        status, headers, _ = await fetch(dev, "/ui/app.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        status, _, robots = await fetch(dev, "/robots.txt")
        assert status == 200 and "Disallow: /" in robots
        # An escaped ../ is a route like any other: index.html, never a file outside.
        status, _, body = await fetch(dev, "/ui/%2e%2e/%2e%2e/serve.py")
        assert status == 200 and body == page


async def test_ui_off_says_so_at_root() -> None:
    async with DevAgent(config={"ui_config": {"enabled": False}}) as dev:
        status, _, text = await fetch(dev, "/")
        assert status == 200
        assert text.startswith("Consul Agent: UI disabled. To enable, set ui_config.enabled=true")
        status, _, _ = await fetch(dev, "/ui/")
        assert status == 404


async def test_content_path_and_dir(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        '<base href="__CONSULPY_UI_BASE__"><script>__CONSULPY_UI_SETTINGS__</script>'
    )
    (tmp_path / "own.txt").write_text("mine")
    config = {
        "ui_config": {
            "enabled": False,
            "dir": str(tmp_path),
            "content_path": "/console",
            "dashboard_url_templates": {
                "service": "https://grafana.example/d?var={{Service.Name}}"
            },
        }
    }
    async with DevAgent(config=config) as dev:
        status, headers, _ = await fetch(dev, "/")
        assert status == 301 and headers["Location"] == "/console/"
        status, _, page = await fetch(dev, "/console/dc1/kv/")
        assert status == 200 and page.startswith('<base href="/console/">')
        blob = json.loads(page.split("<script>")[1].split("</script>")[0])
        assert blob["ContentPath"] == "/console/"
        assert blob["UIConfig"]["dashboard_url_templates"] == {
            "service": "https://grafana.example/d?var={{Service.Name}}"
        }
        status, _, text = await fetch(dev, "/console/own.txt")
        assert (status, text) == (200, "mine")
        status, _, _ = await fetch(dev, "/ui/")
        assert status == 404


@pytest.mark.slow
def test_the_ui_ships_in_the_wheel(tmp_path: Path) -> None:
    """pip builds the package with every UI file (package data; no Node toolchain)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "configs", src / "configs", ignore=ignore)
    shutil.copytree(root / "consulpy", src / "consulpy", symlinks=True, ignore=ignore)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(tmp_path.glob("consulpy-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = root / "consulpy" / "ui" / "assets"
    wanted = {
        "consulpy/ui/assets/" + p.relative_to(assets).as_posix()
        for p in assets.rglob("*")
        if p.is_file()
    }
    assert wanted and wanted <= names, sorted(wanted - names)
