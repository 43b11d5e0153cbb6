from django.urls import path
from djpeer.views import WorkspaceView

urlpatterns = [path("v1/workspaces/<str:workspace_id>", WorkspaceView.as_view())]
