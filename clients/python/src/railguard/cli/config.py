r"""Where the CLI keeps the signed-in session: ``$XDG_CONFIG_HOME/railguard/session.json`` (0600).

Without ``XDG_CONFIG_HOME`` the folder is ``~/.config/railguard`` (``%APPDATA%\\railguard`` on
Windows). The file holds the edge URL, the CA file, the email and the token pair; it is written
atomically and is never readable by group or others.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from railguard.session import Tokens

__all__ = ["SESSION_FILE", "StoredSession", "config_dir", "load_session", "save_session"]

SESSION_FILE = "session.json"


def config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "railguard"
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "railguard"
    return Path.home() / ".config" / "railguard"


@dataclass(frozen=True, slots=True)
class StoredSession:
    url: str
    ca_file: str
    email: str
    tokens: Tokens | None


def session_path() -> Path:
    return config_dir() / SESSION_FILE


def load_session() -> StoredSession | None:
    path = session_path()
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    tokens = data.get("tokens")
    return StoredSession(
        url=str(data.get("url", "")),
        ca_file=str(data.get("ca_file", "")),
        email=str(data.get("email", "")),
        tokens=Tokens.from_json(tokens) if isinstance(tokens, dict) else None,
    )


def save_session(session: StoredSession) -> Path:
    """Write atomically: a 0600 temporary file in the same folder, then rename over the old."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / SESSION_FILE
    tmp = folder / f".{SESSION_FILE}.{os.getpid()}.tmp"
    data = {
        "url": session.url,
        "ca_file": session.ca_file,
        "email": session.email,
        "tokens": session.tokens.to_json() if session.tokens else None,
    }
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing temp file keeps its mode otherwise
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def delete_session() -> bool:
    try:
        session_path().unlink()
    except FileNotFoundError:
        return False
    return True
