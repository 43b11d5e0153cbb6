"""A workspace, its members, and API keys bound to a workspace."""

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class Workspace(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    display_name = models.CharField(max_length=200)
    plan = models.CharField(max_length=32)
    retention_days = models.IntegerField()
    state = models.CharField(max_length=32)
    create_time = models.CharField(max_length=32)
    update_time = models.CharField(max_length=32)

    class Meta:
        app_label = "djpeer"


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=32)

    class Meta:
        app_label = "djpeer"
        unique_together = ("workspace", "user")


class WorkspaceAPIKey(AbstractAPIKey):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        app_label = "djpeer"
