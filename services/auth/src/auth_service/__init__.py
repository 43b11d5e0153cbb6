"""The auth service: users, passwords, sessions, refresh tokens and access-token signing keys."""
