"""`ui_config.metrics_provider = "prometheus"` with the metrics proxy: a service's screen shows
its sidecar's traffic, read from Prometheus through /v1/internal/ui/metrics-proxy/, and the
page receives `metrics_provider_options_json`. A fake Prometheus on 127.0.0.1 answers by
metric name and records the queries; a real agent process and Chromium."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cli.agentproc import AgentProcess
from tests.ui.browser import LIVE, Page, api, chromium
from tests.ui.test_browser_dev import FLAGS

expect: Any = pytest.importorskip("playwright.sync_api").expect

# metric name in the query -> value Prometheus answers (first match: the error ratio's query
# names rq_xx and rq_total)
VALUES = {
    "envoy_http_downstream_rq_xx": "0.4",
    "envoy_http_downstream_rq_time_bucket": "87.4",
    "envoy_http_downstream_rq_total": "12.5",
}


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query).get("query", [""])[0]
            seen.append(f"{parts.path} {query}")
            name = next((n for n in VALUES if n in query), None)
            result = [{"metric": {}, "value": [0, VALUES[name]]}] if name else []
            body = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_service_metrics_from_prometheus(prometheus: tuple[str, list[str]], tmp_path: Path) -> None:
    url, seen = prometheus
    config = tmp_path / "ui.hcl"
    config.write_text(
        "ui_config {\n"
        '  metrics_provider = "prometheus"\n'
        '  metrics_provider_options_json = "{\\"legend\\": \\"on\\"}"\n'
        f'  metrics_proxy {{ base_url = "{url}" }}\n'
        "}\n"
    )
    proc = AgentProcess(*FLAGS, f"-config-file={config}").start()
    base = f"http://{proc.http_addr}"
    try:
        status, out = api(base, "PUT", "/v1/agent/service/register", {"Name": "web", "Port": 80})
        assert status == 200, out
        with chromium() as browser:
            ui = Page(browser, base)
            page = ui.open("/ui/dc1/services/web")
            panel = page.locator("#service-metrics")
            expect(panel).to_contain_text("12.50", timeout=LIVE)  # requests per second
            expect(panel).to_contain_text("0.4 %")
            expect(panel).to_contain_text("87 ms")
            expect(panel).to_contain_text("no data")  # no TCP bytes series
            blob = page.evaluate(
                "JSON.parse(document.getElementById('consulpy-settings').textContent)"
            )
            ui.close()
        assert blob["UIConfig"]["metrics_provider"] == "prometheus"
        assert blob["UIConfig"]["metrics_provider_options"] == {"legend": "on"}
        assert any(
            s.startswith("/api/v1/query ") and 'consul_source_service="web"' in s for s in seen
        ), seen
    finally:
        proc.kill()
