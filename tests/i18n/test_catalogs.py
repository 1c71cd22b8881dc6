"""The committed catalogs: complete, faithful to their placeholders, one word for one thing."""

import re
from collections import defaultdict

import pytest
from babel.messages.pofile import read_po

from config.translations import BASE_DIR, CATALOG_ROOTS, TRANSLATED_LANGUAGES, catalog_files

CATALOGS = catalog_files()
# %(name)s / %s / %d (Python's % formatting) and {name} (str.format): a translation that drops,
# renames or adds one would fail, or show the wrong value, only when the page renders.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_0-9]*\}")


def language_of(po_path) -> str:
    return po_path.parent.parent.name


def load(po_path):
    with po_path.open("rb") as po_file:
        return read_po(po_file, locale=language_of(po_path))


def entries(po_path):
    """(context, English, translations) for each entry; the header (empty msgid) left out."""
    for message in load(po_path):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        yield message, ids, strings


def relative(po_path) -> str:
    return str(po_path.relative_to(BASE_DIR))


def test_each_app_and_the_project_have_a_french_and_an_arabic_catalog():
    expected = {
        BASE_DIR / root / language / "LC_MESSAGES" / "django.po"
        for root in CATALOG_ROOTS
        for language in TRANSLATED_LANGUAGES
    }

    assert expected <= set(CATALOGS)


@pytest.mark.parametrize("po_path", CATALOGS, ids=relative)
def test_every_string_of_the_catalog_is_translated(po_path):
    untranslated = [ids[0] for message, ids, strings in entries(po_path) if not all(strings)]

    assert untranslated == [], f"{relative(po_path)}: no translation for {untranslated}"


@pytest.mark.parametrize("po_path", CATALOGS, ids=relative)
def test_no_translation_is_a_fuzzy_guess(po_path):
    # msgfmt and Babel leave fuzzy entries out: the page would show English.
    fuzzy = [ids[0] for message, ids, strings in entries(po_path) if message.fuzzy]

    assert fuzzy == [], f"{relative(po_path)}: fuzzy entries {fuzzy}"


@pytest.mark.parametrize("po_path", CATALOGS, ids=relative)
def test_translations_keep_the_placeholders_of_their_english(po_path):
    wrong = []
    for _message, ids, strings in entries(po_path):
        # The plural's English has the count's placeholder; every plural form keeps the singular's
        # or the plural's names (Arabic's forms for 0, 1 and 2 may leave the number out).
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            found = set(PLACEHOLDER.findall(string))
            if not found <= wanted or (len(ids) == 1 and found != wanted):
                wrong.append((ids[0], string))

    assert wrong == [], f"{relative(po_path)}: placeholders differ in {wrong}"


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_a_string_has_one_translation_in_every_catalog_it_appears_in(language):
    translations = defaultdict(set)
    for po_path in CATALOGS:
        if language_of(po_path) == language:
            for message, ids, strings in entries(po_path):
                translations[(message.context, ids)].add(strings)

    differing = {key: found for key, found in translations.items() if len(found) > 1}

    assert differing == {}


def test_arabic_plurals_have_all_six_forms():
    short = []
    for po_path in CATALOGS:
        if language_of(po_path) == "ar":
            for _message, ids, strings in entries(po_path):
                if len(ids) > 1 and len(strings) != 6:
                    short.append((relative(po_path), ids[0], len(strings)))

    assert short == []
