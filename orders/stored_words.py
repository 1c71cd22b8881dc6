"""Words Livra itself stored in English, shown in the reader's language.

Some text is written by Livra into the database and read back by people: the default rules' names
and the queue reasons they give (``automations.services.defaults``), and the reason a rule writes
on the order's timeline ("rule 'COD: remind after 30 min without an answer' v1"). Stored in
English (a row does not know who will read it), each is marked where it is written
(``gettext_noop``) and translated where it is shown. Text a person typed (a renamed rule, an
agent's reason) is not in the catalogs and is shown as typed.
"""

import re

from django.utils.translation import gettext

# What automations.services.actions writes as an event's or a queue entry's reason.
_RULE_REASON = re.compile(r"^rule '(?P<name>.+)' v(?P<version>\d+)$")


def stored_words(text: str) -> str:
    if not text:
        return text  # gettext("") would be the catalog's header
    match = _RULE_REASON.match(text)
    if match:
        return gettext("rule “%(name)s” v%(version)s") % {
            "name": gettext(match["name"]),
            "version": match["version"],
        }
    return gettext(text)
