"""APDU round trips and bytes of the card flows, next to the minimum possible.

Run:  .venv/bin/python bench/card_session.py [--no-pcsc]

A demo person is issued by a fresh test CA (jpki.testca), so the certificates
have the real profile's sizes; the card is the virtual My Number Card, driven
in process and, when pcscd lists the vpcd reader, over the real PC/SC stack.

The minimum, for certificates of La (auth) and Ls (sign) bytes:

  auth flow     = SELECT AP + SELECT EF(000A) + R(La)
                  + SELECT EF(0018) + VERIFY(empty: tries) + VERIFY(PIN)
                  + SELECT EF(0017) + COMPUTE DIGITAL SIGNATURE
                = 7 + R(La)
  identity flow = auth flow + SELECT EF(001B) + VERIFY(empty) + VERIFY(password)
                  + SELECT EF(0001) + R(Ls) + SELECT EF(001A) + SIGN
                = 13 + R(La) + R(Ls)

  R(L) = ceil(L / 256) with short APDUs (Le=00 brings 256 bytes and the first
  read also brings the DER header that gives L), and 1 with extended length
  (Le=0000: the whole EF in one response).

The empty VERIFY cannot be dropped: the tries must be read before the PIN is
sent (one try left needs the person's confirmation). Each SELECT EF is needed
because VERIFY and SIGN act on the current EF (the SFI shortcuts are
unconfirmed on real cards). Minimum bytes count the certificate itself; an
extended read of the whole EF also brings the filler after the certificate.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jpki.card import JPKICard, PinKind, minimum_read_round_trips
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from jpki.profile import Gender
from jpki.testca import Hierarchy, PersonRecord
from jpki.transport import (
    InProcessTransport,
    PcscTransport,
    Transport,
    list_readers,
    wait_for_card,
)

AUTH_PIN = "1234"
SIGN_PASSWORD = "ABC123"  # noqa: S105 - the demo card's known password
VPCD_READER = "Virtual PCD 00 00"
# Same lock as tests/fixtures/pcsc.py: one user of the vpcd reader at a time.
VPCD_LOCK_FILE = "/tmp/commonid-vpcd.lock"  # noqa: S108 - shared with the test harness
CHALLENGE = b"commonid/v1/card-challenge\n" + b'{"nonce":"' + b"A" * 43 + b'"}'

SELECT_AP = (15, 2)  # (bytes sent, bytes received) of each fixed command
SELECT_EF = (7, 2)
EMPTY_VERIFY = (4, 2)
SIGN = (5 + 51 + 1, 256 + 2)


@dataclass(frozen=True)
class Figures:
    round_trips: int
    bytes_sent: int
    bytes_received: int
    seconds: float = 0.0


def minimum(certificates: list[int], pins: list[int], *, extended: bool) -> Figures:
    """Fewest round trips / bytes for flows that sign with len(pins) keys (see module doc)."""
    trips, sent, received = 1, SELECT_AP[0], SELECT_AP[1]
    for certificate_length, pin_length in zip(certificates, pins, strict=True):
        reads = minimum_read_round_trips(certificate_length, extended=extended)
        read_command = 7 if extended else 5
        trips += 1 + reads + 1 + 1 + 1 + 1 + 1
        sent += SELECT_EF[0] * 3 + reads * read_command + EMPTY_VERIFY[0] + 5 + pin_length
        sent += SIGN[0]
        received += SELECT_EF[1] * 3 + certificate_length + 2 * reads + EMPTY_VERIFY[1] + 2
        received += SIGN[1]
    return Figures(trips, sent, received)


def auth_flow(card: JPKICard) -> None:
    card.sign_challenge(PinKind.AUTH, AUTH_PIN, CHALLENGE)


def identity_flow(card: JPKICard) -> None:
    with card.session():
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, CHALLENGE)
        card.sign_challenge(PinKind.SIGN, SIGN_PASSWORD, CHALLENGE)


def measure(transport: Transport, flow: Callable[[JPKICard], None], *, extended: bool) -> Figures:
    card = JPKICard(transport, extended_length=extended)
    started = time.perf_counter()
    flow(card)
    elapsed = time.perf_counter() - started
    counter = card.counter
    return Figures(counter.round_trips, counter.bytes_sent, counter.bytes_received, elapsed)


def issue_card_state(directory: Path) -> CardState:
    hierarchy = Hierarchy.init(directory / "ca", now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    person = hierarchy.issue_person(
        PersonRecord(
            name="山田\u3000太郎",
            birth_date=dt.date(1990, 4, 1),
            gender=Gender.MALE,
            address="東京都千代田区千代田一丁目1番1号",
            prefecture="東京都",
            municipality="千代田区",
        )
    )

    def der(certificate: object) -> bytes:
        return certificate.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]

    return CardState.create(
        auth_private_key=person.auth_private_key,
        sign_private_key=person.sign_private_key,
        auth_certificate=der(person.auth_certificate),
        auth_ca_certificate=der(person.auth_ca_certificate),
        sign_certificate=der(person.sign_certificate),
        sign_ca_certificate=der(person.sign_ca_certificate),
        auth_pin=AUTH_PIN,
        sign_password=SIGN_PASSWORD,
    )


class InProcess:
    """A fresh virtual card for each measurement."""

    def __init__(self, state: CardState) -> None:
        self.state = state

    @contextlib.contextmanager
    def transport(self) -> Iterator[Transport]:
        yield InProcessTransport(VirtualMyNumberCard(self.state))


class OverPcsc:
    """The card in the vpcd reader for the whole run; a new connection per measurement.

    Closing a connection resets the card, so every measurement starts with no
    AP selected and no PIN verified, as after an insertion.
    """

    def __init__(self, state: CardState, stack: contextlib.ExitStack) -> None:
        lock = stack.enter_context(open(VPCD_LOCK_FILE, "w"))  # noqa: SIM115
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack.enter_context(VpcdBridge(VirtualMyNumberCard(state)))
        wait_for_card(VPCD_READER, timeout=10)

    @contextlib.contextmanager
    def transport(self) -> Iterator[Transport]:
        with PcscTransport.connect(VPCD_READER) as transport:
            yield transport


def pcsc_available() -> bool:
    try:
        return VPCD_READER in list_readers()
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-pcsc", action="store_true", help="in process only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as directory:
        state = issue_card_state(Path(directory))
    auth_length, sign_length = len(state.auth_certificate), len(state.sign_certificate)
    print(f"auth certificate {auth_length} bytes, sign certificate {sign_length} bytes")

    stack = contextlib.ExitStack()
    transports: list[tuple[str, InProcess | OverPcsc]] = [("in process", InProcess(state))]
    if not args.no_pcsc and pcsc_available():
        transports.append(("PC/SC (pcscd+vpcd)", OverPcsc(state, stack)))
    elif not args.no_pcsc:
        print("PC/SC: the vpcd reader is not listed (is pcscd running?); in process only")

    flows = [
        ("auth", auth_flow, [auth_length], [len(AUTH_PIN)]),
        (
            "identity",
            identity_flow,
            [auth_length, sign_length],
            [len(AUTH_PIN), len(SIGN_PASSWORD)],
        ),
    ]
    header = (
        f"{'flow':<9} {'transport':<19} {'APDUs':<8} {'trips':>5} {'min':>4} "
        f"{'sent':>6} {'min':>6} {'recv':>6} {'min':>6} {'ms':>8}"
    )
    print(header)
    print("-" * len(header))
    worst = 0
    for flow_name, flow, certificates, pins in flows:
        for transport_name, place in transports:
            for extended in (False, True):
                floor = minimum(certificates, pins, extended=extended)
                with place.transport() as transport:
                    figures = measure(transport, flow, extended=extended)
                worst = max(worst, figures.round_trips - floor.round_trips)
                print(
                    f"{flow_name:<9} {transport_name:<19} {'extended' if extended else 'short':<8} "
                    f"{figures.round_trips:>5} {floor.round_trips:>4} "
                    f"{figures.bytes_sent:>6} {floor.bytes_sent:>6} "
                    f"{figures.bytes_received:>6} {floor.bytes_received:>6} "
                    f"{figures.seconds * 1000:>8.1f}"
                )
    stack.close()
    print(
        "at the minimum number of round trips"
        if worst == 0
        else f"{worst} round trip(s) above the minimum"
    )
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
