"""Small helpers shared by several layers (Go-compatible formatting and parsing)."""
