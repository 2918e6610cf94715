"""The language the `goldenhub` command speaks, chosen once at its start.

Rules:
- The platform's setting wins (GOLDENHUB_LANGUAGE, else `language:` in state/goldenhub.yaml):
  an admin who set the platform to Chinese gets a Chinese command line on every account.
- Else the terminal's locale, as POSIX orders it: LC_ALL, then LC_MESSAGES, then LANG
  (`zh_CN.UTF-8` -> zh_CN; `C`, `POSIX` and languages goldenhub does not speak -> English).
- Else English. A setting that cannot be read is passed over here: the command that needs
  the settings reports it in full.
- Only what a person reads is translated (messages, tables' headings, help texts, argparse's
  own words); machine output (JSON, exit statuses) is the same in every language.
"""

from __future__ import annotations

import argparse
import os

from hub_ext import i18n, paths
from hub_ext.i18n import N_

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")

# argparse's own words (it asks gettext's `argparse` domain, which has no Chinese): the ones
# a person meets in `--help` and in a refusal of a bad command line.
ARGPARSE_WORDS = (
    N_("usage: "), N_("positional arguments"), N_("options"), N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"), N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"), N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"), N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"), N_("expected at most one argument"), N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"), N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"), N_("ignored explicit argument %r"),
)


def locale_language(env=os.environ) -> str | None:
    """The language of the first set locale variable (LC_ALL, LC_MESSAGES, LANG), if goldenhub
    speaks it: `zh_CN.UTF-8`, `zh_CN.GB18030@stroke` -> zh_CN; `en_US.UTF-8` -> en."""
    for name in LOCALE_VARIABLES:
        value = env.get(name)
        if value:  # the first one set decides, even when it names a language we lack
            return i18n.normalize(value[:64].split(".")[0].split("@")[0])
    return None


def setting_language(env=os.environ) -> str | None:
    """The platform's setting, if it is set and names a language goldenhub speaks."""
    if env.get("GOLDENHUB_LANGUAGE"):
        return i18n.normalize(env["GOLDENHUB_LANGUAGE"])
    from hub_ext.hubconfig import read_settings_file

    try:
        value = read_settings_file(paths.state_dir()).get("language")
    except (ValueError, AttributeError):
        return None
    return i18n.normalize(str(value)) if value else None


def cli_language(env=os.environ) -> str:
    return setting_language(env) or locale_language(env) or i18n.SOURCE


def use_language(env=os.environ) -> str:
    """Speak the chosen language in this process, argparse's words included; returns it."""
    lang = cli_language(env)
    i18n.set_default(lang)
    i18n.use(lang)
    argparse._ = i18n.translate
    argparse.ngettext = i18n.ntranslate
    return lang


def text_width(text: str) -> int:
    """Columns a terminal gives `text`: Chinese characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def pad(text: str, width: int) -> str:
    """`text` filled with spaces to `width` terminal columns (str.ljust counts characters)."""
    return str(text) + " " * max(0, width - text_width(text))
