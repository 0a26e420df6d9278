"""A test hierarchy on disk: the auth and sign root CAs, their persons, revocations and CRLs.

Layout of the directory (keys are mode 0600):

    auth_ca.pem  auth_ca.key.pem  sign_ca.pem  sign_ca.key.pem
    state.json      issued serials, revocations, CRL numbers
    persons/<id>.json   a person's keys and certificates (0600), for card files

Changes to state.json are made under a file lock and written atomically, so
`commonid testca revoke` may run while `commonid testca ocsp serve` answers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jpki.testca import crl as crl_encoding
from jpki.testca import names
from jpki.testca.person import (
    IssuedPerson,
    PersonRecord,
    basic_attribute_names,
    build_end_entity_certificate,
    end_of_day_jst,
    opaque_identifier,
    person_not_after,
)

STATE_FORMAT = 1
RSA_KEY_SIZE = 2048
CA_VALIDITY_YEARS = 10
CRL_VALIDITY = dt.timedelta(days=1)
SERIAL_RANGE = crl_encoding.SYNTHETIC_SERIAL_RANGE
Clock = Callable[[], dt.datetime]


class UnknownSerialError(ValueError):
    """The serial was not issued by this CA of the hierarchy."""


class UnknownPersonError(KeyError):
    """No person with this id was issued by the hierarchy."""


@dataclass(frozen=True)
class Linkage:
    """One certificate replaced by another for the same person (renewal or change)."""

    purpose: str
    old_serial: int
    new_serial: int
    reason: x509.ReasonFlags
    at: dt.datetime


@dataclass(frozen=True)
class CertificateStatus:
    """What the CA knows about one serial: good, revoked (when, why) or unknown."""

    status: str  # "good" | "revoked" | "unknown"
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fixed_clock(moment: dt.datetime) -> Clock:
    if moment.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return lambda: moment


def write_private_file(path: Path, content: bytes) -> None:
    """Write atomically with mode 0600 (keys and person files)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(temporary, path)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)


def build_root_ca(purpose: str, key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    """A self-signed root with the production profile and the test names."""
    name = names.test_ca_name(purpose)
    not_after = end_of_day_jst((now + dt.timedelta(days=365 * CA_VALIDITY_YEARS)).date())
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(secrets.choice(SERIAL_RANGE))
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DirectoryName(names.issuer_alt_directory_name())]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.DirectoryName(name)], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


class Hierarchy:
    """The two test root CAs of one directory. Build with :meth:`init` or :meth:`load`."""

    def __init__(
        self,
        directory: Path,
        *,
        certificates: dict[str, x509.Certificate],
        keys: dict[str, rsa.RSAPrivateKey],
        clock: Clock,
    ) -> None:
        self.directory = directory
        self._certificates = certificates
        self._keys = keys
        self._clock = clock

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path, *, now: dt.datetime | None = None) -> Hierarchy:
        """Create new auth and sign root CAs in `directory` (which must not hold one yet).

        With `now`, the CAs start then and the returned object uses `now` as its
        clock for issuing, revoking and CRLs (tests freeze time this way).
        """
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (directory / "state.json").exists():
            raise FileExistsError(f"{directory} already holds a test hierarchy")
        clock = _fixed_clock(now) if now is not None else _system_clock
        started = clock().replace(microsecond=0)
        certificates: dict[str, x509.Certificate] = {}
        keys: dict[str, rsa.RSAPrivateKey] = {}
        for purpose in names.PURPOSES:
            keys[purpose] = new_rsa_key()
            certificates[purpose] = build_root_ca(purpose, keys[purpose], started)
            write_private_file(directory / f"{purpose}_ca.key.pem", _key_pem(keys[purpose]))
            (directory / f"{purpose}_ca.pem").write_bytes(
                certificates[purpose].public_bytes(serialization.Encoding.PEM)
            )
        (directory / "persons").mkdir(mode=0o700, exist_ok=True)
        hierarchy = cls(directory, certificates=certificates, keys=keys, clock=clock)
        hierarchy._write_state(
            {
                "format": STATE_FORMAT,
                "issued": {purpose: {} for purpose in names.PURPOSES},
                "revoked": {purpose: {} for purpose in names.PURPOSES},
                "crl_number": {purpose: 0 for purpose in names.PURPOSES},
            }
        )
        return hierarchy

    @classmethod
    def load(cls, directory: Path, *, now: dt.datetime | None = None) -> Hierarchy:
        """Open the hierarchy stored in `directory`."""
        directory = Path(directory)
        if not (directory / "state.json").exists():
            raise FileNotFoundError(f"{directory} holds no test hierarchy (run `testca init`)")
        certificates: dict[str, x509.Certificate] = {}
        keys: dict[str, rsa.RSAPrivateKey] = {}
        for purpose in names.PURPOSES:
            certificates[purpose] = x509.load_pem_x509_certificate(
                (directory / f"{purpose}_ca.pem").read_bytes()
            )
            key = serialization.load_pem_private_key(
                (directory / f"{purpose}_ca.key.pem").read_bytes(), password=None
            )
            assert isinstance(key, rsa.RSAPrivateKey)
            keys[purpose] = key
        clock = _fixed_clock(now) if now is not None else _system_clock
        return cls(directory, certificates=certificates, keys=keys, clock=clock)

    # --- the CAs -----------------------------------------------------------------------------

    @property
    def auth_ca_certificate(self) -> x509.Certificate:
        return self._certificates["auth"]

    @property
    def sign_ca_certificate(self) -> x509.Certificate:
        return self._certificates["sign"]

    def ca_certificate(self, purpose: str) -> x509.Certificate:
        return self._certificates[names.check_purpose(purpose)]

    def ca_key(self, purpose: str) -> rsa.RSAPrivateKey:
        """The CA's private key (for CRL and OCSP signing inside this package and benches)."""
        return self._keys[names.check_purpose(purpose)]

    def now(self) -> dt.datetime:
        return self._clock()

    # --- state -------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.directory / "state.json"

    def _read_state(self) -> dict[str, Any]:
        return json.loads(self._state_path.read_text(encoding="utf-8"))

    def _write_state(self, state: dict[str, Any]) -> None:
        write_private_file(
            self._state_path, json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
        )

    @contextlib.contextmanager
    def _updating_state(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write state.json under an exclusive lock (several processes may share it)."""
        with open(self.directory / ".state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read_state()
                yield state
                self._write_state(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def state_mtime_ns(self) -> int:
        """Changes whenever state.json is rewritten (the OCSP responder reloads on change)."""
        return self._state_path.stat().st_mtime_ns

    # --- persons -----------------------------------------------------------------------------

    def issue_person(
        self,
        record: PersonRecord,
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IssuedPerson:
        """Issue an auth and a sign certificate for `record`, each with a fresh RSA 2048 key.

        Validity defaults to: from now until the end of the holder's fifth
        birthday after issue (capped at the CA's end).
        """
        return self._issue(record, not_before=not_before, not_after=not_after)

    def _issue(
        self,
        record: PersonRecord,
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        keep_auth_of: IssuedPerson | None = None,
    ) -> IssuedPerson:
        """Issue a person; with ``keep_auth_of``, a new signature certificate only (the card's
        authentication key and certificate stay: what a change of address or name does)."""
        issued_at = (not_before or self.now()).replace(microsecond=0)
        if not_after is None:
            not_after = min(
                person_not_after(record.birth_date, issued_at),
                self.auth_ca_certificate.not_valid_after_utc,
                self.sign_ca_certificate.not_valid_after_utc,
            )
        sign_key = new_rsa_key()
        auth_key = keep_auth_of.auth_private_key if keep_auth_of else new_rsa_key()
        with self._updating_state() as state:
            serials = self._new_serials(state, 2)
            if keep_auth_of is not None:
                auth_certificate = keep_auth_of.auth_certificate
                serials[0] = keep_auth_of.auth_serial
            else:
                auth_certificate = build_end_entity_certificate(
                    purpose="auth",
                    subject=names.auth_subject(opaque_identifier()),
                    public_key=auth_key.public_key(),
                    serial=serials[0],
                    not_before=issued_at,
                    not_after=not_after,
                    ca_certificate=self.auth_ca_certificate,
                    ca_key=self._keys["auth"],
                )
            sign_certificate = build_end_entity_certificate(
                purpose="sign",
                subject=names.sign_subject(
                    record.prefecture, record.municipality, opaque_identifier()
                ),
                public_key=sign_key.public_key(),
                serial=serials[1],
                not_before=issued_at,
                not_after=not_after,
                ca_certificate=self.sign_ca_certificate,
                ca_key=self._keys["sign"],
                subject_alt_names=basic_attribute_names(record),
            )
            person = IssuedPerson(
                person_id=secrets.token_hex(6),
                record=record,
                auth_private_key=auth_key,
                sign_private_key=sign_key,
                auth_certificate=auth_certificate,
                sign_certificate=sign_certificate,
                auth_ca_certificate=self.auth_ca_certificate,
                sign_ca_certificate=self.sign_ca_certificate,
            )
            for purpose, serial in person.serials.items():
                if purpose == "auth" and keep_auth_of is not None:
                    state["issued"][purpose][str(serial)]["person_id"] = person.person_id
                    continue
                state["issued"][purpose][str(serial)] = {
                    "person_id": person.person_id,
                    "not_after": not_after.isoformat(),
                }
            write_private_file(self._person_path(person.person_id), person.dumps().encode("utf-8"))
        return person

    def _new_serials(self, state: dict[str, Any], count: int) -> list[int]:
        # Unique across both CAs, so a serial alone names one certificate here.
        taken = {int(serial) for purpose in names.PURPOSES for serial in state["issued"][purpose]}
        taken |= {cert.serial_number for cert in self._certificates.values()}
        serials: list[int] = []
        while len(serials) < count:
            serial = secrets.choice(SERIAL_RANGE)
            if serial not in taken:
                taken.add(serial)
                serials.append(serial)
        return serials

    def _person_path(self, person_id: str) -> Path:
        if not person_id.isalnum():
            raise UnknownPersonError(person_id)
        return self.directory / "persons" / f"{person_id}.json"

    def load_person(self, person_id: str) -> IssuedPerson:
        """A person issued earlier, with keys (e.g. to write a card file)."""
        path = self._person_path(person_id)
        if not path.exists():
            raise UnknownPersonError(person_id)
        return IssuedPerson.from_json(json.loads(path.read_text(encoding="utf-8")))

    def person_ids(self) -> list[str]:
        return sorted(path.stem for path in (self.directory / "persons").glob("*.json"))

    # --- a person's card over the years (J-LIS's revocation reasons, per its CPS 4.9) ---------

    def renew(self, person_id: str, *, at: dt.datetime | None = None) -> IssuedPerson:
        """Card renewal: new keys and certificates for the same person. The old ones are
        revoked as ``superseded`` (証明書を更新した) and linked to the new ones."""
        old = self.load_person(person_id)
        new = self._issue(old.record, not_before=at)
        for purpose in names.PURPOSES:
            self._retire(old, new, purpose, x509.ReasonFlags.superseded, at)
        return new

    def change(
        self, person_id: str, record: PersonRecord, *, at: dt.datetime | None = None
    ) -> IssuedPerson:
        """A change of address or name (証明書の記載内容に変更): the signature certificate is
        revoked as ``affiliationChanged`` and a new one issued with the new attributes;
        the authentication certificate, which holds none, stays as it is."""
        old = self.load_person(person_id)
        new = self._issue(record, not_before=at, keep_auth_of=old)
        self._retire(old, new, "sign", x509.ReasonFlags.affiliation_changed, at)
        return new

    def lose(self, person_id: str, *, at: dt.datetime | None = None) -> None:
        """A card reported lost or stolen: both certificates revoked as ``keyCompromise``
        (利用者の秘密鍵が危殆化した); nothing replaces them until the person renews."""
        person = self.load_person(person_id)
        for purpose in names.PURPOSES:
            self.revoke(
                person.serials[purpose],
                purpose=purpose,
                reason=x509.ReasonFlags.key_compromise,
                revoked_at=at,
            )

    def _retire(
        self,
        old: IssuedPerson,
        new: IssuedPerson,
        purpose: str,
        reason: x509.ReasonFlags,
        at: dt.datetime | None,
    ) -> None:
        moment = (at or self.now()).replace(microsecond=0)
        self.revoke(old.serials[purpose], purpose=purpose, reason=reason, revoked_at=moment)
        with self._updating_state() as state:
            state.setdefault("linkage", []).append(
                {
                    "purpose": purpose,
                    "old_serial": str(old.serials[purpose]),
                    "new_serial": str(new.serials[purpose]),
                    "reason": reason.value,
                    "at": moment.isoformat(),
                }
            )

    def linkages(self, purpose: str | None = None) -> list[Linkage]:
        """Certificate linkage records, as a platform operator offers them: old serial to
        new serial, so that a relying party can follow a person across a renewal."""
        return [
            Linkage(
                purpose=entry["purpose"],
                old_serial=int(entry["old_serial"]),
                new_serial=int(entry["new_serial"]),
                reason=x509.ReasonFlags(entry["reason"]),
                at=dt.datetime.fromisoformat(entry["at"]),
            )
            for entry in self._read_state().get("linkage", [])
            if purpose is None or entry["purpose"] == purpose
        ]

    # --- revocation --------------------------------------------------------------------------

    def revoke(
        self,
        serial: int,
        *,
        purpose: str,
        reason: x509.ReasonFlags,
        revoked_at: dt.datetime | None = None,
    ) -> None:
        """Revoke a certificate this CA issued. Revoking again updates reason and time."""
        purpose = names.check_purpose(purpose)
        if reason is x509.ReasonFlags.remove_from_crl:
            # removeFromCRL only means something in a delta CRL, which this CA does not issue.
            raise ValueError("removeFromCRL is for delta CRLs: not a revocation reason here")
        moment = (revoked_at or self.now()).replace(microsecond=0)
        with self._updating_state() as state:
            if str(serial) not in state["issued"][purpose]:
                raise UnknownSerialError(f"the {purpose} CA issued no serial {serial:#x}")
            state["revoked"][purpose][str(serial)] = {
                "reason": reason.value,
                "revoked_at": moment.isoformat(),
            }

    def revoked_entries(
        self, purpose: str, *, as_of: dt.datetime | None = None
    ) -> list[crl_encoding.RevokedEntry]:
        """Revocations of the purpose's CA in time order; with `as_of`, only those up to then."""
        purpose = names.check_purpose(purpose)
        revoked = self._read_state()["revoked"][purpose]
        entries = [
            crl_encoding.RevokedEntry(
                serial=int(serial),
                revoked_at=dt.datetime.fromisoformat(entry["revoked_at"]),
                reason=x509.ReasonFlags(entry["reason"]),
            )
            for serial, entry in revoked.items()
        ]
        entries.sort(key=lambda entry: entry.revoked_at)
        return [entry for entry in entries if as_of is None or entry.revoked_at <= as_of]

    def status(
        self, purpose: str, serial: int, *, at: dt.datetime | None = None
    ) -> CertificateStatus:
        """good / revoked / unknown at `at` (default: now), as an OCSP responder reports it."""
        state = self._read_state()
        purpose = names.check_purpose(purpose)
        at = at or self.now()
        revoked = state["revoked"][purpose].get(str(serial))
        if revoked is not None and dt.datetime.fromisoformat(revoked["revoked_at"]) <= at:
            return CertificateStatus(
                "revoked",
                revoked_at=dt.datetime.fromisoformat(revoked["revoked_at"]),
                reason=x509.ReasonFlags(revoked["reason"]),
            )
        if str(serial) in state["issued"][purpose]:
            return CertificateStatus("good")
        return CertificateStatus("unknown")

    def issued_serials(self, purpose: str) -> set[int]:
        return {int(s) for s in self._read_state()["issued"][names.check_purpose(purpose)]}

    def _next_crl_number(self, purpose: str) -> int:
        with self._updating_state() as state:
            state["crl_number"][purpose] += 1
            return int(state["crl_number"][purpose])

    def crl(
        self,
        purpose: str,
        *,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
    ) -> bytes:
        """A full CRL (DER) of the purpose's CA, with the next CRL number.

        It lists the revocations made up to `this_update` (default: now): a CRL
        cannot know of later ones.
        """
        purpose = names.check_purpose(purpose)
        this_update = (this_update or self.now()).replace(microsecond=0)
        return crl_encoding.build_crl(
            issuer_certificate=self.ca_certificate(purpose),
            issuer_key=self._keys[purpose],
            crl_number=self._next_crl_number(purpose),
            this_update=this_update,
            next_update=next_update or this_update + CRL_VALIDITY,
            entries=self.revoked_entries(purpose, as_of=this_update),
        )

    def large_crl(
        self,
        purpose: str,
        entries: int,
        *,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
        seed: int | None = None,
        progress: crl_encoding.ProgressCallback | None = None,
    ) -> bytes:
        """A CRL with exactly `entries` entries: this CA's real revocations plus synthetic ones.

        Synthetic serials never hit a certificate this hierarchy issued, so good
        certificates stay good against it (for revocation benchmarks).
        """
        purpose = names.check_purpose(purpose)
        this_update = (this_update or self.now()).replace(microsecond=0)
        return crl_encoding.build_large_crl(
            issuer_certificate=self.ca_certificate(purpose),
            issuer_key=self._keys[purpose],
            count=entries,
            crl_number=self._next_crl_number(purpose),
            this_update=this_update,
            next_update=next_update or this_update + CRL_VALIDITY,
            entries=self.revoked_entries(purpose, as_of=this_update),
            exclude_serials=self.issued_serials(purpose),
            seed=seed,
            progress=progress,
        )
