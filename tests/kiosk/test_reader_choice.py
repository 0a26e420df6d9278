"""Which reader the kiosk uses, and how staff's choice is remembered (no PC/SC here;
tests/kiosk/test_readers.py covers the same over pcscd with two vpcd readers)."""

from __future__ import annotations

import json
from pathlib import Path

from commonid_kiosk.reader_choice import (
    AUTOMATIC,
    CONFIGURATION,
    STAFF,
    ReaderChoice,
    initial_choice,
    remember,
)
from commonid_kiosk.reader_monitor import CHECKING, ReaderSnapshot, ReaderState

EMPTY = ReaderState("Reader A", False, "none")
OTHER = ReaderState("Reader B", True, "other")
MY_NUMBER = ReaderState("Reader C", True, "my_number_card")


def test_automatic_prefers_a_my_number_card_then_any_card_then_the_first_reader() -> None:
    assert ReaderSnapshot(True, (EMPTY, OTHER, MY_NUMBER)).selected == MY_NUMBER
    assert ReaderSnapshot(True, (EMPTY, OTHER)).selected == OTHER
    checking = ReaderState("Reader D", True, CHECKING)
    assert ReaderSnapshot(True, (EMPTY, checking)).selected == checking
    assert ReaderSnapshot(True, (EMPTY,)).selected == EMPTY
    assert ReaderSnapshot(True, ()).selected is None
    assert ReaderSnapshot(True, ()).to_json()["reader"] is None


def test_a_chosen_reader_is_used_even_without_a_card_and_even_unplugged() -> None:
    chosen = ReaderChoice("Reader A", STAFF)
    snapshot = ReaderSnapshot(True, (EMPTY, MY_NUMBER), chosen)
    assert snapshot.selected == EMPTY and not snapshot.card_present
    unplugged = ReaderSnapshot(True, (MY_NUMBER,), chosen)
    assert unplugged.selected is None
    # The card session opens the chosen reader (and fails plainly), never another one.
    assert unplugged.reader_for_card == "Reader A"
    assert ReaderSnapshot(True, (EMPTY, MY_NUMBER)).reader_for_card == "Reader C"
    assert ReaderSnapshot(True, (EMPTY,)).reader_for_card is None


def test_the_page_gets_every_readers_card_and_who_chose_the_reader() -> None:
    snapshot = ReaderSnapshot(True, (EMPTY, MY_NUMBER), ReaderChoice("Reader C", CONFIGURATION))
    shown = snapshot.to_json()
    assert shown["readers"] == [
        {"name": "Reader A", "card_present": False, "card": "none"},
        {"name": "Reader C", "card_present": True, "card": "my_number_card"},
    ]
    assert shown["reader"] == "Reader C" and shown["chosen_by"] == "configuration"
    assert shown["card"] == "my_number_card" and shown["card_present"] is True


def test_a_remembered_choice_wins_over_the_configured_reader(tmp_path: Path) -> None:
    choice_file = tmp_path / "state" / "reader-choice.json"
    assert initial_choice(None, choice_file) == ReaderChoice(None, AUTOMATIC)
    assert initial_choice("Reader B", choice_file) == ReaderChoice("Reader B", CONFIGURATION)
    remember(choice_file, "Reader A")
    assert json.loads(choice_file.read_text())["reader"] == "Reader A"
    assert initial_choice("Reader B", choice_file) == ReaderChoice("Reader A", STAFF)
    assert initial_choice("Reader B", None) == ReaderChoice("Reader B", CONFIGURATION)


def test_a_damaged_choice_file_falls_back_to_the_configuration(tmp_path: Path) -> None:
    choice_file = tmp_path / "reader-choice.json"
    for damaged in ("{not json", '{"reader": 7}', "[]", '{"reader": ""}'):
        choice_file.write_text(damaged)
        assert initial_choice("Reader B", choice_file) == ReaderChoice("Reader B", CONFIGURATION)
