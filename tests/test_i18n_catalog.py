"""Every string a person reads has a Chinese translation, pure: Babel extracts the marked
strings of hub_ext/, spawner/ and branding/ (babel.cfg's methods; keywords _, N_, ngettext)
and each must have a non-empty, non-fuzzy zh_CN translation in the merged catalogs
(hub_ext.i18n.translations), with the same placeholders. Every .po file parses and has the
header the loader relies on; no msgid is translated two ways in two files.

A failure lists what is missing as file:line  msgid, so a translator can fix them all at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import PoFileError, read_po
from babel.util import pathmatch

from hub_ext import i18n

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("hub_ext", "spawner", "branding")
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
LANG = "zh_CN"
PO_FILES = sorted((i18n.LOCALE_DIR / LANG / "LC_MESSAGES").glob("*.po"))
HEADER = {"Language": "zh_CN", "Plural-Forms": "nplurals=1; plural=0;", "Content-Type": "text/plain; charset=UTF-8"}
# %(name)s, %(num)d, %s, %r ... (not %%, a literal percent sign)
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]?\d*(?:\.\d+)?([sdifrx%])")


def placeholders(text: str) -> list[str]:
    """The placeholders of a message, named ones by name, positional ones by kind, sorted."""
    return sorted(name or f"%{kind}" for name, kind in PLACEHOLDER.findall(text) if kind != "%")


def extracted() -> dict[str, tuple[str | tuple[str, str], list[str]]]:
    """msgid -> (msgid or (singular, plural), the file:line places it is marked)."""
    with (REPO / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    found: dict[str, tuple] = {}
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            rel = path.relative_to(REPO).as_posix()
            if not path.is_file() or "__pycache__" in rel:
                continue
            method, options = next(((m, options_map.get(p, {})) for p, m in method_map if pathmatch(p, rel)),
                                   (None, None))
            if method in (None, "ignore"):
                continue
            for lineno, message, _comments, _context in extract_from_file(method, str(path), KEYWORDS,
                                                                          options=options):
                key = message[0] if isinstance(message, tuple) else message
                if key:
                    found.setdefault(key, (message, []))[1].append(f"{rel}:{lineno}")
    return found


def po_messages() -> dict[str, dict[str, object]]:
    """msgid -> {po file name: message} over every zh_CN .po file."""
    seen: dict[str, dict[str, object]] = {}
    for po in PO_FILES:
        with po.open("rb") as f:
            for message in read_po(f, locale=LANG, abort_invalid=True):
                key = message.id[0] if isinstance(message.id, tuple) else message.id
                if key:
                    seen.setdefault(key, {})[po.name] = message
    return seen


def strings(message) -> list[str]:
    return [s for s in (message.string if isinstance(message.string, tuple) else (message.string,))]


def test_the_extraction_finds_the_marked_strings():
    """The test below means something only if extraction sees Python, templates and plurals."""
    found = extracted()
    places = [p for _m, ps in found.values() for p in ps]
    assert any(p.endswith(".py") or ".py:" in p for p in places)
    assert any(".html:" in p for p in places), "no template string extracted: check babel.cfg"
    assert any(isinstance(m, tuple) for m, _p in found.values()), "no plural extracted"
    assert "usage: " in found  # hub_ext/cli/language.py: argparse's words


def test_every_po_file_parses_and_has_the_right_header():
    assert PO_FILES, f"no catalogs in {i18n.LOCALE_DIR / LANG / 'LC_MESSAGES'}"
    problems = []
    for po in PO_FILES:
        try:
            with po.open("rb") as f:
                read_po(f, locale=LANG, abort_invalid=True)
        except (PoFileError, ValueError, UnicodeDecodeError) as e:
            problems.append(f"{po.name}: does not parse: {e}")
            continue
        text = po.read_text(encoding="utf-8")
        for name, value in HEADER.items():
            line = f'"{name}: {value}\\n"'
            if line not in text and not (name == "Content-Type" and line.lower() in text.lower()):  # utf-8 too
                problems.append(f"{po.name}: the header needs {name}: {value}")
    assert not problems, "\n".join(problems)


def test_every_marked_string_is_translated_into_chinese():
    catalog = i18n.translations(LANG)._catalog
    po = po_messages()
    missing = []
    for key, (message, places) in sorted(extracted().items(), key=lambda kv: kv[1][1][0]):
        in_po = [m for m in po.get(key, {}).values() if not m.fuzzy and all(strings(m))]
        loaded = key in catalog or (key, 0) in catalog
        if not in_po or not loaded:
            why = "fuzzy" if po.get(key) and any(m.fuzzy for m in po[key].values()) else "no translation"
            missing.append(f"{places[0]}  {key!r} ({why})")
    assert not missing, f"{len(missing)} marked string(s) without a zh_CN translation:\n" + "\n".join(missing)


def test_translations_keep_the_placeholders():
    wrong = []
    for key, by_file in po_messages().items():
        for name, message in by_file.items():
            source = message.id[1] if isinstance(message.id, tuple) else message.id  # zh: one form for all n
            want = placeholders(source)
            for text in strings(message):
                if text and placeholders(text) != want:
                    wrong.append(f"{name}: {key!r}: {placeholders(text)} instead of {want}")
    assert not wrong, "translations whose placeholders differ from the English:\n" + "\n".join(wrong)


def test_no_msgid_is_translated_two_ways():
    clashes = []
    for key, by_file in po_messages().items():
        texts = {tuple(strings(m)) for m in by_file.values() if not m.fuzzy and all(strings(m))}
        if len(texts) > 1:
            clashes.append(f"{key!r}: " + "; ".join(f"{n}: {strings(m)}" for n, m in by_file.items()))
    assert not clashes, "msgids translated differently in two .po files:\n" + "\n".join(clashes)


@pytest.mark.parametrize("text, expected", [
    ("Reset %(name)s's home", ["name"]), ("%(num)d students", ["num"]), ("100%% done", []),
    ("%s and %r", ["%r", "%s"]), ("%(a)s %(a)s", ["a", "a"]),
])
def test_placeholders(text, expected):
    assert placeholders(text) == expected


def test_no_f_string_is_marked():
    """`_(f"...")` is looked up after its values are filled in, so it is never translated
    (Babel skips it with a warning): named placeholders instead, `_("... %(name)s", name=x)`."""
    marked = re.compile(r"""\b(?:_|N_|ngettext)\(\s*[rbu]?f["']""")
    found = [f"{path.relative_to(REPO)}:{n}" for top in SOURCES for path in sorted((REPO / top).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if marked.search(line)]
    assert not found, "f-strings marked for translation (never translated):\n" + "\n".join(found)
