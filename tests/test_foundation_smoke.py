"""First checks of the real stack the rest of the suite builds on."""

from __future__ import annotations

import pytest

from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state

pytestmark = pytest.mark.pcsc

JPKI_AID = bytes.fromhex("D392F000260100000001")


class _EchoAidCard:
    """The smallest card that proves bytes cross pcscd: it answers SELECT.

    It knows one AID and answers 90 00 for it and 6A 82 for anything else, so
    the test sees both directions of the APDU exchange through the real stack.
    """

    atr = bytes.fromhex("3BE000FF8131FE4514")

    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        self.commands.append(command)
        if command[1] == 0xA4 and command[5 : 5 + command[4]] == JPKI_AID:
            return b"\x90\x00"
        return b"\x6a\x82"


def test_pyscard_lists_the_vpcd_reader(pcsc_reader: str) -> None:
    from smartcard.System import readers

    assert pcsc_reader in [str(reader) for reader in readers()]


def test_card_answers_through_pcscd(pcsc_reader: str) -> None:
    from smartcard.System import readers

    card = _EchoAidCard()
    with VpcdBridge(card, port=VPCD_PORT):
        wait_for_card_state(pcsc_reader, present=True)
        reader = next(r for r in readers() if str(r) == pcsc_reader)
        connection = reader.createConnection()
        connection.connect()
        try:
            assert bytes(connection.getATR()) == card.atr
            select = [0x00, 0xA4, 0x04, 0x0C, len(JPKI_AID), *JPKI_AID]
            _data, sw1, sw2 = connection.transmit(select)
            assert (sw1, sw2) == (0x90, 0x00)
            _data, sw1, sw2 = connection.transmit([0x00, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00])
            assert (sw1, sw2) == (0x6A, 0x82)
        finally:
            connection.disconnect()
    wait_for_card_state(pcsc_reader, present=False)
    assert bytes(card.commands[0][5:]) == JPKI_AID


@pytest.mark.postgres
def test_postgres_answers(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(sa.make_url(postgres_url).set(drivername="postgresql+psycopg"))
    with engine.connect() as connection:
        assert connection.execute(sa.text("select 1")).scalar_one() == 1
    engine.dispose()
