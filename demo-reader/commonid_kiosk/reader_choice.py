"""Which reader the kiosk uses: chosen by staff on the page, else configured, else automatic.

Staff's choice is remembered in a small JSON file so that it survives a
restart of the agent (a counter's readers stay where they are). It names a
reader, nothing about a person or a card.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STAFF = "staff"  # chosen on the kiosk page
CONFIGURATION = "configuration"  # --reader / COMMONID_KIOSK_READER
AUTOMATIC = "automatic"  # nothing chosen: the first reader holding a My Number Card


@dataclass(frozen=True)
class ReaderChoice:
    reader: str | None
    by: str


def initial_choice(configured_reader: str | None, choice_file: Path | None) -> ReaderChoice:
    """What the agent starts with: a remembered staff choice wins over the configuration."""
    remembered = _read(choice_file) if choice_file is not None else None
    if remembered is not None:
        return ReaderChoice(remembered, STAFF)
    if configured_reader is not None:
        return ReaderChoice(configured_reader, CONFIGURATION)
    return ReaderChoice(None, AUTOMATIC)


def remember(choice_file: Path, reader: str) -> None:
    """Write the choice atomically (a half-written file would lose it)."""
    choice_file.parent.mkdir(parents=True, exist_ok=True)
    record = {"reader": reader, "chosen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    partial = choice_file.with_name(choice_file.name + ".partial")
    partial.write_text(json.dumps(record, ensure_ascii=False))
    os.replace(partial, choice_file)


def _read(choice_file: Path) -> str | None:
    try:
        reader = json.loads(choice_file.read_text())["reader"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        # A damaged file must not stop the kiosk: fall back, and say so in the log.
        log.warning("ignoring the reader choice in %s: %s", choice_file, error)
        return None
    return reader if isinstance(reader, str) and reader else None
