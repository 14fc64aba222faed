"""The ``tideflow`` command (Typer + Rich)."""
