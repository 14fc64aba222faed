"""The HTTP side of the server: health, Prometheus metrics (and, later, the web UI and JSON API)."""
