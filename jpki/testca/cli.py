"""`commonid testca ...` and `commonid card ...`: the test CA and virtual card files."""

from __future__ import annotations

import typer

testca_app = typer.Typer(help="J-LIS-profile test CA: hierarchies, persons, CRLs, OCSP.")
card_app = typer.Typer(help="Virtual My Number Card files for the emulator.")
