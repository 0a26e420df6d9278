"""Names of the test hierarchy: the production layout, marked as test in O and an extra OU."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from jpki.profile import (
    AUTH_CA_OU,
    AUTH_POLICY_TEST,
    ISSUER_ALT_NAME_O,
    JLIS_OU,
    SIGN_CA_OU,
    SIGN_POLICY_TEST,
    TEST_O,
    TEST_OU,
)

PURPOSES = ("auth", "sign")
CA_OU = {"auth": AUTH_CA_OU, "sign": SIGN_CA_OU}
TEST_POLICY = {"auth": AUTH_POLICY_TEST, "sign": SIGN_POLICY_TEST}


def check_purpose(purpose: str) -> str:
    """Return `purpose` if it is "auth" or "sign", else raise ValueError."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be 'auth' or 'sign', not {purpose!r}")
    return str(purpose)


def test_ca_name(purpose: str) -> x509.Name:
    """`C=JP, O=JPKI TEST, OU=<purpose>, OU=J-LIS, OU=Common-ID TEST HIERARCHY - NOT J-LIS`."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CA_OU[check_purpose(purpose)]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JLIS_OU),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_OU),
        ]
    )


def issuer_alt_directory_name() -> x509.Name:
    """The directoryName J-LIS puts in issuerAltName, with the test OU added."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ISSUER_ALT_NAME_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_OU),
        ]
    )


def auth_subject(opaque_id: str) -> x509.Name:
    """`C=JP, CN=<opaque id>`: the auth certificate names nobody."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, opaque_id),
        ]
    )


def sign_subject(prefecture: str, municipality: str, opaque_id: str) -> x509.Name:
    """`C=JP, L=<prefecture>, L=<municipality>, CN=<opaque id>`."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, prefecture),
            x509.NameAttribute(NameOID.LOCALITY_NAME, municipality),
            x509.NameAttribute(NameOID.COMMON_NAME, opaque_id),
        ]
    )
