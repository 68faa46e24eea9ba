"""File names as the tool shows and stores them: the one owner of name escaping.

Why: a file name is attacker-controlled text. On Linux it is any bytes, so it may not be valid
UTF-8 (Python then holds it with lone surrogates, ``surrogateescape``), and it may hold terminal
escape sequences or bidirectional controls (U+202E turns ``gpj.exe`` into ``exe.jpg`` on screen).
Shown raw, such a name can rewrite a terminal or mislead a reader of the report; stored raw, it
cannot even be encoded as UTF-8 and the JSON, CSV and case records are lost.

Two rules, used everywhere:

* :func:`display` is how a name (or any message quoting one) is *shown*: on stdout/stderr, in
  the HTML report, in CSV cells. Control, format (bidi) and separator characters become
  ``\\u202e``-style escapes and undecodable bytes become ``\\xff``; printable text is unchanged.
* :func:`encode_name` / :func:`decode_name` is how a name is *stored* in JSON: the display form in
  the field itself and, only when the name is not valid UTF-8, the exact bytes in base64 in
  ``<field>_b64`` so the name can be recovered byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from typing import Any

#: Unicode categories never shown raw: controls, format characters (bidi overrides, zero-width
#: joiners), line/paragraph separators, surrogates, private use and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
B64_SUFFIX = "_b64"


def _escape(ch: str) -> str:
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
        return f"\\x{cp - 0xDC00:02x}"
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def display(text: Any) -> str:
    """``text`` with every unsafe character escaped; safe to print, to put in HTML or a CSV."""
    s = "" if text is None else str(text)
    if s.isprintable() and s.isascii():
        return s
    out = []
    for ch in s:
        if ch == " " or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def is_valid_utf8(name: str) -> bool:
    """False for a name holding undecodable bytes (lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def raw_bytes(name: str) -> bytes:
    """The name's bytes as the file system holds them."""
    return os.fsencode(name)


def encode_name(key: str, name: str) -> dict[str, str]:
    """JSON fields for a stored name: ``{key: name}``, or ``{key: display, key_b64: bytes}``."""
    if is_valid_utf8(name):
        return {key: name}
    return {
        key: display(name),
        key + B64_SUFFIX: base64.b64encode(raw_bytes(name)).decode("ascii"),
    }


def decode_name(data: dict[str, Any], key: str) -> str:
    """The exact name stored by :func:`encode_name` (raises KeyError when ``key`` is absent)."""
    b64 = data.get(key + B64_SUFFIX)
    if isinstance(b64, str):
        try:
            return os.fsdecode(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError):
            pass
    return data[key]


def text_safe(text: str) -> str:
    """Free text (an error message, a note) that may quote a name: undecodable bytes escaped so
    it can always be written as UTF-8; everything else kept as is."""
    return text if is_valid_utf8(text) else display(text)
