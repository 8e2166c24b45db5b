"""A test CDS client: an EC P-384 key, its JWKS and trust file, and signed client JWTs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://ehr.test.example"
KEY = ec.generate_private_key(ec.SECP384R1())
KID = "test-1"


def write_trust(folder: Path, public_url: str) -> Path:
    """A trust file (TOML) naming our test issuer, with its JWKS beside it."""
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": KID, "alg": "ES384", "use": "sig"}]}))
    trust = folder / "trust.toml"
    trust.write_text(f'public_url = "{public_url}"\n\n[[issuers]]\niss = "{ISSUER}"\n'
                     f'jwks_file = "{jwks}"\n')
    return trust


def client_token(aud: str, jti: str | None = None, lifetime: int = 300) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + lifetime,
              "jti": jti or str(uuid.uuid4())}
    return jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
