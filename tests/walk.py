"""The page checker of the walks (tests/test_walk_browser.py): what a person reads on a page,
checked against the rules of issue 10, with a screenshot of every page it sees.

Rules (each problem names the page, the rule and the offending text):
- raw-code: an HTTP status as the message ("HTTP 503", "Error: 404", a line that is only
  "404" or "404 : Not Found", a page whose text is only a number).
- leak: Python/JavaScript values or internals shown as words: None, null, undefined, NaN,
  Traceback, "Exception:".
- server-path / volume-name (student pages): /srv/, /var/lib/docker, /tmp/, goldenhub-home-...
- html-lang: the page's <html lang> is not the language it was asked in.
- plural (English): "1 students", "home(s)": a count with the wrong or a hedged plural.
- time: a <time> element without a datetime attribute; ISO text with microseconds, a
  "+00:00" offset or a "T" between date and time.
- msgid (zh-CN): an English source string of the catalogs (a marked string of the code and
  templates, or a msgid of the .po files), or a literal part of one between placeholders, of
  8+ characters with a space, verbatim.
- english (zh-CN): a run of 3+ English words, outside <code>/<pre>/<kbd>/<samp>/<textarea>,
  user names, course and template ids, data the test wrote only in English, and product
  names (ALLOWED_WORDS).
The walks' steps (a browser context in a language, logging in, a confirmation dialog, a
roster upload) are at the end, for every walk to share.
The visible text is body.innerText (closed <details>, hidden dialogs and form values are not
in it), plus what a person reads elsewhere: the window title, submit-button values and
placeholders.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent

# Names that stay English in Chinese text (products, units, formats).
ALLOWED_WORDS = frozenset("""
    JupyterLab JupyterHub Jupyter Notebook goldenhub Goldenhub GoldenHub GPU GPUs CPU CPUs Python PyTorch
    TensorFlow NumPy SciPy pandas scikit-learn scipy CUDA NVIDIA Docker CSV UTF-8 UTF GBK GB18030
    BOM HTTPS HTTP URL LTI LMS SSO YAML JSON PNG SVG ICO tar git Git GitHub UTC MB GB KB GiB MiB
    KiB TiB OK ID IDs Linux systemd PostgreSQL SQLite English OAuth
""".split())

_WORD = r"[A-Za-z][A-Za-z'’]*"
# Words joined by spaces (a tab is a table's cell boundary and ends a run).
ENGLISH_RUN = re.compile(rf"{_WORD}(?:[ \u00a0]*[,;:]?[ \u00a0]+{_WORD}){{2,}}")
RAW_CODE = [
    re.compile(r"\bHTTP[ /]?(?:\d\.\d )?[45]\d\d\b"),
    re.compile(r"\b(?:Error|错误)\s*[:：]\s*[45]\d\d\b"),
    re.compile(r"^\s*[45]\d\d\s*(?:[:：-]\s*[A-Za-z][A-Za-z ]*)?\s*$", re.M),
]
LEAKS = [
    re.compile(r"\bNone\b"), re.compile(r"\bnull\b"), re.compile(r"\bundefined\b"), re.compile(r"\bNaN\b"),
    re.compile(r"Traceback"), re.compile(r"\w*Exception:"),
]
SENTENCE_NONE = re.compile(r"^\s*None\.\s*$", re.M)  # the English sentence "None." (an empty list)
SERVER_PATHS = re.compile(r"/srv/\S*|/var/lib/docker\S*|/tmp/\S*")
VOLUME_NAME = re.compile(r"goldenhub-home-\S+")
BAD_TIMES = [
    re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d+"),  # microseconds
    re.compile(r"[+-]00:00\b"),
    re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d"),
]
PLURALS = [re.compile(r"\b1 [a-z]+(?<![su])s\b"), re.compile(r"\w\(s\)")]  # "1 students", "home(s)"
LANGS = {"en": ("en-US", "en-US,en;q=0.9"), "zh": ("zh-CN", "zh-CN,zh;q=0.9")}  # key: (locale, Accept-Language)
# JupyterLab 4.6's skip link: jupyterlab-language-pack-zh-CN 4.5.post3 has no translation of it.
JUPYTERLAB_UNTRANSLATED = frozenset({"Skip to main panel"})
# JupyterHub 6.1.1's own admin page (/hub/admin) is a React app with English built in: it has
# no translations and no template block goldenhub could translate (our nav bar on it is
# checked). Its words, as innerText joins them (buttons of a row run together).
HUB_ADMIN_UNTRANSLATED = frozenset({
    "Start All", "Stop All", "Shutdown Hub", "Only Active Servers", "Add Users", "Manage Groups", "Last Activity",
    "Server Start Time", "Start ServerSpawn PageEdit User", "Stop ServerAccess ServerEdit User",
    "Stop ServerAccess ServerSpawn PageEdit User", "PreviousNextItems per page", "Search Users", "a few seconds ago",
    "a minute ago", "an hour ago", "minutes ago", "hours ago", "days ago",  # its "12 minutes ago" (moment.js)
})
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_]*\}")

# Collected in the page: the visible text, what is exempt from the English rule, the times.
FACTS_JS = """() => {
  const seen = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const extra = [document.title];
  for (const e of document.querySelectorAll("input[type=submit], input[type=button], input[type=reset]")) {
    if (seen(e) && e.value) extra.push(e.value);
  }
  for (const e of document.querySelectorAll("[placeholder]")) {
    if (seen(e)) extra.push(e.getAttribute("placeholder"));
  }
  const exempt = [...document.querySelectorAll("code, pre, kbd, samp, textarea")].map((e) => e.innerText);
  const times = [...document.querySelectorAll("time")].map((t) => ({
    datetime: t.getAttribute("datetime"), text: t.innerText}));
  return {text: document.body ? document.body.innerText : "", extra, exempt, times,
          lang: document.documentElement.lang || ""};
}"""


@dataclass(frozen=True)
class Problem:
    page: str
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.page}: {self.rule}: {self.text!r}"


def literal_parts(msgid: str) -> list[str]:
    """The parts of a source string between its placeholders (and HTML tags) worth looking
    for verbatim: 8+ characters with a space, two words or more, not only product names."""
    parts = []
    for part in re.split(r"<[^>]*>|" + PLACEHOLDER.pattern, msgid):
        part = html.unescape(part).strip()
        words = re.findall(_WORD, part)
        if len(part) >= 8 and " " in part and any(w not in ALLOWED_WORDS for w in words) and len(words) >= 2:
            parts.append(part)
    return parts


@lru_cache(maxsize=1)
def catalog_strings() -> tuple[str, ...]:
    """Every English source string a person may read: the marked strings of the code and
    templates (Babel's extraction, as babel.cfg) and the msgids of the .po catalogs."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from hub_ext.i18n import LOCALE_DIR

    ids: set[str] = set()
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/*.po"):
        with po.open("rb") as f:
            for message in read_po(f):
                ids.update([message.id] if isinstance(message.id, str) else message.id)
    keywords = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for folder in ("hub_ext", "branding", "spawner"):
        for _file, _line, message, _comments, _context in extract_from_dir(
                REPO_ROOT / folder, method_map, options, keywords=keywords):
            ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return tuple(sorted({part for msgid in ids if msgid for part in literal_parts(msgid)}, key=len, reverse=True))


def _without(text: str, names: set[str] | frozenset[str]) -> str:
    """`text` with each name (a whole token) replaced by a line break, which ends a run."""
    for name in sorted(names, key=len, reverse=True):
        if name:
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "\n", text)
    return text


def check_text(page: str, lang: str, text: str, *, extra: list[str] = (), exempt: list[str] = (),
               times: list[dict] = (), student: bool = False, names: set[str] = frozenset(),
               data: set[str] = frozenset(), msgids: tuple[str, ...] | None = None,
               html_lang: str | None = None) -> list[Problem]:
    """The problems of one page's visible text (see the module docstring)."""
    problems: list[Problem] = []
    visible = "\n".join([text, *[e for e in extra if e]])

    def add(rule: str, found: str) -> None:
        p = Problem(page, rule, found.strip()[:200])
        if p not in problems:
            problems.append(p)

    if html_lang is not None and html_lang.split("-")[0].lower() != lang.split("-")[0]:
        add("html-lang", f'<html lang="{html_lang}"> on a {lang} page')
    if re.fullmatch(r"\s*\d+\s*", text):
        add("raw-code", f"a page whose text is only {text.strip()}")
    for rx in RAW_CODE:
        for m in rx.finditer(visible):
            add("raw-code", _line_of(visible, m))
    leak_text = SENTENCE_NONE.sub("\n", visible)
    for rx in LEAKS:
        for m in rx.finditer(leak_text):
            add("leak", _line_of(leak_text, m))
    if student:
        for m in SERVER_PATHS.finditer(visible):
            add("server-path", m.group(0))
        for m in VOLUME_NAME.finditer(visible):
            add("volume-name", m.group(0))
    for t in times:
        if not t.get("datetime"):
            add("time", f"<time> without datetime: {t.get('text', '')}")
    for rx in BAD_TIMES:
        for m in rx.finditer(visible):
            add("time", _line_of(visible, m))
    if lang.startswith("en"):
        for rx in PLURALS:
            for m in rx.finditer(visible):
                add("plural", _line_of(visible, m))
    if lang.startswith("zh"):
        readable = visible
        for e in sorted((e for e in exempt if e and e.strip()), key=len, reverse=True):
            readable = readable.replace(e.strip(), "\n")
        readable = _without(readable, set(data))
        for msgid in catalog_strings() if msgids is None else msgids:
            if msgid in readable:
                add("msgid", msgid)
                readable = readable.replace(msgid, "\n")
        readable = _without(_without(readable, set(names)), ALLOWED_WORDS)
        for m in ENGLISH_RUN.finditer(readable):
            add("english", m.group(0))
    return problems


def _line_of(text: str, m: re.Match) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start:end if end >= 0 else len(text)]


class Walk:
    """One language's walk: every page seen is screenshot to <out>/<NN>-<name>.png, its text
    kept in <NN>-<name>.txt, and checked; the problems add up for one readable failure."""

    def __init__(self, out: Path, lang: str, names: set[str] = frozenset(), data: set[str] = frozenset()):
        self.out, self.lang, self.names, self.data = out, lang, set(names), set(data)
        self.out.mkdir(parents=True, exist_ok=True)
        self.problems: list[Problem] = []
        self.seen: list[str] = []

    def visit(self, page, url: str, number: int, name: str, **kw) -> str:
        """Open `url` and see it; a page that does not load (an error status with an empty
        body, a connection refused) is a problem of its own, and the walk goes on."""
        from playwright.sync_api import Error

        try:
            page.goto(url)
        except Error as e:
            self.problems.append(Problem(f"{self.lang}/{number:02d}-{name}", "no-page", str(e).splitlines()[0][:200]))
        return self.see(page, number, name, **kw)

    def see(self, page, number: int, name: str, *, student: bool = False, full_page: bool = True,
            check: bool = True, upstream: frozenset[str] = frozenset()) -> str:
        """Screenshot and check the page as it is now (`check=False`: a screenshot of a part
        of a page checked whole already; `upstream`: texts of a third-party UI that its own
        translations lack, exempt like data); returns its visible text."""
        label = f"{self.lang}/{number:02d}-{name}"
        page.wait_for_load_state()
        page.screenshot(path=str(self.out / f"{number:02d}-{name}.png"), full_page=full_page)
        facts = page.evaluate(FACTS_JS)
        (self.out / f"{number:02d}-{name}.txt").write_text(
            f"{page.url}\nlang={facts['lang']}\n\n{facts['text']}\n\n-- also read --\n" + "\n".join(facts["extra"]))
        if check:
            self.problems += check_text(label, self.lang, facts["text"], extra=facts["extra"], exempt=facts["exempt"],
                                        times=facts["times"], student=student, names=self.names,
                                        data=self.data | set(upstream), html_lang=facts["lang"])
            self.seen.append(label)
        return facts["text"]

    def report(self) -> str:
        """One line per (rule, text), with the pages it is on."""
        pages: dict[tuple[str, str], list[str]] = {}
        for p in self.problems:
            pages.setdefault((p.rule, p.text), []).append(p.page)
        lines = [f"{len(pages)} problem(s) on {len({p.page for p in self.problems})} of {len(self.seen)} page(s):"]
        lines += [f"{rule}: {text!r} on {', '.join(where)}" for (rule, text), where in pages.items()]
        return "\n".join(lines)

    def save(self, part: str) -> None:
        (self.out / f"problems-{part}.json").write_text(json.dumps(
            {"pages": self.seen, "problems": [p.__dict__ for p in self.problems]}, ensure_ascii=False, indent=1))


# --- a walk's steps in Chromium (Playwright) --------------------------------------------------


def open_page(browser, lang: str):
    """A page in a new browser context that asks for `lang` (locale and Accept-Language)."""
    locale, accept = LANGS[lang]
    context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": accept},
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def log_in(browser, hub, lang: str, name: str, password: str):
    """A new page in `lang`, logged in through the hub's login form."""
    page = open_page(browser, lang)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.locator("form:has(input[name=username]) [type=submit]").first.click()
    page.wait_for_load_state()
    return page


def dialog_of(page, submit):
    """Submit a data-confirm form: the dialog that opens (nothing is sent yet)."""
    submit.click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    return dialog


def cancel(page, dialog) -> None:
    """Cancel: the dialog closes and the page stays (nothing was sent)."""
    url = page.url
    dialog.locator("#confirm-no").click()
    dialog.wait_for(state="hidden")
    assert page.url == url


def confirm(page, dialog) -> None:
    """Confirm: the form is sent and its answer loaded."""
    with page.expect_navigation():
        dialog.locator("#confirm-yes").click()


def upload_roster(page, content: bytes, sync: bool = False) -> None:
    """Send a roster file with the course page's form (a dry run: the box is checked by default)."""
    page.set_input_files("input[name=roster]", files=[{"name": "roster.csv", "mimeType": "text/csv",
                                                       "buffer": content}])
    if sync:
        page.check("input[name=sync]")
    page.locator("#upload-roster [type=submit]").click()
    page.wait_for_load_state()


def can_log_in(hub, name: str, password: str) -> bool:
    """Whether the hub's login form takes this password now (as a browser would send it)."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=30)
    r = session.post(f"{hub.url}/hub/login", timeout=30, data={
        "username": name, "password": password, "_xsrf": session.cookies.get("_xsrf", "")})
    return r.status_code == 200 and "/hub/login" not in r.url
