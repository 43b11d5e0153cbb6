"""Use cases of the credentials service: fetch → check → act → commit, primitives in and out.

One module per capability — ``credentials``, ``webhooks`` (triggers), ``deliveries``,
``rewrap`` (key rotation), ``retention`` (the purge job) — over the lifecycle they share
(``lifecycle``) and the ports they depend on (``credentials_service.ports``); never an adapter.

Values are encrypted *before* the transaction that stores them, so a key-manager failure leaves
no row behind (fail closed). Roles are enforced by each RPC's access rule (the edge, and the
runtime's caller-identity interceptor as defence in depth); workspace isolation is enforced here:
every query is scoped to the workspace the caller was authorised for.

**Audit (DESIGN R16).** Every committed mutation records one event in the service's outbox in the
same transaction: ``credential.create|update|delete|undelete|use|purge`` and
``webhookTrigger.create|rotateToken|delete|deliver|purge``. An idempotent retry records nothing.
No event carries a value, a token, a ciphertext, a hash or a mask.

**Retention.** A deleted credential can be restored until its ``purge_at`` (``retention_days``
after the delete); a deleted trigger is kept as long. :class:`CredentialsRetention` then destroys
the secret material and keeps a tombstone. A purged item is NOT_FOUND with reason
``CREDENTIAL_PURGED`` / ``WEBHOOK_TRIGGER_PURGED`` to the members of its workspace (the only
callers who can name it) and can never be restored; a delivery to a purged trigger gets the one
``WEBHOOK_TRIGGER_NOT_FOUND`` answer like any bad token.

**Workspace life.** Every use case that acts in a workspace first asks the gate (what this
service has heard from the workspaces service, see ``servicekit.lifecycle``): once the workspace
is deleted it answers FAILED_PRECONDITION ``WORKSPACE_DELETED`` (NOT_FOUND
``WORKSPACE_NOT_FOUND`` once purged), ``UseCredential`` included. A delivery to a trigger of a
deleted or purged workspace gets the one ``WEBHOOK_TRIGGER_NOT_FOUND`` answer of an unknown
trigger, so the public hook route tells a caller nothing more than a wrong URL would.
"""

from credentials_service.usecases.common import Actor, AuditTrail, Deps
from credentials_service.usecases.credentials import UPDATABLE_FIELDS, CredentialUseCases
from credentials_service.usecases.deliveries import DeliveryUseCases
from credentials_service.usecases.retention import CredentialsRetention
from credentials_service.usecases.rewrap import KeyRotation, Progress, RewrapReport
from credentials_service.usecases.webhooks import WebhookTriggerUseCases

__all__ = [
    "UPDATABLE_FIELDS",
    "Actor",
    "AuditTrail",
    "CredentialUseCases",
    "CredentialsRetention",
    "DeliveryUseCases",
    "Deps",
    "KeyRotation",
    "Progress",
    "RewrapReport",
    "WebhookTriggerUseCases",
]
