"""Auth adapters: tables, unit of work, argon2, sealing, JWT signing, the password blocklist."""
