"""Everything that can go wrong with a card, as one exception hierarchy.

Each class carries a message in English and in Japanese: the kiosk shows the
Japanese one to the person, logs and operators read the English one
(``str(error)``). No message ever contains a PIN or password: the classes take
no such argument, so a caller cannot put one there by accident.
"""

from __future__ import annotations


class JPKIError(Exception):
    """Base class of every error raised by the reader module."""

    message_en: str = "The card operation failed."
    message_ja: str = "カードの操作に失敗しました。"

    def __init__(self, message_en: str | None = None, message_ja: str | None = None) -> None:
        if message_en is not None:
            self.message_en = message_en
        if message_ja is not None:
            self.message_ja = message_ja
        super().__init__(self.message_en)

    def __str__(self) -> str:
        return self.message_en


# --- the reader and the card as a physical thing ---------------------------------


class ReaderUnavailableError(JPKIError):
    """The reader is gone (unplugged), unknown, or the PC/SC service is not running."""

    message_en = "The card reader is not available. Check that it is connected."
    message_ja = "カードリーダーが利用できません。接続を確認してください。"


class NoCardError(JPKIError):
    """No card is in the reader (or none arrived before the timeout)."""

    message_en = "No card is in the reader. Please insert your My Number Card."
    message_ja = "カードがリーダーにありません。マイナンバーカードを置いてください。"


class CardRemovedError(JPKIError):
    """The card was taken out during the session; whatever was in flight is lost."""

    message_en = "The card was removed during the operation. Please insert it again and retry."
    message_ja = "操作中にカードが取り外されました。カードを置き直して、もう一度お試しください。"


class CardResetError(JPKIError):
    """Another program reset the card: the security state (verified PIN) is gone."""

    message_en = "The card was reset by another program. Please start again."
    message_ja = "他のプログラムによりカードがリセットされました。最初からやり直してください。"


class TransportError(JPKIError):
    """The reader could not exchange an APDU for another reason."""

    message_en = "Communication with the card failed."
    message_ja = "カードとの通信に失敗しました。"


class NotMyNumberCardError(JPKIError):
    """The card does not have the JPKI application: it is not a My Number Card."""

    message_en = "This card is not a My Number Card (the JPKI application was not found)."
    message_ja = "このカードはマイナンバーカードではありません（公的個人認証APが見つかりません）。"


# --- PINs -------------------------------------------------------------------------


class PinFormatError(JPKIError, ValueError):
    """The PIN or password has the wrong format; nothing was sent to the card."""

    message_en = "The PIN or password has the wrong format."
    message_ja = "暗証番号の形式が正しくありません。"


class WrongPinError(JPKIError):
    """The card rejected the PIN; ``tries_left`` attempts remain before it blocks."""

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(
            f"The PIN or password is wrong. {tries_left} "
            f"{'try' if tries_left == 1 else 'tries'} left before it is blocked.",
            f"暗証番号が違います。あと{tries_left}回間違えるとロックされます。",
        )


class PinBlockedError(JPKIError):
    """The PIN is blocked; only a municipal office can unblock it."""

    message_en = "The PIN or password is blocked. It can only be reset at your municipal office."
    message_ja = (
        "暗証番号がロックされています。お住まいの市区町村の窓口で初期化の手続きが必要です。"
    )


class LastTryConfirmationRequired(JPKIError):
    """One try is left: the caller must confirm explicitly before it is used."""

    tries_left = 1
    message_en = (
        "Only one try is left: a wrong PIN or password now blocks it. "
        "Confirm explicitly to continue."
    )
    message_ja = (
        "残りの試行回数は1回です。間違えるとロックされます。続ける場合は明示的に確認してください。"
    )


# --- files, keys and status words --------------------------------------------------


class SecurityStatusNotSatisfiedError(JPKIError):
    """The card refused: the file or key needs a verified PIN (status word 69 82)."""

    message_en = "The card refused access: the PIN or password must be verified first."
    message_ja = "カードがアクセスを拒否しました。先に暗証番号の確認が必要です。"


class CertificateAbsentError(JPKIError):
    """The certificate file holds no certificate (e.g. no signature certificate issued)."""

    message_en = "The card holds no certificate of this kind."
    message_ja = "この種類の電子証明書はカードに格納されていません。"


class MalformedCertificateError(JPKIError):
    """The certificate file does not start with a DER certificate header."""

    message_en = "The certificate on the card is not a valid DER certificate."
    message_ja = "カード内の電子証明書の形式が正しくありません。"


class TruncatedReadError(JPKIError):
    """The card stopped answering before the whole certificate was read."""

    def __init__(self, expected: int, received: int) -> None:
        self.expected = expected
        self.received = received
        super().__init__(
            f"The certificate could only be read in part ({received} of {expected} bytes).",
            f"電子証明書を最後まで読み取れませんでした（{expected}バイト中{received}バイト）。",
        )


class SignatureMismatchError(JPKIError):
    """The card's signature does not verify against the certificate read from it."""

    message_en = "The card's signature does not match its certificate."
    message_ja = "カードの署名が電子証明書と一致しません。"


class UnexpectedStatusWordError(JPKIError):
    """The card answered a command with a status word the module does not expect."""

    def __init__(self, command: str, status_word: int) -> None:
        self.command = command
        self.status_word = status_word
        super().__init__(
            f"The card answered {command} with the unexpected status {status_word:04X}.",
            f"カードが{command}に予期しない応答（{status_word:04X}）を返しました。",
        )
