"""The workspaces service: workspaces, members and roles, the unit of isolation."""
