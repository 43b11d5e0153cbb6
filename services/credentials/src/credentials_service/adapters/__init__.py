"""Adapters of the credentials service: tables, repositories, key material from settings."""
