"""Use cases of the keys service: fetch → check → act → commit, primitives in and out.

Who may do what (DESIGN §4 role table, decided here):

* Every caller needs at least the User role in the workspace (the edge resolved it into the
  principal; the interceptor checks it again). A caller that is an API key acts as its creator,
  with that creator's current role, and is further bounded by its own scopes.
* **Visibility.** A User sees, updates, rotates, revokes, deletes and restores only the keys it
  created; an Admin or Owner every key of the workspace. A key the caller may not see is
  NOT_FOUND, exactly like a missing one or another workspace's.
* **Scope ceiling.** A new key's scopes must lie within the caller's role rights (derived from the
  access rules, :class:`~keys_service.domain.ScopePolicy`) and, for an API-key caller, within its
  own scopes. Changing another user's key's scopes also keeps them within that creator's rights.
* **Grant rule** (``domain.grant``): no caller obtains a key wider than itself. Create and
  rotate check every facet (role, scopes, CIDRs, origins, expiry, environment, assurance)
  against the caller's rights; update checks the facets it changes. A calling API key's
  restrictions are read from this service's table. Rotation re-binds the key to the rotator.
* **Mutations** are refused while the workspace is deleted (FAILED_PRECONDITION,
  ``WORKSPACE_DELETED``); revoked, expired and deleted keys cannot be updated.
* After each committed change that can make a cached verification stale (update, revoke, rotate,
  delete, undelete) an invalidation is published, so every edge drops the key within a second.

Verify parses the key offline first (format + checksum) and only then reads the database; the
workspaces service is asked about the workspace (cached ≤ 1 s) only for a key that authenticated.

**Audit (DESIGN R16).** Every committed mutation records one event (``apiKey.create``, ``.update``,
``.revoke``, ``.rotate``, ``.delete``, ``.undelete``, ``.purge``) in the service's outbox inside
the same transaction; a no-op (an idempotent retry, revoking a revoked key) records nothing.
Verify writes nothing for a success (that would be a write per request); a refusal of a *known*
key (revoked, expired, rotated-out, deleted, workspace deleted, IP, origin, scope) records one
``apiKey.verify`` event with outcome DENIED, at most once per key and reason per minute
(``servicekit.throttle.AuditThrottle``, in memory, per replica). No event carries a key, a digest or a prefix.

**Retention.** A deleted key can be restored for ``retention`` (30 days by default); then

**The package.** One class per capability, each a :class:`KeysCore` (the shared collaborators and
checks, ``core.py``) with only its own use cases; :class:`KeysService` is all of them on one set of
collaborators, which is what the servicer and the composition root hold:

- :class:`KeyIssuing` (``issue.py``): create;
- :class:`KeyReads` (``reads.py``): get, list, the scope catalogue;
- :class:`KeyUpdates` (``update.py``): update;
- :class:`KeyLifecycle` (``lifecycle.py``): revoke, rotate, delete, undelete;
- :class:`KeyVerification` (``verify.py``): verify, with the audited denials of ``denials.py``;
- :class:`KeysRetention` (``retention.py``): the purge job;
- :class:`AllowedOrigins` (``origins.py``): the origins of the edge's CORS preflight.

The ports they depend on are in :mod:`keys_service.ports` (re-exported here for the adapters).
"""

from __future__ import annotations

from keys_service.ports import (
    AuditOutboxPort,
    InvalidationPublisher,
    KeyEvent,
    KeyListing,
    KeyRepository,
    KeysUnitOfWork,
    UsageRecorder,
    WorkspaceDirectory,
    WorkspaceStatus,
)
from keys_service.usecases.common import (
    DEFAULT_RETENTION,
    LAST_USED_RESOLUTION,
    UPDATABLE_FIELDS,
    Actor,
    KeyView,
)
from keys_service.usecases.core import KeysCore, KeysDeps
from keys_service.usecases.issue import KeyIssuing
from keys_service.usecases.lifecycle import KeyLifecycle
from keys_service.usecases.origins import AllowedOrigins
from keys_service.usecases.reads import KeyReads
from keys_service.usecases.retention import KeysRetention
from keys_service.usecases.update import KeyUpdates
from keys_service.usecases.verify import KeyVerification

__all__ = [
    "DEFAULT_RETENTION",
    "LAST_USED_RESOLUTION",
    "UPDATABLE_FIELDS",
    "Actor",
    "AllowedOrigins",
    "AuditOutboxPort",
    "InvalidationPublisher",
    "KeyEvent",
    "KeyIssuing",
    "KeyLifecycle",
    "KeyListing",
    "KeyReads",
    "KeyRepository",
    "KeyUpdates",
    "KeyVerification",
    "KeyView",
    "KeysCore",
    "KeysDeps",
    "KeysRetention",
    "KeysService",
    "KeysUnitOfWork",
    "UsageRecorder",
    "WorkspaceDirectory",
    "WorkspaceStatus",
]


class KeysService(KeyIssuing, KeyReads, KeyUpdates, KeyLifecycle, KeyVerification):
    """Every use case of the keys service on one set of collaborators (see :class:`KeysCore`)."""
