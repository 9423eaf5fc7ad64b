"""HS256 JWTs for tests (forged and expired sessions): the lattice tool's signer."""
from lattice.sessions import sign  # noqa: F401
