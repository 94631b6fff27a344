"""The package version, in one place (read by the front door and written into network files)."""

__version__ = "0.1.0"
