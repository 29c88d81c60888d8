"""Two tiny HTTP services for the dev cluster: `api`, and `web` which calls `api` through its
Envoy sidecar. Run them with `consulpy demo api|web` (see consulpy/cli/demo.py)."""

from consulpy.demo.apps import api_app, serve, web_app

__all__ = ["api_app", "serve", "web_app"]
