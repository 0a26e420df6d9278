"""A J-LIS-profile test CA: test root CAs, persons with auth and sign certificates, CRLs, OCSP.

Everything it issues is marked as test (O=JPKI TEST, an extra OU and test
policy OIDs): it can never be taken for J-LIS's production hierarchy.
"""

from jpki.testca.crl import RevokedEntry
from jpki.testca.hierarchy import (
    CertificateStatus,
    Hierarchy,
    Linkage,
    UnknownPersonError,
    UnknownSerialError,
)
from jpki.testca.person import IssuedPerson, PersonRecord

__all__ = [
    "CertificateStatus",
    "Hierarchy",
    "IssuedPerson",
    "Linkage",
    "PersonRecord",
    "RevokedEntry",
    "UnknownPersonError",
    "UnknownSerialError",
]
