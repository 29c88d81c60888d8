"""Serving the web UI under `ui_config.content_path` (default `/ui/`), as Consul does.

A path naming a file under the UI directory (the packaged assets, or `ui_config.dir`) gets
that file; any other path gets `index.html` with the agent's settings filled in, so the
browser's own router can show the screen the path names (deep links and reloads work).
`GET /` redirects to the UI. The settings are read once at start, like Consul's.
"""

from __future__ import annotations

import html
import json
import mimetypes
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from consulpy.config.model import AgentConfig

ASSETS = Path(str(resources.files("consulpy.ui") / "assets"))
# index.html placeholders: the settings JSON and the content path (for <base href>).
SETTINGS_MARK = "__CONSULPY_UI_SETTINGS__"
BASE_MARK = "__CONSULPY_UI_BASE__"
ROBOTS = "User-agent: *\nDisallow: /\n"
# Settings the browser may see: never the metrics proxy's headers (they may hold secrets).
MIME = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


def enabled(config: AgentConfig) -> bool:
    return config.ui_config.enabled or bool(config.ui_config.dir)


def settings(config: AgentConfig) -> dict[str, Any]:
    ui = config.ui_config
    return {
        "ContentPath": ui.content_path,
        "ACLsEnabled": config.acl.enabled,
        "LocalDatacenter": config.datacenter,
        "UIConfig": {
            "metrics_provider": ui.metrics_provider or "",
            "metrics_proxy_enabled": bool(ui.metrics_proxy.get("base_url")),
            "dashboard_url_templates": dict(ui.dashboard_url_templates),
            "metrics_provider_options": dict(ui.metrics_provider_options),
        },
    }


class UIFiles:
    """The files of one UI directory and the rendered index page."""

    def __init__(self, config: AgentConfig) -> None:
        self.root = Path(config.ui_config.dir).resolve() if config.ui_config.dir else ASSETS
        self.content_path = config.ui_config.content_path
        index = (self.root / "index.html").read_text(encoding="utf-8")
        blob = json.dumps(settings(config)).replace("<", "\\u003c")
        self.index = index.replace(SETTINGS_MARK, blob).replace(
            BASE_MARK, html.escape(self.content_path, quote=True)
        )

    def file(self, rel: str) -> Path | None:
        """The file `rel` names under the root; None for anything else (folders, paths that
        would leave the root, missing files)."""
        if not rel or "\x00" in rel:
            return None
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    async def handle(self, req: web.Request) -> web.StreamResponse:
        if req.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        rel = req.path[len(self.content_path) :] if req.path.startswith(self.content_path) else ""
        path = self.file(rel)
        if path is None or path.name == "index.html":
            return web.Response(
                text=self.index,
                content_type="text/html",
                headers={"Cache-Control": "no-store"},
            )
        ctype = MIME.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        return web.FileResponse(path, headers={"Content-Type": ctype or "application/octet-stream"})


def routes(config: AgentConfig) -> list[web.RouteDef]:
    """The UI's routes when the UI is on (none when off: `/` then says it is disabled)."""
    if not enabled(config):
        return []
    files = UIFiles(config)
    content_path = config.ui_config.content_path

    async def root(_req: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(content_path)

    async def robots(_req: web.Request) -> web.StreamResponse:
        return web.Response(text=ROBOTS)

    # content_path is never "/" (the builder turns it into "/ui/", as Consul does).
    return [
        web.get("/", root),
        web.get("/robots.txt", robots),
        web.route("*", content_path.rstrip("/"), files.handle),
        web.route("*", content_path + "{tail:.*}", files.handle),
    ]
