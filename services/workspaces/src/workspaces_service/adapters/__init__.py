"""Adapters of the workspaces service: tables, the unit of work, and the user directory client."""
