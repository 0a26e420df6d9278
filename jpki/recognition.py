"""Is the card in a reader a My Number Card? Asked of the card, not read from its ATR.

Through a contact reader the card answers with its own ATR, but through a
contactless reader the ATR is one the reader makes up (PC/SC part 3), and
other cards can share a contact ATR. The one reliable sign is that the JPKI
application answers a SELECT by its AID: OpenSC's JPKI driver falls back to
the same test when the ATR is unknown.
"""

from __future__ import annotations

import enum

from jpki.card import JPKICard
from jpki.errors import CardRemovedError, JPKIError, NoCardError, NotMyNumberCardError
from jpki.transport import PcscTransport


class CardKind(enum.StrEnum):
    MY_NUMBER_CARD = "my_number_card"
    OTHER = "other"  # answers, but has no JPKI application (or refuses to select it)
    NONE = "none"  # no card, or it went away while we asked
    UNREADABLE = "unreadable"  # present but the exchange failed (mute, reader trouble)


def identify_card(reader_name: str) -> CardKind:
    """Select the JPKI application in the card in ``reader_name`` and say what it is.

    The look leaves the card as it is (no reset on disconnect) and runs in a
    PC/SC transaction, so it never lands between another connection's VERIFY
    and its signature. Selecting the AP does make the card forget a PIN
    verified before, so callers look only at a card just put in the reader.
    """
    try:
        transport = PcscTransport(reader_name, reset_on_close=False)
    except (NoCardError, CardRemovedError):
        return CardKind.NONE
    except JPKIError:
        return CardKind.UNREADABLE
    with transport:
        try:
            JPKICard(transport).select_jpki_ap()
        except NotMyNumberCardError:
            return CardKind.OTHER
        except (NoCardError, CardRemovedError):
            return CardKind.NONE
        except JPKIError:
            return CardKind.UNREADABLE
    return CardKind.MY_NUMBER_CARD
