"""GET /v1/workspaces/{id} for the workspace an API key belongs to, as the library's docs show."""

from django.http import Http404
from djpeer.models import Workspace, WorkspaceAPIKey
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import BaseHasAPIKey


class HasWorkspaceAPIKey(BaseHasAPIKey):
    model = WorkspaceAPIKey


class WorkspaceView(APIView):
    permission_classes = [HasWorkspaceAPIKey]

    def get(self, request: Request, workspace_id: str) -> Response:
        key = request.META["HTTP_X_API_KEY"]
        api_key = WorkspaceAPIKey.objects.get_from_key(key)
        if api_key.workspace_id != workspace_id:
            raise Http404
        workspace = Workspace.objects.get(id=workspace_id)
        return Response(
            {
                "name": f"workspaces/{workspace.id}",
                "displayName": workspace.display_name,
                "plan": workspace.plan,
                "retentionDays": workspace.retention_days,
                "state": workspace.state,
                "createTime": workspace.create_time,
                "updateTime": workspace.update_time,
                "callerRole": "ROLE_ADMIN",
            }
        )
