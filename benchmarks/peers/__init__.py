"""The peers a user would pick instead of Railguard, run in their own venv (``.venv-peers``).

Each peer serves the benchmark's request — ``GET /v1/workspaces/{id}`` for an authenticated
caller, answering a ~250-byte JSON document — the way its library's documentation shows, on the
same TLS certificate and the same database server as Railguard in the same run:

- ``fastapi_peer``: FastAPI + fastapi-users (JWT strategy, SQLAlchemy async user database), the
  workspace and the caller's membership read per request; under uvicorn, either plain (asyncio +
  h11) or ``uvicorn[standard]`` (uvloop + httptools).
- ``djpeer``: Django + Django REST framework + djangorestframework-api-key (the key checked by its
  permission class, then looked up for its workspace), under gunicorn ``gthread`` 5 workers x 2
  threads.

Nothing here is imported by Railguard's own code: the benchmark driver starts these as processes.
"""
