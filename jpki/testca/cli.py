"""`commonid testca ...` and `commonid card ...`: the test CA and virtual card files.

PINs and passwords given to `card new` are checked and handed to the card
file, which keeps only salted hashes; they are never printed or logged.
Personal attributes are not echoed either: commands print ids and serials.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jpki.profile import Gender
from jpki.testca import Hierarchy, IssuedPerson, PersonRecord
from jpki.testca.crl import crl_pem
from jpki.testca.hierarchy import UnknownPersonError, write_private_file
from jpki.testca.names import PURPOSES

testca_app = typer.Typer(
    help="J-LIS-profile test CA: hierarchies, persons, CRLs, OCSP.", no_args_is_help=True
)
card_app = typer.Typer(help="Virtual My Number Card files for the emulator.", no_args_is_help=True)
person_app = typer.Typer(help="Persons of a test hierarchy.", no_args_is_help=True)
ocsp_app = typer.Typer(help="The OCSP responder of a test hierarchy.", no_args_is_help=True)
testca_app.add_typer(person_app, name="person")
testca_app.add_typer(ocsp_app, name="ocsp")

AUTH_PIN_FORMAT = re.compile(r"[0-9]{4}")
SIGN_PASSWORD_FORMAT = re.compile(r"[A-Z0-9]{6,16}")
PREFECTURE = re.compile(r"^(東京都|北海道|京都府|大阪府|.{2,3}?県)")
# A municipality: a town or village of a district, or the shortest run ending
# in 市/区/町/村. Names like 四日市市 defeat this: pass --municipality then.
MUNICIPALITY = re.compile(r"^(.+?郡.+?[町村]|.+?[市区町村])")
GENDERS = {
    "1": Gender.MALE,
    "male": Gender.MALE,
    "2": Gender.FEMALE,
    "female": Gender.FEMALE,
    "3": Gender.NOT_KNOWN,
    "not-known": Gender.NOT_KNOWN,
}
REASONS = {flag.name: flag for flag in x509.ReasonFlags} | {
    flag.value: flag for flag in x509.ReasonFlags
}

DirOption = Annotated[
    Path, typer.Option("--dir", help="Directory of the test hierarchy (from `testca init`).")
]
PurposeOption = Annotated[str, typer.Option(help="Which CA: auth or sign.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def parse_time(text: str | None) -> dt.datetime | None:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_serial(text: str) -> int:
    """Decimal, or hexadecimal with 0x or colons (as openssl prints serials)."""
    cleaned = text.strip().lower().replace(":", "")
    try:
        if cleaned.startswith("0x") or ":" in text:
            return int(cleaned.removeprefix("0x"), 16)
        return int(cleaned)
    except ValueError:
        raise typer.BadParameter(f"not a serial number: {text!r}") from None


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise typer.BadParameter("purpose must be auth or sign")
    return purpose


def open_hierarchy(directory: Path) -> Hierarchy:
    try:
        return Hierarchy.load(directory)
    except FileNotFoundError as e:
        raise fail(str(e)) from None


def _fingerprint(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


# --- testca init ------------------------------------------------------------------------------


@testca_app.command("init")
def init_command(
    directory: Annotated[Path, typer.Argument(help="Directory to create the hierarchy in.")],
    now: Annotated[
        str | None, typer.Option(help="Start of the CAs' validity (ISO 8601); default now.")
    ] = None,
) -> None:
    """Create test auth and sign root CAs (O=JPKI TEST: never taken for J-LIS's)."""
    try:
        hierarchy = Hierarchy.init(directory, now=parse_time(now))
    except FileExistsError as e:
        raise fail(str(e)) from None
    typer.echo(f"test hierarchy created in {directory}")
    for purpose in PURPOSES:
        certificate = hierarchy.ca_certificate(purpose)
        typer.echo(f"{purpose} CA: {certificate.subject.rfc4514_string()}")
        typer.echo(
            f"  serial {certificate.serial_number:#010x}, SHA-256 {_fingerprint(certificate)}"
        )
        typer.echo(f"  valid until {certificate.not_valid_after_utc.isoformat()}")


# --- testca person ----------------------------------------------------------------------------


def _residence(address: str, prefecture: str | None, municipality: str | None) -> tuple[str, str]:
    if prefecture is None:
        match = PREFECTURE.match(address)
        if match is None:
            raise fail("cannot tell the prefecture from the address: pass --prefecture")
        prefecture = match.group(1)
    if municipality is None:
        rest = address.removeprefix(prefecture)
        match = MUNICIPALITY.match(rest)
        if match is None:
            raise fail("cannot tell the municipality from the address: pass --municipality")
        municipality = match.group(1)
    return prefecture, municipality


def _family_given(name: str) -> str:
    """Family and given name as the card writes them: one ideographic space between."""
    if "\u3000" in name:
        return name
    return re.sub(r"\s+", "\u3000", name.strip(), count=1)


@person_app.command("new")
def person_new_command(
    directory: DirOption,
    name: Annotated[str, typer.Option(help="Family and given name; a space becomes U+3000.")],
    birth_date: Annotated[str, typer.Option(help="Birth date, YYYY-MM-DD.")],
    gender: Annotated[str, typer.Option(help="male|female|not-known (or 1|2|3).")],
    address: Annotated[str, typer.Option(help="Address, up to 200 characters.")],
    prefecture: Annotated[str | None, typer.Option(help="Default: from the address.")] = None,
    municipality: Annotated[str | None, typer.Option(help="Default: from the address.")] = None,
    name_flags: Annotated[str, typer.Option(help="Substitute-character flags of the name.")] = "0",
    address_flags: Annotated[
        str, typer.Option(help="Substitute-character flags of the address.")
    ] = "0",
    not_before: Annotated[
        str | None, typer.Option(help="Issue time (ISO 8601); default now.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the person (keys included) to this file.")
    ] = None,
) -> None:
    """Issue a person's auth and sign certificates (and key pairs)."""
    hierarchy = open_hierarchy(directory)
    name = _family_given(name)
    try:
        born = dt.date.fromisoformat(birth_date)
    except ValueError:
        raise typer.BadParameter(
            "birth date must be YYYY-MM-DD", param_hint="--birth-date"
        ) from None
    if gender.lower() not in GENDERS:
        raise typer.BadParameter("male, female, not-known, 1, 2 or 3", param_hint="--gender")
    prefecture, municipality = _residence(address, prefecture, municipality)
    try:
        record = PersonRecord(
            name=name,
            name_flags=name_flags,
            birth_date=born,
            gender=GENDERS[gender.lower()],
            address=address,
            address_flags=address_flags,
            prefecture=prefecture,
            municipality=municipality,
        )
    except ValueError as e:
        raise fail(str(e)) from None
    person = hierarchy.issue_person(record, not_before=parse_time(not_before))
    if out is not None:
        write_private_file(out, person.dumps().encode("utf-8"))
    typer.echo(f"person {person.person_id}")
    typer.echo(f"  auth certificate serial {person.auth_serial:#010x}")
    typer.echo(f"  sign certificate serial {person.sign_serial:#010x}")
    typer.echo(f"  valid until {person.sign_certificate.not_valid_after_utc.isoformat()}")
    if out is not None:
        typer.echo(f"  written to {out} (holds private keys: mode 0600)")


@person_app.command("list")
def person_list_command(directory: DirOption) -> None:
    """List the persons of a hierarchy: id, serials, status."""
    hierarchy = open_hierarchy(directory)
    for person_id in hierarchy.person_ids():
        person = hierarchy.load_person(person_id)
        statuses = {p: hierarchy.status(p, person.serials[p]).status for p in PURPOSES}
        typer.echo(
            f"{person_id}  auth {person.auth_serial:#010x} {statuses['auth']:<8}"
            f"  sign {person.sign_serial:#010x} {statuses['sign']}"
        )


def _describe(person: IssuedPerson, what: str) -> None:
    typer.echo(f"person {person.person_id} ({what})")
    typer.echo(f"  auth certificate serial {person.auth_serial:#010x}")
    typer.echo(f"  sign certificate serial {person.sign_serial:#010x}")


@person_app.command("renew")
def person_renew_command(
    directory: DirOption,
    person_id: Annotated[str, typer.Argument(help="The person whose card is renewed.")],
    at: Annotated[str | None, typer.Option(help="Renewal time (ISO 8601); default now.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the new person here.")] = None,
) -> None:
    """Card renewal: new keys and certificates; the old ones revoked as superseded and
    linked to the new ones (certificate linkage, as a platform operator offers it)."""
    hierarchy = open_hierarchy(directory)
    try:
        person = hierarchy.renew(person_id, at=parse_time(at))
    except UnknownPersonError:
        raise fail(f"no person {person_id}") from None
    if out is not None:
        write_private_file(out, person.dumps().encode("utf-8"))
    _describe(person, f"renewal of {person_id}; old certificates revoked: superseded")


@person_app.command("change")
def person_change_command(
    directory: DirOption,
    person_id: Annotated[str, typer.Argument(help="The person who moved or changed name.")],
    address: Annotated[str | None, typer.Option(help="The new address.")] = None,
    name: Annotated[str | None, typer.Option(help="The new name.")] = None,
    at: Annotated[str | None, typer.Option(help="Change time (ISO 8601); default now.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the new person here.")] = None,
) -> None:
    """A change of address or name: the signature certificate is revoked
    (affiliationChanged) and reissued with the new attributes; the authentication
    certificate stays."""
    if address is None and name is None:
        raise fail("give --address, --name or both")
    hierarchy = open_hierarchy(directory)
    try:
        old = hierarchy.load_person(person_id)
    except UnknownPersonError:
        raise fail(f"no person {person_id}") from None
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = _family_given(name)
    if address is not None:
        changes["prefecture"], changes["municipality"] = _residence(address, None, None)
        changes["address"] = address
    try:
        record = dataclasses.replace(old.record, **changes)
        person = hierarchy.change(person_id, record, at=parse_time(at))
    except ValueError as e:
        raise fail(str(e)) from None
    if out is not None:
        write_private_file(out, person.dumps().encode("utf-8"))
    _describe(person, f"change of {person_id}; old sign certificate revoked: affiliationChanged")


@person_app.command("lose")
def person_lose_command(
    directory: DirOption,
    person_id: Annotated[str, typer.Argument(help="The person whose card is lost.")],
    at: Annotated[str | None, typer.Option(help="Report time (ISO 8601); default now.")] = None,
) -> None:
    """A card reported lost: both certificates revoked (keyCompromise)."""
    hierarchy = open_hierarchy(directory)
    try:
        hierarchy.lose(person_id, at=parse_time(at))
    except UnknownPersonError:
        raise fail(f"no person {person_id}") from None
    typer.echo(f"person {person_id}: both certificates revoked (keyCompromise)")


@testca_app.command("linkage")
def linkage_command(directory: DirOption) -> None:
    """Certificate linkage records: purpose, old serial, new serial, reason, time."""
    for link in open_hierarchy(directory).linkages():
        typer.echo(
            f"{link.purpose}\t{link.old_serial:#010x}\t{link.new_serial:#010x}"
            f"\t{link.reason.value}\t{link.at.isoformat()}"
        )


# --- testca revoke / crl ---------------------------------------------------------------------


@testca_app.command("revoke")
def revoke_command(
    directory: DirOption,
    serial: Annotated[str, typer.Option(help="Serial: decimal, 0x-hex or aa:bb:cc:dd.")],
    purpose: PurposeOption,
    reason: Annotated[
        str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise, affiliationChanged.")
    ] = "unspecified",
    at: Annotated[str | None, typer.Option(help="Revocation time (ISO 8601).")] = None,
) -> None:
    """Revoke a certificate of the hierarchy."""
    hierarchy = open_hierarchy(directory)
    if reason not in REASONS:
        raise typer.BadParameter(
            ", ".join(f.value for f in x509.ReasonFlags), param_hint="--reason"
        )
    number = parse_serial(serial)
    try:
        hierarchy.revoke(
            number,
            purpose=check_purpose(purpose),
            reason=REASONS[reason],
            revoked_at=parse_time(at),
        )
    except ValueError as e:  # UnknownSerialError, or a reason a full CRL cannot carry
        raise fail(str(e)) from None
    typer.echo(f"revoked {purpose} certificate {number:#010x} ({REASONS[reason].value})")


@testca_app.command("crl")
def crl_command(
    directory: DirOption,
    purpose: PurposeOption,
    out: Annotated[Path, typer.Option(help="Where to write the CRL.")],
    entries: Annotated[
        int | None,
        typer.Option(help="Pad with synthetic revocations to exactly this many entries."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for synthetic entries.")] = None,
    this_update: Annotated[str | None, typer.Option(help="thisUpdate (ISO 8601).")] = None,
    pem: Annotated[bool, typer.Option(help="Write PEM instead of DER.")] = False,
) -> None:
    """Write the CA's full CRL, or a large one for revocation benchmarks (--entries)."""
    hierarchy = open_hierarchy(directory)
    purpose = check_purpose(purpose)
    started = time.perf_counter()
    if entries is None:
        der = hierarchy.crl(purpose, this_update=parse_time(this_update))
    else:

        def progress(done: int, total: int) -> None:
            print(f"\r  {done:,}/{total:,} synthetic entries", end="", file=sys.stderr, flush=True)

        try:
            der = hierarchy.large_crl(
                purpose, entries, this_update=parse_time(this_update), seed=seed, progress=progress
            )
        except ValueError as e:
            raise fail(str(e)) from None
        print(file=sys.stderr)
    elapsed = time.perf_counter() - started
    out.write_bytes(crl_pem(der) if pem else der)
    count = len(x509.load_der_x509_crl(der))
    typer.echo(f"{purpose} CRL: {count:,} entries, {len(der):,} bytes, {elapsed:.2f} s -> {out}")


# --- testca ocsp serve -----------------------------------------------------------------------


@ocsp_app.command("serve")
def ocsp_serve_command(
    directory: DirOption,
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    delegated: Annotated[
        bool, typer.Option(help="Sign with a delegated responder certificate, not the CA key.")
    ] = False,
) -> None:
    """Answer OCSP requests (RFC 6960, HTTP POST and GET) until interrupted."""
    from jpki.testca.ocsp import OcspResponder

    hierarchy = open_hierarchy(directory)
    responder = OcspResponder(
        hierarchy, host, port, delegated=delegated, log=lambda line: typer.echo(line, err=True)
    )
    responder.start()
    typer.echo(f"OCSP responder for {directory} at {responder.url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        responder.stop()


# --- card new ---------------------------------------------------------------------------------


def _check_pin(pin: str) -> str:
    if not AUTH_PIN_FORMAT.fullmatch(pin):
        raise typer.BadParameter("the authentication PIN is exactly 4 digits")
    return pin


def _check_password(password: str) -> str:
    password = password.upper()
    if not SIGN_PASSWORD_FORMAT.fullmatch(password):
        raise typer.BadParameter("the signature password is 6 to 16 characters A-Z and 0-9")
    return password


def _find_person(directory: Path | None, person: str) -> IssuedPerson:
    import json

    if directory is not None:
        try:
            return open_hierarchy(directory).load_person(person)
        except UnknownPersonError:
            pass
    path = Path(person)
    if path.is_file():
        return IssuedPerson.from_json(json.loads(path.read_text(encoding="utf-8")))
    raise fail(f"no person {person!r} (give an id from `testca person list` or a person file)")


@card_app.command("new")
def card_new_command(
    person: Annotated[
        str, typer.Option(help="Person id in --dir, or a file from `person new --out`.")
    ],
    out: Annotated[Path, typer.Option(help="Card file to write (mode 0600).")],
    pin: Annotated[
        str,
        typer.Option(
            help="Authentication PIN, 4 digits (prompted if omitted).",
            prompt="Authentication PIN (4 digits)",
            hide_input=True,
            callback=_check_pin,
        ),
    ],
    password: Annotated[
        str,
        typer.Option(
            help="Signature password, 6-16 A-Z/0-9 (prompted if omitted).",
            prompt="Signature password (6-16 A-Z, 0-9)",
            hide_input=True,
            callback=_check_password,
        ),
    ],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Directory of the test hierarchy.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing card file.")] = False,
) -> None:
    """Write an emulator card file holding a person's keys and certificates."""
    from jpki.emulator.state import CardState

    if out.exists() and not force:
        raise fail(f"{out} exists (a card file keeps its try counters): pass --force to replace")
    issued = _find_person(directory, person)

    def der(certificate: x509.Certificate) -> bytes:
        return certificate.public_bytes(serialization.Encoding.DER)

    state = CardState.create(
        auth_private_key=issued.auth_private_key,
        sign_private_key=issued.sign_private_key,
        auth_certificate=der(issued.auth_certificate),
        auth_ca_certificate=der(issued.auth_ca_certificate),
        sign_certificate=der(issued.sign_certificate),
        sign_ca_certificate=der(issued.sign_ca_certificate),
        auth_pin=pin,
        sign_password=password,
    )
    state.save(out)
    typer.echo(f"card file for person {issued.person_id} written to {out}")
