"""The package version, read by hatchling and by ``tideflow version``."""

__version__ = "0.1.0"
