"""Changing one byte of a signed PDF where no parser notices but every digest does."""

from __future__ import annotations

import re


def change_a_byte_in_the_content(pdf: bytes) -> bytes:
    """Flip one byte in the middle of the first revision's largest stream (the embedded
    font, in the documents WeasyPrint writes): the file still parses, the page may even
    still render, and the signed bytes are no longer those that were signed."""
    first_revision = pdf[: pdf.index(b"%%EOF") + 5]
    streams = [
        (match.end(), end)
        for match in re.finditer(rb"stream\r?\n", first_revision)
        if (end := first_revision.find(b"endstream", match.end())) > 0
    ]
    start, end = max(streams, key=lambda span: span[1] - span[0])
    position = (start + end) // 2
    changed = bytearray(pdf)
    changed[position] ^= 0x01
    return bytes(changed)
