"""The card file: the virtual card's memory on disk (keys, certificates, PIN hashes, counters)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD, CardMaterial
from tests.jpki.test_emulator import (
    AUTH_PIN_EF,
    SIGN_CERT,
    SIGN_PASSWORD_EF,
    read,
    select_ap,
    select_ef,
    verify,
)


def _all_strings(document: Any) -> list[str]:
    if isinstance(document, dict):
        return [text for value in document.values() for text in _all_strings(value)]
    if isinstance(document, list):
        return [text for value in document for text in _all_strings(value)]
    return [document] if isinstance(document, str) else []


def test_card_file_is_private_and_holds_no_pin(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == 1
    strings = _all_strings(document)
    assert AUTH_PIN not in strings
    assert SIGN_PASSWORD not in strings
    assert not any(AUTH_PIN in text or SIGN_PASSWORD in text for text in strings if len(text) < 40)
    assert [path.name] == [entry.name for entry in tmp_path.iterdir()], "no temp file left"


def test_saved_card_loads_with_the_same_keys_certificates_and_pins(
    card_state: CardState, tmp_path: Path
) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    loaded = CardState.load(path)
    assert loaded.auth_certificate == card_state.auth_certificate
    assert loaded.sign_certificate == card_state.sign_certificate
    assert loaded.auth_ca_certificate == card_state.auth_ca_certificate
    assert loaded.sign_ca_certificate == card_state.sign_ca_certificate
    assert (
        loaded.sign_private_key.private_numbers() == card_state.sign_private_key.private_numbers()
    )
    assert loaded.auth_pin.matches(AUTH_PIN.encode())
    assert not loaded.auth_pin.matches(b"4321")
    assert loaded.sign_password.matches(SIGN_PASSWORD.encode())


def test_save_replaces_an_existing_file(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    card_state.auth_pin.tries_left = 1
    card_state.save(path)
    assert CardState.load(path).auth_pin.tries_left == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wrong_pin_is_written_before_the_answer(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    card = VirtualMyNumberCard(card_state, state_path=path)
    select_ap(card)
    assert verify(card, AUTH_PIN_EF, "0000") == 0x63C2
    assert CardState.load(path).auth_pin.tries_left == 2
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000
    assert CardState.load(path).auth_pin.tries_left == 3


def test_blocked_card_stays_blocked_after_reload(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    card = VirtualMyNumberCard(card_state, state_path=path)
    select_ap(card)
    for _ in range(5):
        verify(card, SIGN_PASSWORD_EF, "WRONG1")
    restarted = VirtualMyNumberCard(CardState.load(path), state_path=path)
    select_ap(restarted)
    assert verify(restarted, SIGN_PASSWORD_EF, None) == 0x63C0
    assert verify(restarted, SIGN_PASSWORD_EF, SIGN_PASSWORD) == 0x6984
    select_ef(restarted, SIGN_CERT)
    assert read(restarted, 0, 4)[1] == 0x6982


def test_changed_pin_survives_reload(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = VirtualMyNumberCard(card_state, state_path=path)
    select_ap(card)
    verify(card, AUTH_PIN_EF, AUTH_PIN)
    assert card.process_apdu(bytes.fromhex("0024018004") + b"2468") == b"\x90\x00"
    loaded = CardState.load(path)
    assert loaded.auth_pin.matches(b"2468")
    assert not loaded.auth_pin.matches(AUTH_PIN.encode())


def test_unknown_version_is_refused(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    document = json.loads(path.read_text())
    document["version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="version"):
        CardState.load(path)


def test_impossible_counter_is_refused(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    document = json.loads(path.read_text())
    document["auth"]["pin"]["tries_left"] = 7
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="counter"):
        CardState.load(path)


@pytest.mark.parametrize(
    ("auth_pin", "sign_password"),
    [
        ("123", "ABC123"),
        ("12345", "ABC123"),
        ("12a4", "ABC123"),
        ("1234", "AB12"),
        ("1234", "ABC-123"),
    ],
)
def test_create_refuses_pins_outside_the_jpki_formats(
    card_material: CardMaterial, auth_pin: str, sign_password: str
) -> None:
    with pytest.raises(ValueError):
        card_material.new_card_state(auth_pin=auth_pin, sign_password=sign_password)


def test_create_upper_cases_the_password(card_material: CardMaterial) -> None:
    state = card_material.new_card_state(sign_password="abc123")
    assert state.sign_password.matches(b"ABC123")
    assert state.auth_pin.tries_left == 3
    assert state.sign_password.tries_left == 5
