"""Bring every French and Arabic catalog up to date with the strings marked in the code.

    .venv/bin/python manage.py update_translations

Django's makemessages, with Livra's arguments: each app's strings go to ``<app>/locale``, the
project's (``templates/``, ``config/``) to ``locale/``; tests and benchmarks are not scanned.
New strings arrive untranslated (and fuzzy guesses are marked fuzzy): translate them, following
``locale/GLOSSARY.md``; ``tests/i18n`` fails until every one is. Needs GNU gettext (xgettext).
"""

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.translations import MAKEMESSAGES_OPTIONS, TRANSLATED_LANGUAGES, catalog_files, header_fill


class Command(BaseCommand):
    help = "Update the French and Arabic catalogs (makemessages with Livra's options)."

    def handle(self, *args, **options):
        os.chdir(settings.BASE_DIR)  # makemessages scans the directory it runs in
        call_command("makemessages", locale=list(TRANSLATED_LANGUAGES), **MAKEMESSAGES_OPTIONS)
        for po_path in catalog_files():
            header_fill(po_path)
