"""``python -m djpeer.seed``: create the tables, one user, workspace, membership and API key.

Prints ``{"key", "workspace_id"}``.
"""

import json
import os
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djpeer.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from djpeer.models import Membership, Workspace, WorkspaceAPIKey  # noqa: E402

call_command("migrate", verbosity=0)
user = User.objects.create_user(f"peer-{uuid.uuid4().hex[:8]}", password=None)
workspace = Workspace.objects.create(
    id=uuid.uuid4().hex,
    display_name="Benchmark",
    plan="PLAN_FREE",
    retention_days=30,
    state="WORKSPACE_STATE_ACTIVE",
    create_time="2024-01-01T00:00:00Z",
    update_time="2024-01-01T00:00:00Z",
)
Membership.objects.create(workspace=workspace, user=user, role="ROLE_ADMIN")
_, key = WorkspaceAPIKey.objects.create_key(name="bench", workspace=workspace)
print(json.dumps({"key": key, "workspace_id": workspace.id}), flush=True)
