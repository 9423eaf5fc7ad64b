"""A small HTTP client for the end-to-end tests: one cookie jar per simulated user."""
from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def error_messages(self) -> list[str]:
        return [e["message"] for e in self.json()["errors"]]


class Client:
    def __init__(self, base_url: str, session: str | None = None):
        self.base_url = base_url
        # A session token to send as the `session` cookie (users made without signing up).
        self.session = session
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, body=None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
        data = raw
        hdrs = dict(headers or {})
        if self.session and "cookie" not in {k.lower() for k in hdrs}:
            hdrs["cookie"] = f"session={self.session}"
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("content-type", "application/json")
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=timeout) as res:
                return Reply(res.status, {k.lower(): v for k, v in res.headers.items()}, res.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Reply:
        return self.request("POST", path, body=body, **kw)

    def put(self, path: str, body=None, **kw) -> Reply:
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path: str, **kw) -> Reply:
        return self.request("DELETE", path, **kw)
