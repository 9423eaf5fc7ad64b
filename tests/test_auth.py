"""Auth through the running lattice: reference cases 1-12 and the extra checks of §7,
then the bounds, e-mail identity and rate limits of issue 16."""
from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest

import jwt_helper
from client import Client
from helpers import eventually, unique_email
from manifests import deployed, set_config


def signup(client: Client, email: str, password: str = "password"):
    return client.post("/api/users/signup", {"email": email, "password": password})


# --- signup (cases 1-6) ----------------------------------------------------------

def test_1_signup_returns_201_with_the_user(client):
    email = unique_email()
    reply = signup(client, email)
    assert reply.status == 201
    body = reply.json()
    assert body["email"] == email
    assert set(body) == {"id", "email"}
    assert len(body["id"]) == 24


def test_2_invalid_email_is_400(client):
    reply = signup(client, "alskdflaskjfd")
    assert reply.status == 400
    assert reply.json() == {"errors": [{"message": "Email must be valid", "field": "email"}]}


def test_3_invalid_password_is_400(client):
    reply = signup(client, unique_email(), "p")
    assert reply.status == 400
    assert reply.json() == {"errors": [{"message": "Password must be between 4 and 20 characters", "field": "password"}]}


def test_4_missing_fields_are_400_each_reported(client):
    only_email = client.post("/api/users/signup", {"email": unique_email()})
    assert only_email.status == 400
    assert [e["field"] for e in only_email.json()["errors"]] == ["password"]
    only_password = client.post("/api/users/signup", {"password": "password"})
    assert only_password.status == 400
    assert [e["field"] for e in only_password.json()["errors"]] == ["email"]
    neither = client.post("/api/users/signup", {})
    assert [e["field"] for e in neither.json()["errors"]] == ["email", "password"]


def test_5_duplicate_email_is_400_email_in_use(client):
    email = unique_email()
    assert signup(client, email).status == 201
    again = signup(Client(client.base_url), email)
    assert again.status == 400
    assert again.json() == {"errors": [{"message": "Email in use"}]}


def test_6_signup_sets_a_session_cookie(client):
    reply = signup(client, unique_email())
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie, "plain HTTP: the browser would drop a Secure cookie"


def test_cookie_is_secure_behind_an_https_proxy(client):
    reply = client.post("/api/users/signup", {"email": unique_email(), "password": "password"},
                        headers={"X-Forwarded-Proto": "https"})
    assert reply.status == 201
    assert "; Secure" in reply.headers["set-cookie"]


# --- signin (cases 7-9) ----------------------------------------------------------

def test_7_unknown_email_cannot_sign_in(client):
    reply = client.post("/api/users/signin", {"email": unique_email(), "password": "password"})
    assert reply.status == 400
    assert reply.error_messages == ["Invalid credentials"]


def test_8_wrong_password_cannot_sign_in(client):
    email = unique_email()
    signup(client, email)
    reply = Client(client.base_url).post("/api/users/signin", {"email": email, "password": "wrongpass"})
    assert reply.status == 400
    assert reply.error_messages == ["Invalid credentials"]


def test_9_valid_credentials_sign_in_with_a_cookie(client):
    email = unique_email()
    signup(client, email)
    fresh = Client(client.base_url)
    reply = fresh.post("/api/users/signin", {"email": email, "password": "password"})
    assert reply.status == 200
    assert reply.json()["email"] == email
    assert reply.headers["set-cookie"].startswith("session=")
    assert fresh.get("/api/users/currentuser").json()["currentUser"]["email"] == email


def test_signin_validation_messages(client):
    reply = client.post("/api/users/signin", {"email": "nope", "password": " "})
    assert reply.status == 400
    assert reply.json()["errors"] == [
        {"message": "Email must be valid", "field": "email"},
        {"message": "You must supply a password", "field": "password"},
    ]


# --- signout and current user (cases 10-12) --------------------------------------

def test_10_signout_clears_the_cookie(client):
    signup(client, unique_email())
    reply = client.post("/api/users/signout", {})
    assert reply.status == 200
    assert reply.json() == {}
    assert reply.headers["set-cookie"].startswith("session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly")
    assert client.get("/api/users/currentuser").json() == {"currentUser": None}


def test_11_current_user_has_the_details(client):
    email = unique_email()
    user_id = signup(client, email).json()["id"]
    reply = client.get("/api/users/currentuser")
    assert reply.status == 200
    current = reply.json()["currentUser"]
    assert current["email"] == email
    assert current["id"] == user_id
    assert isinstance(current["iat"], int)


def test_12_current_user_is_null_when_anonymous(client):
    reply = client.get("/api/users/currentuser")
    assert reply.status == 200
    assert reply.json() == {"currentUser": None}


# --- §7 extras --------------------------------------------------------------------

def test_unknown_route_is_404(client):
    reply = client.get("/api/users/x")
    assert reply.status == 404
    assert reply.json() == {"errors": [{"message": "Not Found"}]}


def test_malformed_json_is_400_and_creates_nothing(client):
    email = unique_email()
    reply = client.post("/api/users/signup", raw=b'{"email": "' + email.encode() + b'", "password": ',
                        headers={"content-type": "application/json"})
    assert reply.status == 400
    assert reply.error_messages == ["Request body must be valid JSON"]
    assert signup(client, email).status == 201, "the bad request stored nothing"


def test_wrong_types_are_validation_errors(client):
    reply = client.post("/api/users/signup", {"email": 12, "password": ["x"]})
    assert reply.status == 400
    assert [e["field"] for e in reply.json()["errors"]] == ["email", "password"]


def test_forged_cookie_is_anonymous(client, running_lattice):
    forged = jwt_helper.sign({"id": "5ec00000abababababababab", "email": "evil@test.com", "iat": 1, "exp": 4102444800},
                             "not-the-real-key-but-long-enough-0123456789")
    reply = client.get("/api/users/currentuser", headers={"cookie": f"session={forged}"})
    assert reply.status == 200
    assert reply.json() == {"currentUser": None}
    garbage = client.get("/api/users/currentuser", headers={"cookie": "session=garbage.token.here"})
    assert garbage.json() == {"currentUser": None}


def test_expired_cookie_is_anonymous(client, running_lattice):
    key = (running_lattice.state_dir / "jwt_key").read_text().strip()
    valid = jwt_helper.sign({"id": "5ec00000abababababababab", "email": "a@test.com", "iat": 1, "exp": 4102444800}, key)
    assert client.get("/api/users/currentuser", headers={"cookie": f"session={valid}"}).json()["currentUser"]["email"] == "a@test.com"
    expired = jwt_helper.sign({"id": "5ec00000abababababababab", "email": "a@test.com", "iat": 1, "exp": 2}, key)
    assert client.get("/api/users/currentuser", headers={"cookie": f"session={expired}"}).json() == {"currentUser": None}


def test_20_concurrent_signups_with_one_email_give_one_201(running_lattice):
    email = unique_email()

    def attempt(_):
        return signup(Client(running_lattice.http_url), email).status

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(400) == 19, statuses


# --- bounds and e-mail identity (issue 16) -----------------------------------------------

TOO_MANY = {"errors": [{"message": "Too many attempts, try again later"}]}


def signin(client: Client, email: str, password: str = "password"):
    return client.post("/api/users/signin", {"email": email, "password": password})


def test_an_email_over_254_characters_is_400_naming_email(client):
    long_email = "a" * 250 + "@test.com"
    for path in ("/api/users/signup", "/api/users/signin"):
        reply = client.post(path, {"email": long_email, "password": "password"})
        assert reply.status == 400, path
        assert reply.json() == {"errors": [{"message": "Email must be at most 254 characters", "field": "email"}]}


def test_a_sign_in_password_over_100_characters_is_400_naming_password(client):
    email = unique_email()
    assert signup(client, email).status == 201
    reply = signin(Client(client.base_url), email, "p" * 101)
    assert reply.status == 400
    assert reply.json() == {"errors": [{"message": "Password must be at most 100 characters", "field": "password"}]}
    long_signup = signup(Client(client.base_url), unique_email(), "p" * 101)
    assert long_signup.json() == {"errors": [{"message": "Password must be between 4 and 20 characters", "field": "password"}]}


def test_a_json_body_over_16_kib_is_413_and_stores_nothing(client):
    email = unique_email()
    reply = client.post("/api/users/signup", {"email": email, "password": "password", "padding": "x" * 20_000})
    assert reply.status == 413
    assert reply.json() == {"errors": [{"message": "Request body is too large"}]}
    assert signup(client, email).status == 201, "the refused request stored nothing"


def test_emails_are_one_account_in_any_case(client):
    local = f"upper-{uuid.uuid4().hex[:12]}"
    created = signup(client, f"{local.upper()}@Test.com")
    assert created.status == 201
    assert created.json()["email"] == f"{local}@test.com", "stored normalised"
    again = signup(Client(client.base_url), f"{local}@test.com")
    assert again.status == 400
    assert again.json() == {"errors": [{"message": "Email in use"}]}
    for typed in (f"{local}@test.com", f"{local.upper()}@Test.com", f"  {local}@TEST.com "):
        reply = signin(Client(client.base_url), typed)
        assert reply.status == 200, typed
        assert reply.json()["id"] == created.json()["id"]


# --- rate limits (issue 16), under a manifest version with short windows ----------------

WINDOW = 10
SHORT_LIMITS = {
    "signin_failures_per_account": "3",
    "signin_failures_per_address": "8",
    "signin_window_seconds": str(WINDOW),
    "signups_per_address": "3",
    "signup_window_seconds": str(WINDOW),
}


def refused_sign_ups(url: str, attempts: int) -> int:
    """How many of `attempts` quick invalid sign-ups were refused with 429 (every attempt
    counts towards the address's sign-up limit; an invalid one costs no hashing)."""
    return sum(Client(url).post("/api/users/signup", {}).status == 429 for _ in range(attempts))


def at_window_start() -> None:
    """Waits for the next window to begin (windows are aligned to the epoch, on the host's
    clock, which is this machine's), so that a test's attempts all fall in one window."""
    time.sleep(WINDOW - time.time() % WINDOW + 0.05)


@pytest.fixture(scope="class")
def short_limits(running_lattice):
    url = running_lattice.http_url
    with deployed(running_lattice, "short-auth-limits", lambda doc: set_config(doc, "auth", "auth-limits", **SHORT_LIMITS)):
        # The component reads its config per request: wait until it uses the short limits
        # (4 attempts in one window of the short limits see a 429).
        eventually(lambda: refused_sign_ups(url, 4), timeout=60, interval=1, what="auth to use the short limits")
        yield running_lattice
    # And the manifest's limits again before other tests sign up: 7 attempts would meet a
    # 429 under the short limits even if they straddled two windows.
    eventually(lambda: refused_sign_ups(url, 7) == 0, timeout=60, interval=1, what="auth to use the manifest's limits")


@pytest.mark.usefixtures("short_limits")
class TestRateLimits:
    def test_repeated_failures_lock_the_account_until_the_window_passes(self, client):
        at_window_start()
        email = unique_email()
        assert signup(client, email).status == 201
        for _ in range(3):
            assert signin(Client(client.base_url), email, "wrongpass").error_messages == ["Invalid credentials"]
        refused = signin(Client(client.base_url), email.upper())
        assert refused.status == 429, "even the right password, in any case, during the window"
        assert refused.json() == TOO_MANY
        assert "set-cookie" not in refused.headers
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= WINDOW
        time.sleep(retry_after + 0.2)
        owner = Client(client.base_url)
        assert signin(owner, email).status == 200, "the owner gets in once the window has passed"
        assert owner.get("/api/users/currentuser").json()["currentUser"]["email"] == email

    def test_repeated_failures_from_one_address_lock_the_address(self, client):
        at_window_start()
        email = unique_email()
        assert signup(client, email).status == 201
        for _ in range(8):
            assert signin(Client(client.base_url), unique_email()).error_messages == ["Invalid credentials"]
        refused = signin(Client(client.base_url), email)
        assert (refused.status, refused.json()) == (429, TOO_MANY), "the address is locked for every account"
        time.sleep(int(refused.headers["retry-after"]) + 0.2)
        assert signin(Client(client.base_url), email).status == 200

    def test_a_sign_up_flood_from_one_address_gets_429(self, client):
        at_window_start()
        emails = [unique_email() for _ in range(5)]
        replies = [signup(Client(client.base_url), email) for email in emails]
        assert [r.status for r in replies] == [201, 201, 201, 429, 429]
        assert replies[3].json() == TOO_MANY
        assert 1 <= int(replies[3].headers["retry-after"]) <= WINDOW
        time.sleep(int(replies[4].headers["retry-after"]) + 0.2)
        assert signup(client, emails[3]).status == 201, "the refused sign-up stored nothing"
