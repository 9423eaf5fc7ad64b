"""Sessions minted with a lattice's own key: HS256 JWTs like auth issues, for the tests
and the fault drill (signing up hashes a password, which is slow)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

from .secret_store import values
from .settings import Profile


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict, key: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def mint(profile: Profile, user_id: str | None = None, email: str | None = None) -> str:
    """A one-hour session for a user (a fresh one unless given), signed with the
    lattice's `jwt_key`."""
    key = values(profile)["jwt_key"]
    now = int(time.time())
    claims = {"id": user_id or uuid.uuid4().hex[:24], "email": email or f"user-{uuid.uuid4().hex[:12]}@test.com",
              "iat": now, "exp": now + 3600}
    return sign(claims, key)
