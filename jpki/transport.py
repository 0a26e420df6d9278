"""Transports: bytes in, bytes out, to a card in a PC/SC reader or in this process.

A transport knows nothing about APDU meaning. It turns the reader's failure
modes into :mod:`jpki.errors` types (card removed, reader gone, no card), so
the layers above never see pyscard's exceptions or PC/SC result codes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from jpki.errors import (
    CardRemovedError,
    CardResetError,
    JPKIError,
    NoCardError,
    ReaderUnavailableError,
    TransportError,
)


@runtime_checkable
class Transport(Protocol):
    """What the Card layer needs from a reader."""

    @property
    def atr(self) -> bytes: ...

    @property
    def extended_length(self) -> bool | None:
        """Whether the reader carries extended-length APDUs (None: unknown, try it)."""
        ...

    def transmit(self, command: bytes) -> bytes:
        """Send a command APDU, return the response APDU (data + SW1 SW2)."""
        ...

    def reset(self) -> None:
        """Warm-reset the card: its security state (verified PINs) is lost."""
        ...

    def reconnect(self) -> None:
        """Connect again to the card in the same reader (after a removal or reset)."""
        ...

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive use of the card: no other program's APDU comes in between."""
        ...

    def close(self) -> None: ...


# --- in process ---------------------------------------------------------------------


class InProcessTransport:
    """Drives a virtual card object (the VirtualCard protocol of jpki.emulator.vpcd).

    ``remove()`` and ``insert()`` simulate taking the card out and putting it
    back; as with PC/SC, a session interrupted by a removal needs ``reconnect()``.
    """

    def __init__(self, virtual_card: Any) -> None:
        self.virtual_card = virtual_card
        self._inserted = True
        self._connected = True
        self._closed = False
        virtual_card.power_on()

    @property
    def atr(self) -> bytes:
        self._check_connected()
        return bytes(self.virtual_card.atr)

    @property
    def extended_length(self) -> bool | None:
        return True  # no reader in between: only the card can refuse

    def _check_connected(self) -> None:
        if self._closed:
            raise TransportError(
                "The connection to the card is closed.", "カードとの接続は閉じられています。"
            )
        if not self._inserted or not self._connected:
            raise CardRemovedError()

    def transmit(self, command: bytes) -> bytes:
        self._check_connected()
        return bytes(self.virtual_card.process_apdu(bytes(command)))

    def reset(self) -> None:
        self._check_connected()
        self.virtual_card.reset()

    def reconnect(self) -> None:
        if not self._inserted:
            raise NoCardError()
        self._connected = True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield  # nothing else can reach an in-process card

    def remove(self) -> None:
        """Take the card out: it loses power (and with it, its security state)."""
        if self._inserted:
            self._inserted = False
            self._connected = False
            self.virtual_card.power_off()

    def insert(self) -> None:
        """Put the card back (power on); the interrupted session still needs reconnect()."""
        if not self._inserted:
            self._inserted = True
            self.virtual_card.power_on()

    def close(self) -> None:
        self._closed = True


# --- PC/SC (pcsc-lite via pyscard) --------------------------------------------------


def _scard() -> Any:
    # Imported lazily: the module must load (and in-process use must work) on a
    # machine without libpcsclite.
    from smartcard import scard

    return scard


def _error_for_result(hresult: int, during: str) -> JPKIError:
    """Map a PC/SC result code to the module's error types."""
    sc = _scard()
    if hresult in (sc.SCARD_W_REMOVED_CARD, sc.SCARD_E_NO_SMARTCARD):
        return CardRemovedError() if during == "transmit" else NoCardError()
    if hresult == sc.SCARD_W_RESET_CARD:
        return CardResetError()
    if hresult in (
        sc.SCARD_E_READER_UNAVAILABLE,
        sc.SCARD_E_UNKNOWN_READER,
        sc.SCARD_E_NO_SERVICE,
        sc.SCARD_E_SERVICE_STOPPED,
        sc.SCARD_E_NO_READERS_AVAILABLE,
    ):
        return ReaderUnavailableError()
    if hresult in (sc.SCARD_W_UNPOWERED_CARD, sc.SCARD_W_UNRESPONSIVE_CARD):
        return NoCardError(
            "The card in the reader does not respond. Please insert it again.",
            "カードが応答しません。カードを置き直してください。",
        )
    return TransportError(
        f"Communication with the card failed during {during} "
        f"(PC/SC {sc.SCardGetErrorMessage(hresult)}).",
        "カードとの通信に失敗しました。",
    )


def _establish_context() -> Any:
    sc = _scard()
    hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
    if hresult != sc.SCARD_S_SUCCESS:
        raise ReaderUnavailableError(
            "The smart card service (pcscd) is not available.",
            "スマートカードサービス（pcscd）が利用できません。",
        )
    return context


def list_readers() -> list[str]:
    """Names of the readers PC/SC knows now (empty when there are none)."""
    sc = _scard()
    context = _establish_context()
    try:
        return _list_readers(context)
    finally:
        sc.SCardReleaseContext(context)


def _list_readers(context: Any) -> list[str]:
    sc = _scard()
    hresult, readers = sc.SCardListReaders(context, [])
    if hresult in (sc.SCARD_E_NO_READERS_AVAILABLE,):
        return []
    if hresult != sc.SCARD_S_SUCCESS:
        raise _error_for_result(hresult, "list readers")
    return list(readers)


def _present_cards(context: Any, readers: list[str], wait_ms: int) -> list[str]:
    """Readers among ``readers`` holding a responsive card, waiting up to ``wait_ms``."""
    sc = _scard()
    states = [(reader, sc.SCARD_STATE_UNAWARE) for reader in readers]
    hresult, states = sc.SCardGetStatusChange(context, 0, states)
    if hresult not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_TIMEOUT):
        raise _error_for_result(hresult, "status")

    def present(state: Any) -> list[str]:
        return [
            reader
            for reader, event_state, _atr in state
            if event_state & sc.SCARD_STATE_PRESENT and not event_state & sc.SCARD_STATE_MUTE
        ]

    found = present(states)
    if found or wait_ms <= 0:
        return found
    watch = [(reader, event_state) for reader, event_state, _atr in states]
    hresult, states = sc.SCardGetStatusChange(context, wait_ms, watch)
    if hresult == sc.SCARD_E_TIMEOUT:
        return []
    if hresult != sc.SCARD_S_SUCCESS:
        raise _error_for_result(hresult, "status")
    return present(states)


def wait_for_card(reader_name: str | None = None, timeout: float = 30.0) -> str:
    """Block until a card is in ``reader_name`` (or in any reader); return that reader.

    Raises ReaderUnavailableError if the named reader never appears, NoCardError
    if no card arrives before ``timeout`` seconds. Whether the card is a My
    Number Card is decided later, by selecting the JPKI application.
    """
    sc = _scard()
    context = _establish_context()
    deadline = time.monotonic() + timeout
    try:
        while True:
            readers = _list_readers(context)
            watched = [r for r in readers if reader_name is None or r == reader_name]
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if watched:
                # Wake up at least every half second to notice readers plugged in.
                found = _present_cards(context, watched, min(remaining_ms, 500))
                if found:
                    return found[0]
            else:
                time.sleep(min(remaining_ms / 1000, 0.2))
            if time.monotonic() >= deadline:
                if not watched:
                    raise ReaderUnavailableError()
                raise NoCardError()
    finally:
        sc.SCardReleaseContext(context)


class PcscTransport:
    """A card in a PC/SC reader, reached through pcsc-lite with pyscard's scard module."""

    def __init__(
        self,
        reader_name: str,
        *,
        exclusive: bool = False,
        extended_length: bool | None = None,
        reset_on_close: bool = True,
    ) -> None:
        self.reader_name = reader_name
        self._exclusive = exclusive
        # False only for a look at the card that must not disturb another connection.
        self._reset_on_close = reset_on_close
        self._extended_length = extended_length
        self._probed_reader = False
        self._context: Any = _establish_context()
        self._card: Any = None
        self._protocol: int = 0
        self._pci: Any = None
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    @classmethod
    def connect(
        cls,
        reader_name: str | None = None,
        *,
        exclusive: bool = False,
        extended_length: bool | None = None,
    ) -> PcscTransport:
        """Connect to the card in ``reader_name``, or in the first reader holding one."""
        if reader_name is None:
            found = [r for r in list_readers() if _card_present_quietly(r)]
            if not found:
                raise NoCardError()
            reader_name = found[0]
        return cls(reader_name, exclusive=exclusive, extended_length=extended_length)

    def _connect(self) -> None:
        sc = _scard()
        share = sc.SCARD_SHARE_EXCLUSIVE if self._exclusive else sc.SCARD_SHARE_SHARED
        hresult, card, protocol = sc.SCardConnect(
            self._context,
            self.reader_name,
            share,
            sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
        )
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error_for_result(hresult, "connect")
        self._card, self._protocol = card, protocol
        self._pci = sc.SCARD_PCI_T1 if protocol == sc.SCARD_PROTOCOL_T1 else sc.SCARD_PCI_T0

    @property
    def atr(self) -> bytes:
        sc = _scard()
        hresult, _reader, _state, _protocol, atr = sc.SCardStatus(self._require_card())
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error_for_result(hresult, "transmit")
        return bytes(atr)

    @property
    def extended_length(self) -> bool | None:
        """From the caller, else from the reader's PC/SC part 10 properties, else unknown."""
        if self._extended_length is None and not self._probed_reader:
            self._probed_reader = True
            self._extended_length = _reader_extended_length(self._require_card())
        return self._extended_length

    def _require_card(self) -> Any:
        if self._card is None:
            raise TransportError(
                "The connection to the card is closed.", "カードとの接続は閉じられています。"
            )
        return self._card

    def transmit(self, command: bytes) -> bytes:
        sc = _scard()
        hresult, response = sc.SCardTransmit(self._require_card(), self._pci, list(command))
        if hresult != sc.SCARD_S_SUCCESS:
            raise self._classify_failure(hresult)
        if len(response) < 2:
            # vpcd answers "success, no bytes" when the card went away mid-command.
            raise self._classify_failure(sc.SCARD_F_COMM_ERROR)
        return bytes(response)

    def _classify_failure(self, hresult: int) -> JPKIError:
        """A failed exchange: find out whether the card was pulled out meanwhile.

        pcscd notices a removal by polling the driver, so a transmit right after
        the removal fails with a communication error before the reader state
        says "empty". Wait briefly for the state to settle before classifying.
        """
        error = _error_for_result(hresult, "transmit")
        if not isinstance(error, TransportError):
            return error
        sc = _scard()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            # The handle remembers a removal even if another card is in the reader now.
            status = sc.SCardStatus(self._card)[0]
            if status in (sc.SCARD_W_REMOVED_CARD, sc.SCARD_E_NO_SMARTCARD):
                return CardRemovedError()
            if status == sc.SCARD_W_RESET_CARD:
                return CardResetError()
            try:
                if not _card_present(self.reader_name, context=self._context):
                    return CardRemovedError()
            except ReaderUnavailableError as gone:
                return gone
            time.sleep(0.05)
        return error

    def reset(self) -> None:
        sc = _scard()
        hresult, self._protocol = sc.SCardReconnect(
            self._require_card(),
            sc.SCARD_SHARE_EXCLUSIVE if self._exclusive else sc.SCARD_SHARE_SHARED,
            sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
            sc.SCARD_RESET_CARD,
        )
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error_for_result(hresult, "transmit")

    def reconnect(self) -> None:
        self._disconnect()
        self._connect()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        sc = _scard()
        card = self._require_card()
        hresult = sc.SCardBeginTransaction(card)
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error_for_result(hresult, "transmit")
        try:
            yield
        finally:
            # Fails harmlessly when the card was removed inside the transaction.
            sc.SCardEndTransaction(card, sc.SCARD_LEAVE_CARD)

    def _disconnect(self) -> None:
        if self._card is not None:
            sc = _scard()
            # Unpower on the way out: the card forgets any verified PIN.
            disposition = sc.SCARD_RESET_CARD if self._reset_on_close else sc.SCARD_LEAVE_CARD
            sc.SCardDisconnect(self._card, disposition)
            self._card = None

    def close(self) -> None:
        self._disconnect()
        if self._context is not None:
            _scard().SCardReleaseContext(self._context)
            self._context = None

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _card_present_quietly(reader_name: str) -> bool:
    # A reader vanishing while readers are listed is just one without a card.
    try:
        return _card_present(reader_name)
    except ReaderUnavailableError:
        return False


def _card_present(reader_name: str, *, context: Any = None) -> bool:
    sc = _scard()
    own = context is None
    if own:
        context = _establish_context()
    try:
        hresult, states = sc.SCardGetStatusChange(
            context, 0, [(reader_name, sc.SCARD_STATE_UNAWARE)]
        )
        if hresult not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_TIMEOUT):
            raise _error_for_result(hresult, "status")
        _reader, event_state, _atr = states[0]
        if event_state & (sc.SCARD_STATE_UNKNOWN | sc.SCARD_STATE_UNAVAILABLE):
            raise ReaderUnavailableError()
        return bool(event_state & sc.SCARD_STATE_PRESENT)
    finally:
        if own:
            sc.SCardReleaseContext(context)


_FEATURE_GET_TLV_PROPERTIES = 0x12
_PROPERTY_MAX_APDU_DATA_SIZE = 0x0A


def _reader_extended_length(card: Any) -> bool | None:
    """Whether the reader carries extended APDUs, from its PC/SC part 10 TLV properties.

    CCID readers report dwMaxAPDUDataSize (0: short APDUs only). Readers and
    drivers without the feature (vpcd among them) leave it unknown: try, and
    fall back to short APDUs on the first refusal.
    """
    sc = _scard()
    hresult, features = sc.SCardControl(card, sc.SCARD_CTL_CODE(3400), [])
    if hresult != sc.SCARD_S_SUCCESS:
        return None
    control_code = feature_control_code(bytes(features), _FEATURE_GET_TLV_PROPERTIES)
    if control_code is None:
        return None
    hresult, properties = sc.SCardControl(card, control_code, [])
    if hresult != sc.SCARD_S_SUCCESS:
        return None
    return extended_length_from_tlv_properties(bytes(properties))


def feature_control_code(features: bytes, feature: int) -> int | None:
    """The control code of ``feature`` in a GET_FEATURE_REQUEST answer (PC/SC part 10)."""
    # Each entry: tag (1 byte), length (always 4), control code (4 bytes, big-endian).
    for index in range(0, len(features) - 5, 6):
        if features[index] == feature and features[index + 1] == 4:
            return int.from_bytes(features[index + 2 : index + 6], "big")
    return None


def extended_length_from_tlv_properties(properties: bytes) -> bool | None:
    """dwMaxAPDUDataSize > 0 from GET_TLV_PROPERTIES (values little-endian); None if absent."""
    index = 0
    while index + 2 <= len(properties):
        tag, length = properties[index], properties[index + 1]
        if tag == _PROPERTY_MAX_APDU_DATA_SIZE:
            return int.from_bytes(properties[index + 2 : index + 2 + length], "little") > 0
        index += 2 + length
    return None
