"""The ``railguard`` command: user commands over the SDK, operator commands under ``admin``."""
