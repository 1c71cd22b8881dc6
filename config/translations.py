"""Compile Livra's committed ``.po`` catalogs into the ``.mo`` files Django reads.

The catalogs are committed; their compiled form is not (``*.mo`` is ignored). ``./livra`` runs
this on every start and the test session runs it first, so a fresh checkout reads in French and
Arabic without GNU gettext on the machine: Babel (a pure-Python package) does the compiling.

    python -m config.translations          # compile what changed, print what was compiled

It needs no Django settings, so it runs before anything else is configured.
"""

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

BASE_DIR = Path(__file__).resolve().parent.parent
TRANSLATED_LANGUAGES = ("fr", "ar")  # English is the source language: no catalog
# makemessages' options for `manage.py update_translations` (and tests/i18n, which checks that
# running it would add nothing): file locations only, so a moved line does not churn the catalogs.
MAKEMESSAGES_OPTIONS = {
    "no_obsolete": True,
    "add_location": "file",
    "ignore_patterns": ["tests", "bench", "var", "node_modules"],
}
# The project's catalog (templates/, config/) and each app's.
CATALOG_ROOTS = ("locale", "orders/locale", "messaging/locale", "automations/locale", "carriers/locale")


LANGUAGE_NAMES = {"fr": "French", "ar": "Arabic"}
_HEADER_PLACEHOLDERS = {
    '"Project-Id-Version: PACKAGE VERSION\\n"': '"Project-Id-Version: Livra\\n"',
    '"Last-Translator: FULL NAME <EMAIL@ADDRESS>\\n"': '"Last-Translator: Livra\\n"',
    '"Language-Team: LANGUAGE <LL@li.org>\\n"': '"Language-Team: Livra\\n"',
    '"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\\n"': None,  # the lines say when; git says it better
    '"Project-Id-Version:  Livra\\n"': '"Project-Id-Version: Livra\\n"',  # as Babel writes it
}


def header_fill(po_path: Path) -> None:
    """Replace the blank header makemessages writes for a new catalog with Livra's."""
    language = po_path.parent.parent.name
    text = po_path.read_text(encoding="utf-8")
    head, separator, rest = text.partition('msgid ""\n')
    if head.startswith("# SOME DESCRIPTIVE TITLE."):
        head = f"# Livra: {LANGUAGE_NAMES.get(language, language)} translation. Words: locale/GLOSSARY.md.\n"
    # A fuzzy header would be left out of the compiled catalog, and Arabic's six plurals with it.
    head = "".join(line for line in head.splitlines(keepends=True) if line.strip() != "#, fuzzy")
    lines = []
    for line in rest.split("\n"):
        if line.startswith('"Generated-By: '):
            continue  # a tool's name, not the catalog's
        if line in _HEADER_PLACEHOLDERS:
            if _HEADER_PLACEHOLDERS[line] is not None:
                lines.append(_HEADER_PLACEHOLDERS[line])
        elif line == '"Language: \\n"':
            lines.append(f'"Language: {language}\\n"')
        else:
            lines.append(line)
    po_path.write_text(head + separator + "\n".join(lines), encoding="utf-8")


def catalog_files(base_dir: Path = BASE_DIR) -> list[Path]:
    return sorted(
        po for root in CATALOG_ROOTS for po in (base_dir / root).glob("*/LC_MESSAGES/*.po") if po.is_file()
    )


def compile_catalogs(base_dir: Path = BASE_DIR, *, force: bool = False) -> list[Path]:
    """Write each catalog's ``.mo`` beside it when the ``.po`` is newer; return the ones written.

    Fuzzy entries are left out, as gettext's msgfmt does: a guess is not a translation.
    """
    written = []
    for po_path in catalog_files(base_dir):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        # Written to a temporary name first: a reader never sees half a catalog.
        partial = mo_path.with_suffix(".mo.partial")
        with partial.open("wb") as mo_file:
            write_mo(mo_file, catalog, use_fuzzy=False)
        partial.replace(mo_path)
        written.append(po_path)
    return written


if __name__ == "__main__":
    compiled = compile_catalogs(force="--force" in sys.argv[1:])
    for path in compiled:
        print(f"compiled {path.relative_to(BASE_DIR)}")
