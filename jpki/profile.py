"""The JPKI certificate profile: what a My Number Card certificate looks like, and parsing it.

The constants here (policy OIDs, the basic-attribute OIDs, era codes, issuer
names) are the one place the profile is written down; the test CA issues
certificates from them and :func:`parse_certificate` reads certificates
against them. Facts marked unconfirmed in the design notes stay flagged here.
"""

from __future__ import annotations

import datetime as dt
import enum

# --- Issuer names ---------------------------------------------------------------------------

JLIS_OU = "Japan Agency for Local Authority Information Systems"
AUTH_CA_OU = "JPKI for user authentication"
SIGN_CA_OU = "JPKI for digital signature"
PRODUCTION_O = "JPKI"
# The test hierarchy of this project: a different O *and* an extra OU, so that
# neither a person nor a string comparison can take it for J-LIS's production CA.
TEST_O = "JPKI TEST"
TEST_OU = "Common-ID TEST HIERARCHY - NOT J-LIS"
ISSUER_ALT_NAME_O = "公的個人認証サービス"

# --- Certificate policies -------------------------------------------------------------------

SIGN_POLICY_PRODUCTION = "1.2.392.200149.8.5.1.1.20"
SIGN_POLICY_TEST = "1.2.392.200149.8.5.1.0.20"  # the policy J-LIS test cards carry
AUTH_POLICY_PRODUCTION = "1.2.392.200149.8.5.1.3.30"  # unconfirmed (one source)
# Our choice, by analogy with the sign test policy (the "0" arc for tests): no
# public source gives the auth policy of J-LIS test cards.
AUTH_POLICY_TEST = "1.2.392.200149.8.5.1.0.30"

PRODUCTION_POLICIES = {SIGN_POLICY_PRODUCTION: "sign", AUTH_POLICY_PRODUCTION: "auth"}
TEST_POLICIES = {SIGN_POLICY_TEST: "sign", AUTH_POLICY_TEST: "auth"}

# --- The four basic attributes (基本4情報) as subjectAltName otherName entries -------------

NAME_OID = "1.2.392.200149.8.5.5.1"
NAME_FLAGS_OID = "1.2.392.200149.8.5.5.2"
GENDER_OID = "1.2.392.200149.8.5.5.3"
BIRTH_DATE_OID = "1.2.392.200149.8.5.5.4"
ADDRESS_OID = "1.2.392.200149.8.5.5.5"
ADDRESS_FLAGS_OID = "1.2.392.200149.8.5.5.6"
BASIC_ATTRIBUTE_OIDS = (
    NAME_OID,
    NAME_FLAGS_OID,
    GENDER_OID,
    BIRTH_DATE_OID,
    ADDRESS_OID,
    ADDRESS_FLAGS_OID,
)
NAME_SEPARATOR = "\u3000"  # ideographic space between family and given name
MAX_ADDRESS_LENGTH = 200

JST = dt.timezone(dt.timedelta(hours=9), "JST")


class Gender(enum.Enum):
    """The gender code of the sign certificate (JIS X 0303-like codes)."""

    MALE = "1"
    FEMALE = "2"
    NOT_KNOWN = "3"


class Era(enum.Enum):
    """Japanese eras as coded in the first digit of the birth-date attribute."""

    UNKNOWN = (0, "不明", None)
    MEIJI = (1, "明治", dt.date(1868, 10, 23))
    TAISHO = (2, "大正", dt.date(1912, 7, 30))
    SHOWA = (3, "昭和", dt.date(1926, 12, 25))
    HEISEI = (4, "平成", dt.date(1989, 1, 8))
    REIWA = (5, "令和", dt.date(2019, 5, 1))

    def __init__(self, code: int, name_ja: str, first_day: dt.date | None) -> None:
        self.code = code
        self.name_ja = name_ja
        self.first_day = first_day

    @classmethod
    def from_code(cls, code: int) -> Era:
        for era in cls:
            if era.code == code:
                return era
        raise ValueError(f"no era has code {code}")

    @classmethod
    def of(cls, day: dt.date) -> Era:
        """The era a Gregorian date falls in (UNKNOWN before Meiji)."""
        found = cls.UNKNOWN
        for era in cls:
            if era.first_day is not None and day >= era.first_day:
                found = era
        return found


def encode_birth_date(day: dt.date) -> str:
    """`EYYYYMMDD`: the era code followed by the Gregorian date."""
    return f"{Era.of(day).code}{day:%Y%m%d}"
