"""Auth through the running lattice: reference cases 1-12 and the extra checks of §7."""
from __future__ import annotations

import concurrent.futures

import jwt_helper
from client import Client
from helpers import unique_email


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
