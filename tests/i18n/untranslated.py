"""Finds English left on a page rendered in French or Arabic.

A page's visible text (text nodes, and the attributes people read: title, placeholder,
aria-label, alt, button values) is split into words:

- On an Arabic page any Latin word is English left behind, unless it is a name that stays as it
  is (brands, codes: ``NAMES``) or part of an identifier (a word with digits, ``_``, ``.``, ``@``,
  ``/`` or ``-``: order numbers, e-mail addresses, URLs, slugs).
- On a French page a word is English left behind when it appears in Livra's or Django's English
  strings and in none of their French translations ("order", "shipped", "the"): French words
  and the cognates both languages share ("message", "notification") pass.

The pages' data (store, customer, product names) is written in Arabic by the tests, so what
remains is the interface's own text.
"""

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import django
from babel.messages.pofile import read_po

from config.translations import catalog_files

# Stay as they are in every language (locale/GLOSSARY.md), with Django's own English names.
NAMES = {
    "livra",
    "whatsapp",
    "sms",
    "shopify",
    "woocommerce",
    "youcan",
    "twilio",
    "sendgrid",
    "meta",
    "api",
    "json",
    "url",
    "urls",
    "hmac",
    "smtp",
    "cod",
    "mad",
    "eur",
    "usd",
    "sid",
    "webhook",
    "webhooks",
    "slack",
    "django",
    "english",
    "français",
    "cloud",
    "openapi",
    "swagger",
    "redoc",
    "csv",
    "pdf",
    "utc",
    "iso",
    "id",
    "ids",
    "sha",
    "bcc",
    "spf",
    "dkim",
    "http",
    "https",
    "html",
    "post",
    "get",
    "accountsid",
    "authtoken",
}
SKIPPED_ELEMENTS = {"script", "style", "textarea", "pre", "code"}
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
LATIN_WORD = re.compile(r"^[A-Za-zÀ-ÿ'’]+$")
IDENTIFIER_MARKS = re.compile(r"[0-9_.@/:#=\-]")


class _PageText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in SKIPPED_ELEMENTS:
            self._skipping.append(tag)
        if self._skipping:
            return
        self.texts.extend(value for name, value in attrs if name in READ_ATTRIBUTES and value)
        if tag == "input" and attributes.get("type") in {"submit", "button"} and attributes.get("value"):
            self.texts.append(attributes["value"])

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.texts.append(" ".join(data.split()))


def page_texts(html: str) -> list[str]:
    parser = _PageText()
    parser.feed(html)
    return parser.texts


def words(text: str):
    for token in text.split():
        token = token.strip("()[]{},;:!?«»\"'“”‹›…|*•→←·")
        if len(token) >= 3 and LATIN_WORD.match(token) and not IDENTIFIER_MARKS.search(token):
            yield token


@cache
def _catalog_words(language: str) -> tuple[frozenset, frozenset]:
    """(words of the English strings, words of their translations) in Livra's and Django's catalogs."""
    django_locale = Path(django.__file__).parent / "contrib" / "admin" / "locale"
    paths = [po for po in catalog_files() if po.parent.parent.name == language]
    paths += [django_locale / language / "LC_MESSAGES" / "django.po"]
    english, translated = set(), set()
    for path in paths:
        with path.open("rb") as po_file:
            for message in read_po(po_file):
                if not message.id:
                    continue
                ids = message.id if isinstance(message.id, tuple) else (message.id,)
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                english.update(word.lower() for text in ids for word in words(text))
                translated.update(word.lower() for text in strings for word in words(text))
    return frozenset(english), frozenset(translated)


def english_left(html: str, language: str) -> list[str]:
    """The texts of the page that still hold English words, each with the words."""
    found = []
    if language == "ar":

        def is_english(word):
            return word.lower() not in NAMES
    else:
        english, translated = _catalog_words(language)

        def is_english(word):
            lowered = word.lower()
            return lowered in english and lowered not in translated and lowered not in NAMES

    for text in page_texts(html):
        english_words = [word for word in words(text) if is_english(word)]
        if english_words:
            found.append(f"{text!r}: {', '.join(english_words)}")
    return found
