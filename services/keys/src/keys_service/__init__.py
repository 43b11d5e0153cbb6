"""Railguard keys service: API keys (keyed hash, scopes, CIDRs, origins, expiry, rotation)."""
