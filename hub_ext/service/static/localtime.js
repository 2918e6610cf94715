// goldenhub: every <time datetime="..."> in the viewer's time zone and language.
// Pages write times as <time datetime="2026-11-26T12:53:11Z">2026-11-26 12:53 UTC</time>
// (hub_ext.i18n.format.when_html); this script replaces the text with the same moment in the
// browser's time zone, written in the page's language (<html lang>, else the goldenhub_lang
// cookie, else the browser's), and keeps the UTC text as the title. Without the script the
// UTC text stays. Loaded by the hub's page.html and the service's pages (script-src 'self').
"use strict";
(function () {
  function pageLanguage() {
    const lang = document.documentElement.getAttribute("lang");
    if (lang) return lang;
    const m = document.cookie.match(/(?:^|;\s*)goldenhub_lang=([A-Za-z_-]{2,10})/);
    if (m) return m[1].replace("_", "-");
    return undefined; // the browser's own
  }

  function formatter() {
    const options = {year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                     timeZoneName: "short"};
    try {
      return new Intl.DateTimeFormat(pageLanguage(), options);
    } catch (e) { // an unknown language tag: the browser's language
      return new Intl.DateTimeFormat(undefined, options);
    }
  }

  function localize(root) {
    const format = formatter();
    root.querySelectorAll("time[datetime]:not([data-localized])").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return; // not a moment: leave the text as written
      if (!el.title) el.title = el.textContent.trim();
      el.textContent = format.format(when);
      el.setAttribute("data-localized", "");
    });
  }

  window.goldenhubLocalTime = localize;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => localize(document));
  } else {
    localize(document);
  }
})();
