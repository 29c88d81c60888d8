"""The web UI: static files shipped as package data and the handlers that serve them."""
