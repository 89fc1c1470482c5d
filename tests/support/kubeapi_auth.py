"""Bearer tokens of the fake kube-apiserver that expire, as bound service-account tokens do.

kube-apiserver accepts a static token (``--token-auth-file``: never expires) and the
tokens the TokenRequest API issues (``serviceaccounts/token``: the kubelet's projected
tokens), each valid until its ``exp``. The kubelet asks for a new one at ~80% of the
lifetime and rewrites the token file; the old one stays valid until it expires.

A request is authenticated once, when it arrives: a watch opened with a token that
expires later goes on (kube-apiserver does not authenticate a request twice); its
reconnection needs a valid token. An unknown or expired token is a 401 with the real
server's Status body (``"message":"Unauthorized","reason":"Unauthorized"``: it logs why,
the client is told no more).

The tokens are JWT-shaped (``header.payload.signature``, base64url, with ``exp``,
``iat``, ``iss``, ``sub`` and ``aud`` claims) as the real ones are; clients treat them as
opaque, and this server checks them against its table, not by signature.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time

ISSUER = "https://kubernetes.default.svc.cluster.local"
SUBJECT = "system:serviceaccount:kube-system:multinet"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    """The tokens a server accepts: {token: expiry (time.time())}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def mint(self, lifetime: float, subject: str = SUBJECT) -> str:
        """A new token valid for ``lifetime`` seconds from now."""
        now = time.time()
        header = {"alg": "RS256", "kid": "fake-kubeapi"}
        claims = {
            "aud": [ISSUER],
            "exp": int(now + lifetime),
            "iat": int(now),
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "sub": subject,
        }
        token = ".".join(
            (
                _b64(json.dumps(header).encode()),
                _b64(json.dumps(claims).encode()),
                _b64(secrets.token_bytes(32)),
            )
        )
        with self._lock:
            self._expiry[token] = now + lifetime
        return token

    def revoke(self, token: str) -> None:
        """Refused from now on (its ServiceAccount or pod deleted)."""
        with self._lock:
            self._expiry.pop(token, None)

    def expires_in(self, token: str) -> float | None:
        """Seconds until ``token`` expires (negative: expired), None for one never minted."""
        with self._lock:
            expiry = self._expiry.get(token)
        return None if expiry is None else expiry - time.time()

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = next(
                (e for t, e in self._expiry.items() if hmac.compare_digest(t, token)), None
            )
        return expiry is not None and time.time() < expiry
