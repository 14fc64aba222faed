"""The store contract suite uses the per-backend fixtures of ``tests/conftest.py``."""
