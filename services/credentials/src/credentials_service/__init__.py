"""The credentials service: the credential vault and webhook triggers (encrypted at rest)."""
