"""Shared test settings: the package is imported from the source root."""
