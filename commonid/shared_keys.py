"""The keys every instance of one service must share, checked against the database.

Instances on one database must hold the same issuer key (card challenges name its
DID, credentials are signed with it), the same attribute keys (personal attributes
at rest) and the same pairwise secret (subject ids). An instance with its own data
directory used to generate its own: every card response then failed
`signature_invalid` and result reads failed to decrypt. The first instance records
the keys' SHA-256 fingerprints (never the keys) in ``shared_key_fingerprints``; a
later one whose keys differ refuses to start, naming the key and what to do.

The OpenID Provider's ID token signing key is shared the same way: ID tokens one
instance signs must verify against the JWKS every instance publishes.

Changes that are allowed: a rotated issuer or ID token signing key (the recorded one
is now among this instance's earlier keys), and attribute keys added beside the
recorded ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.oidc.keys import SigningKeys
from commonid.settings import Settings
from commonid.store.models import SharedKeyFingerprint
from did.keys import IssuerKeyring

HOW_TO_SHARE = (
    "every instance on one database needs the same keys: point issuer_key_file "
    "(COMMONID_ISSUER_KEY_FILE), oidc_signing_key_file (COMMONID_OIDC_SIGNING_KEY_FILE) "
    "and credential_issuer_key_file (COMMONID_CREDENTIAL_ISSUER_KEY_FILE) "
    "at the shared key files, and give "
    "COMMONID_ATTRIBUTE_KEYS, COMMONID_CURRENT_ATTRIBUTE_KEY_ID and COMMONID_PAIRWISE_SECRET "
    "(or secrets_file) the service's values (docs/service.md, Several instances)"
)


_ROTATING_KEY_NAMES = {
    "oidc_signing": "OpenID signing key",
    "credential_issuer": "credential issuer key",
}


class SharedKeysMismatch(Exception):
    """This instance's keys are not the ones the service on this database uses."""

    def __init__(self, role: str, problem: str) -> None:
        self.role = role
        super().__init__(f"{role}: {problem}; {HOW_TO_SHARE}")


def fingerprint(role: str, material: bytes) -> str:
    """SHA-256 over a role-separated encoding: the same bytes in two roles differ."""
    return hashlib.sha256(f"commonid/v1/shared-key/{role}\n".encode() + material).hexdigest()


def expected_fingerprints(settings: Settings, keyring: IssuerKeyring) -> dict[str, str]:
    """Role -> fingerprint of what this instance holds (settings with their secrets)."""
    assert settings.pairwise_secret is not None
    held = {
        "issuer": fingerprint("issuer", keyring.current.did.encode()),
        "pairwise": fingerprint("pairwise", settings.pairwise_secret.get_secret_value().encode()),
    }
    for key_id, key in settings.attribute_key_bytes().items():
        held[f"attribute:{key_id}"] = fingerprint("attribute", key)
    for role, keys in _rotating_keys(settings).items():
        held[role] = fingerprint(role, keys.current_kid.encode())
    return held


def _rotating_keys(settings: Settings) -> dict[str, SigningKeys]:
    """The ES256 key files that rotate: ID token keys and the SD-JWT VC issuer's."""
    return {
        "oidc_signing": SigningKeys.open(
            settings.oidc_signing_key_file or settings.data_dir / "oidc-signing-keys.json"
        ),
        "credential_issuer": SigningKeys.open(
            settings.credential_issuer_key_file or settings.data_dir / "credential-issuer-keys.json"
        ),
    }


def check_shared_keys(
    sessions: Callable[[], DbSession],
    settings: Settings,
    keyring: IssuerKeyring,
    *,
    now: datetime,
) -> None:
    """Record this instance's key fingerprints, or refuse (SharedKeysMismatch) when they
    contradict the ones recorded. Two instances starting at once: the second insert of
    a role fails, and the check runs again against what the first recorded."""
    try:
        _check(sessions, settings, keyring, now)
    except IntegrityError:
        _check(sessions, settings, keyring, now)


def _check(
    sessions: Callable[[], DbSession], settings: Settings, keyring: IssuerKeyring, now: datetime
) -> None:
    held = expected_fingerprints(settings, keyring)
    with sessions() as db, db.begin():
        recorded = {row.role: row for row in db.scalars(sa.select(SharedKeyFingerprint))}
        issuer = recorded.get("issuer")
        if issuer is not None and issuer.fingerprint != held["issuer"]:
            retired = {fingerprint("issuer", key.did.encode()) for key in keyring.retired}
            if issuer.fingerprint not in retired:
                raise SharedKeysMismatch(
                    "issuer key", "this instance's issuer key is not the service's"
                )
            issuer.fingerprint, issuer.recorded_at = held["issuer"], now  # rotated here
        pairwise = recorded.get("pairwise")
        if pairwise is not None and pairwise.fingerprint != held["pairwise"]:
            raise SharedKeysMismatch("pairwise secret", "not the service's pairwise secret")
        for role, row in recorded.items():
            if not role.startswith("attribute:"):
                continue
            if role not in held:
                raise SharedKeysMismatch(
                    f"attribute key {role.partition(':')[2]}",
                    "the service encrypted attributes with it and this instance lacks it",
                )
            if row.fingerprint != held[role]:
                raise SharedKeysMismatch(
                    f"attribute key {role.partition(':')[2]}",
                    "this instance has another key under that id",
                )
        for role, keys in _rotating_keys(settings).items():
            signing = recorded.get(role)
            if signing is None or signing.fingerprint == held[role]:
                continue
            earlier = {fingerprint(role, str(e["jwk"]["kid"]).encode()) for e in keys.keys[:-1]}
            if signing.fingerprint not in earlier:
                raise SharedKeysMismatch(
                    _ROTATING_KEY_NAMES[role], "this instance's current key is not the service's"
                )
            signing.fingerprint, signing.recorded_at = held[role], now  # rotated
        for role, value in held.items():
            if role not in recorded:
                db.add(SharedKeyFingerprint(role=role, fingerprint=value, recorded_at=now))
