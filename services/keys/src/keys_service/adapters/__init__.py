"""Adapters of the keys service: tables, the unit of work, and the clients of the outside world."""
