"""Every string marked in the code is in the committed catalogs, and nothing stale is left there.

Runs `manage.py update_translations` (makemessages) on a copy of the project and compares what it
would extract with what is committed.
"""

import os
import shutil
import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from config.translations import BASE_DIR, catalog_files

pytestmark = pytest.mark.skipif(
    shutil.which("xgettext") is None, reason="needs GNU gettext (xgettext): apt-get install gettext"
)


def message_keys(po_path) -> set:
    with po_path.open("rb") as po_file:
        return {(message.context, message.id) for message in read_po(po_file) if message.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Catalog path (relative) → the keys makemessages finds, run on a copy of the project."""
    copy = tmp_path_factory.mktemp("extraction") / "livra"
    shutil.copytree(
        BASE_DIR,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv", "var", "tests", "bench", "__pycache__", "*.mo"),
    )
    env = {**os.environ, "LIVRA_VAR_DIR": str(copy / "var"), "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "update_translations"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    return {po.relative_to(copy): message_keys(po) for po in catalog_files(copy)}


def test_updating_the_catalogs_creates_no_new_catalog(extracted):
    committed = {po.relative_to(BASE_DIR) for po in catalog_files()}

    assert set(extracted) == committed


@pytest.mark.parametrize("po_path", catalog_files(), ids=lambda po: str(po.relative_to(BASE_DIR)))
def test_every_marked_string_is_in_the_committed_catalog(extracted, po_path):
    missing = extracted.get(po_path.relative_to(BASE_DIR), set()) - message_keys(po_path)

    assert missing == set(), "run `manage.py update_translations`, then translate these"


@pytest.mark.parametrize("po_path", catalog_files(), ids=lambda po: str(po.relative_to(BASE_DIR)))
def test_the_committed_catalog_holds_no_string_the_code_no_longer_has(extracted, po_path):
    stale = message_keys(po_path) - extracted.get(po_path.relative_to(BASE_DIR), set())

    assert stale == set(), "run `manage.py update_translations` to drop them"
