"""What the person reads when something ends or goes wrong: one stable code, two languages.

Every explanation says what happened and what to do next. Codes are the
service's problem codes and reason codes where they exist (``session_expired``,
``certificate_revoked``, ``verification_stale``), and the kiosk's own for card
events (``wrong_pin``, ``card_removed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jpki.errors import (
    CardRemovedError,
    CardResetError,
    JPKIError,
    LastTryConfirmationRequired,
    NoCardError,
    NotMyNumberCardError,
    PinBlockedError,
    PinFormatError,
    ReaderUnavailableError,
    WrongPinError,
)


@dataclass(frozen=True)
class Explanation:
    code: str
    title_ja: str
    title_en: str
    advice_ja: str
    advice_en: str
    tries_left: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


_ASK_STAFF_JA = "係員にお声がけください。"
_ASK_STAFF_EN = "Please ask the staff."

_TEXTS: dict[str, tuple[str, str, str, str]] = {
    # code: (title_ja, title_en, advice_ja, advice_en)
    "verified": (
        "本人確認が完了しました",
        "Your identity has been verified",
        "ご利用ありがとうございました。",
        "Thank you.",
    ),
    "reuse_granted": (
        "確認済みの本人情報を提供しました",
        "Your verified identity was shared",
        "以前の本人確認の結果を、同意いただいた範囲で提供しました。",
        "The result of your earlier verification was shared as you agreed.",
    ),
    "presentation_signed": (
        "カードで提示に署名しました",
        "Your card signed the presentation",
        "ウォレットが提示を完了します。カードをお取りください。",
        "Your wallet completes the presentation. Please take your card.",
    ),
    "document_signed": (
        "本人確認と同意書への電子署名が完了しました",
        "Your identity was verified and the consent document signed",
        "署名した同意書は申込み先に届けられます。",
        "The signed document goes to the provider.",
    ),
    "document_declined": (
        "本人確認は完了しました。同意書には署名しませんでした",
        "Your identity was verified; you chose not to sign the document",
        "署名しなかったことは申込み先に伝えられます。",
        "The provider is told that you did not sign.",
    ),
    "document_not_signed": (
        "本人確認は完了しましたが、同意書に署名できませんでした",
        "Your identity was verified, but the document could not be signed",
        "同意書への署名が必要な場合は、申込み先にお問い合わせください。" + _ASK_STAFF_JA,
        "If the provider needs the signed document, please contact them. " + _ASK_STAFF_EN,
    ),
    "document_signing_closed": (
        "署名の受付時間を過ぎました",
        "The time to sign has passed",
        "本人確認は完了しています。同意書への署名が必要な場合は、申込み先で新しい受付番号を発行してもらってください。",
        "Your identity was verified. If the provider needs the signed document, "
        "ask them for a new code.",
    ),
    "declined": (
        "同意されなかったため、中止しました",
        "Stopped: you did not agree",
        "情報は提供されていません。",
        "No information was shared.",
    ),
    "cancelled": (
        "中止しました",
        "Cancelled",
        "情報は提供されていません。",
        "No information was shared.",
    ),
    "wrong_pin": (
        "暗証番号が違います",
        "The PIN is wrong",
        "数字4桁の利用者証明用暗証番号をもう一度入力してください。",
        "Enter your 4-digit user authentication PIN again.",
    ),
    "wrong_password": (
        "署名用パスワードが違います",
        "The signature password is wrong",
        "英数字6〜16桁の署名用パスワードをもう一度入力してください。",
        "Enter your 6 to 16 character signature password again.",
    ),
    "last_try": (
        "残り1回です",
        "One try left",
        "次に間違えるとロックされ、市区町村の窓口での手続きが必要になります。"
        "自信がない場合は中止してください。",
        "A wrong entry now locks it, and unlocking needs a visit to your municipal office. "
        "If you are not sure, cancel.",
    ),
    "pin_blocked": (
        "暗証番号がロックされています",
        "The PIN is locked",
        "お住まいの市区町村の窓口で暗証番号の初期化を行ってください。このカードでは続けられません。",
        "Have the PIN reset at your municipal office. This card cannot be used here until then.",
    ),
    "password_blocked": (
        "署名用パスワードがロックされています",
        "The signature password is locked",
        "お住まいの市区町村の窓口でパスワードの初期化を行ってください。",
        "Have the password reset at your municipal office.",
    ),
    "pin_format": (
        "入力の形式が正しくありません",
        "That entry has the wrong format",
        "暗証番号は数字4桁、署名用パスワードは英大文字と数字の6〜16桁です。",
        "The PIN is 4 digits; the signature password is 6 to 16 letters A-Z or digits.",
    ),
    "card_removed": (
        "カードが取り外されました",
        "The card was removed",
        "カードをもう一度リーダーに置いて、そのままにしてください。",
        "Put the card back on the reader and leave it there.",
    ),
    "no_card": (
        "カードが見つかりません",
        "No card found",
        "マイナンバーカードをリーダーに置いてください。",
        "Put your My Number Card on the reader.",
    ),
    "not_my_number_card": (
        "マイナンバーカードではありません",
        "This is not a My Number Card",
        "マイナンバーカード（個人番号カード）をお使いください。",
        "Please use your My Number Card (Individual Number Card).",
    ),
    "reader_unavailable": (
        "カードリーダーが使えません",
        "The card reader is not available",
        _ASK_STAFF_JA,
        _ASK_STAFF_EN,
    ),
    "card_error": (
        "カードを読み取れませんでした",
        "The card could not be read",
        "カードを置き直して、もう一度お試しください。",
        "Put the card down again and retry.",
    ),
    "certificate_expired": (
        "電子証明書の有効期限が切れています",
        "The certificate on the card has expired",
        "お住まいの市区町村の窓口で電子証明書の更新を行ってください。",
        "Renew the certificate at your municipal office.",
    ),
    "certificate_not_yet_valid": (
        "電子証明書がまだ有効になっていません",
        "The certificate on the card is not valid yet",
        _ASK_STAFF_JA,
        _ASK_STAFF_EN,
    ),
    "certificate_revoked": (
        "電子証明書が失効しています",
        "The certificate on the card has been revoked",
        "お住まいの市区町村の窓口で電子証明書の再発行を行ってください。",
        "Have a new certificate issued at your municipal office.",
    ),
    "certificate_rejected": (
        "電子証明書を確認できませんでした",
        "The certificate could not be verified",
        _ASK_STAFF_JA,
        _ASK_STAFF_EN,
    ),
    "sign_certificate_revoked": (
        "以前の確認に使った電子証明書が失効しています",
        "The certificate of your earlier verification has been revoked",
        "署名用パスワードを使った本人確認をもう一度行ってください。",
        "Please verify again with your signature password.",
    ),
    "no_verified_identity": (
        "確認済みの本人情報がありません",
        "No earlier verification was found",
        "署名用パスワードを使った本人確認を行ってください。",
        "Please verify your identity with your signature password first.",
    ),
    "verification_stale": (
        "以前の本人確認から時間が経っています",
        "Your earlier verification is too old",
        "署名用パスワードを使った本人確認をもう一度行ってください。",
        "Please verify again with your signature password.",
    ),
    "revocation_unavailable": (
        "失効情報を確認できませんでした",
        "Revocation data is not available",
        "しばらくしてからもう一度お試しください。" + _ASK_STAFF_JA,
        "Please try again later. " + _ASK_STAFF_EN,
    ),
    "session_not_found": (
        "受付番号が見つかりません",
        "Unknown code",
        "番号を確かめて、もう一度入力してください。",
        "Check the code and enter it again.",
    ),
    "session_expired": (
        "受付の有効期限が切れました",
        "This request has expired",
        "申込み先で新しい受付番号を発行してもらってください。",
        "Ask the provider for a new code.",
    ),
    "session_used": (
        "この受付番号はすでに使われています",
        "This code was already used",
        "申込み先で新しい受付番号を発行してもらってください。",
        "Ask the provider for a new code.",
    ),
    "service_unreachable": (
        "サービスに接続できません",
        "The service cannot be reached",
        "しばらくしてからもう一度お試しください。" + _ASK_STAFF_JA,
        "Please try again later. " + _ASK_STAFF_EN,
    ),
    "service_error": (
        "処理できませんでした",
        "The request could not be completed",
        _ASK_STAFF_JA,
        _ASK_STAFF_EN,
    ),
}

# Service codes that mean "this user code cannot be used any more".
_USED_SESSION_CODES = frozenset(
    {"challenge_replayed", "consent_already_recorded", "consent_required"}
)
_CERTIFICATE_CODES = {
    "certificate_expired": "certificate_expired",
    "certificate_not_yet_valid": "certificate_not_yet_valid",
    "certificate_revoked": "certificate_revoked",
}


def explain(code: str, *, tries_left: int | None = None) -> Explanation:
    """The explanation for ``code``; unknown codes get the generic service text."""
    title_ja, title_en, advice_ja, advice_en = _TEXTS.get(code, _TEXTS["service_error"])
    return Explanation(code, title_ja, title_en, advice_ja, advice_en, tries_left)


def explain_service_code(code: str) -> Explanation:
    """A service problem or reason code, folded onto what the person can act on."""
    if code in _TEXTS:
        return explain(code)
    if code in _USED_SESSION_CODES:
        return explain("session_used")
    if code in _CERTIFICATE_CODES:
        return explain(_CERTIFICATE_CODES[code])
    if code.startswith("certificate_") or code == "signature_invalid":
        return explain("certificate_rejected")
    return explain("service_error")


def explain_document_code(code: str) -> Explanation:
    """The service refused the document (or could not give it): the identity stays verified."""
    if code in ("document_signing_closed", "service_unreachable"):
        return explain(code)
    return explain("document_not_signed")


def explain_card_error(error: JPKIError, *, password: bool = False) -> Explanation:
    """A card error as the person should read it (the PIN itself is never in an error)."""
    if isinstance(error, WrongPinError):
        return explain("wrong_password" if password else "wrong_pin", tries_left=error.tries_left)
    if isinstance(error, LastTryConfirmationRequired):
        return explain("last_try", tries_left=1)
    if isinstance(error, PinBlockedError):
        return explain("password_blocked" if password else "pin_blocked", tries_left=0)
    if isinstance(error, PinFormatError):
        return explain("pin_format")
    if isinstance(error, CardRemovedError | CardResetError):
        return explain("card_removed")
    if isinstance(error, NoCardError):
        return explain("no_card")
    if isinstance(error, NotMyNumberCardError):
        return explain("not_my_number_card")
    if isinstance(error, ReaderUnavailableError):
        return explain("reader_unavailable")
    return explain("card_error")
