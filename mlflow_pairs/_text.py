"""Reading the text files users write (configuration, ``.env``, price CSVs) as Windows
editors save them too: with a byte-order mark, in UTF-16, with CRLF line endings."""

from __future__ import annotations

import codecs

__all__ = ["decode_text", "encoding_of"]

# UTF-8 first: its mark is not a prefix of the others.
_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def encoding_of(head: bytes) -> str:
    """The codec for a file that starts with ``head``: by its byte-order mark (UTF-8 or
    UTF-16, the mark dropped when decoding), else UTF-8."""
    for mark, codec in _MARKS:
        if head.startswith(mark):
            return codec
    return "utf-8"


def decode_text(raw: bytes) -> str:
    """``raw`` decoded (see :func:`encoding_of`), with CRLF and CR line endings as LF.

    Raises :class:`UnicodeDecodeError` for bytes that are not text in that encoding.
    """
    text = raw.decode(encoding_of(raw[:4]))
    return text.replace("\r\n", "\n").replace("\r", "\n")
