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
remains is the interface's own text. Text whose language the page declares (an element with a
``lang`` attribute: a message template's English body, a customer's own words) is that
language's, not the page's, and is not read; nor are time zone names (``America/Mexico City``).
"""

import re
import zoneinfo
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
    "xlsx",
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
    "sandbox",
    "email",  # the e-mail channel's code, in JSON and template names
    "control",  # keys named in Django's own Arabic help for multiple choice
    "command",
}
TIME_ZONES = frozenset(zoneinfo.available_timezones())
SKIPPED_ELEMENTS = {"script", "style", "textarea", "pre", "code"}
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
LATIN_WORD = re.compile(r"^[A-Za-zÀ-ÿ'’]+$")
IDENTIFIER_MARKS = re.compile(r"[0-9_.@/:#=\-{}]")


class _PageText(HTMLParser):
    """The page's readable texts, leaving out code, scripts and text in another declared language."""

    def __init__(self, language: str):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.texts: list[str] = []
        self._skipped_tag = None  # the element whose content is not read, and how deep in it we are
        self._skipped_depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self._skipped_tag is not None:
            self._skipped_depth += tag == self._skipped_tag
            return
        other_language = attributes.get("lang") not in (None, "", self.language)
        if tag in SKIPPED_ELEMENTS or other_language:
            self._skipped_tag, self._skipped_depth = tag, 1
            return
        if tag == "img" and "/admin/img/icon-" in (attributes.get("src") or ""):
            return  # Django's yes/no/unknown icons: their alt ("True", "False") is Django's, untranslated
        self.texts.extend(value for name, value in attrs if name in READ_ATTRIBUTES and value)
        if tag == "input" and attributes.get("type") in {"submit", "button"} and attributes.get("value"):
            self.texts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag == self._skipped_tag:
            self._skipped_depth -= 1
            if self._skipped_depth == 0:
                self._skipped_tag = None

    def handle_data(self, data):
        text = " ".join(data.split())
        if self._skipped_tag is None and text and text.replace(" ", "_") not in TIME_ZONES:
            self.texts.append(text)


def page_texts(html: str, language: str) -> list[str]:
    parser = _PageText(language)
    parser.feed(html)
    return parser.texts


def words(text: str):
    for token in text.split():
        token = token.strip("()[],;:!?«»\"'“”‹›…|*•→←·")
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


def _provider_and_carrier_names() -> set[str]:
    """The names adapters are registered under (sandbox, twilio, the tests' scripted one…)."""
    from carriers.adapters import adapter_names
    from messaging.providers import provider_names

    return {name.lower() for name in [*provider_names(), *adapter_names()]}


def english_left(html: str, language: str) -> list[str]:
    """The texts of the page that still hold English words, each with the words."""
    found = []
    names = NAMES | _provider_and_carrier_names()
    if language == "ar":

        def is_english(word):
            return word.lower() not in names
    else:
        english, translated = _catalog_words(language)

        def is_english(word):
            lowered = word.lower()
            return lowered in english and lowered not in translated and lowered not in names

    for text in page_texts(html, language):
        english_words = [word for word in words(text) if is_english(word)]
        if english_words:
            found.append(f"{text!r}: {', '.join(english_words)}")
    return found
