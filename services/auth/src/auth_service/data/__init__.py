"""Data files shipped with the auth service."""
