// goldenhub: the student's warnings before a stop (idle cull, GPU-hour quota) in JupyterLab's
// notification area. A prebuilt JupyterLab 4 extension written by hand, with no build step and
// no shared modules: a federated container (window._JUPYTERLAB[name] with init() and get())
// whose './extension' module's default export is one plugin. JupyterLab's bootstrap loads this
// file (package.json "jupyterlab._build.load"), calls init(shareScope) and later
// get('./extension') -> a factory -> the module.
//
// Rules: the plugin asks the hub (same origin; the hub's login cookie has Path=/hub/) for
// <hubPrefix>goldenhub/notices at once and every 30 seconds, keeps one notification per
// warning of THIS server (hubServerName) that stays until the warning goes, updates it when its
// words change, and dismisses it when the hub no longer lists it. It uses only JupyterLab's
// commands apputils:notify / update-notification / dismiss-notification. The `short` sentence
// is shown (JupyterLab cuts notifications at 140 characters), its UTC time written in the
// browser's own zone. Outside JupyterHub (no hubPrefix) it does nothing.
(function () {
  "use strict";
  const NAME = "@goldenhub/notices";
  const POLL_MS = 30000;

  function pageConfig() {
    const el = document.getElementById("jupyter-config-data");
    try {
      return el ? JSON.parse(el.textContent || "{}") : {};
    } catch (e) {
      return {};
    }
  }

  function localWords(item) {
    const text = String(item.short || item.message || "");
    if (!item.due_text || !item.due_at || text.indexOf(item.due_text) < 0) return text;
    const when = new Date(item.due_at);
    if (isNaN(when.getTime())) return text;
    const lang = document.documentElement.getAttribute("lang") || undefined;
    let local;
    try {
      local = new Intl.DateTimeFormat(lang, {hour: "2-digit", minute: "2-digit", timeZoneName: "short"}).format(when);
    } catch (e) {
      return text;
    }
    return text.replace(item.due_text, local);
  }

  const plugin = {
    id: "@goldenhub/notices:plugin",
    description: "goldenhub: warnings before your server is stopped (idle, GPU-hour quota).",
    autoStart: true,
    activate: function (app) {
      const config = pageConfig();
      if (!config.hubPrefix) return; // not under JupyterHub: nothing to ask
      const url = config.hubPrefix + "goldenhub/notices";
      const server = config.hubServerName || "";
      const shown = new Map(); // "server/kind" -> {id, words}

      async function refresh() {
        let items;
        try {
          const answer = await fetch(url, {credentials: "same-origin", cache: "no-store",
                                           headers: {Accept: "application/json"}});
          if (!answer.ok) return; // logged out or the hub is busy: keep what is shown
          items = await answer.json();
        } catch (e) {
          return;
        }
        if (!Array.isArray(items)) return;
        const current = new Set();
        for (const item of items) {
          if ((item.server || "") !== server) continue;
          const key = (item.server || "") + "/" + item.kind;
          const words = localWords(item);
          current.add(key);
          const old = shown.get(key);
          if (old && old.words === words) continue;
          if (old) {
            await app.commands.execute("apputils:update-notification",
                                       {id: old.id, message: words, type: "warning", autoClose: false});
            shown.set(key, {id: old.id, words: words});
          } else {
            const id = await app.commands.execute("apputils:notify",
                                                  {message: words, type: "warning", options: {autoClose: false}});
            shown.set(key, {id: id, words: words});
          }
        }
        for (const [key, value] of Array.from(shown.entries())) {
          if (!current.has(key)) {
            await app.commands.execute("apputils:dismiss-notification", {id: value.id});
            shown.delete(key);
          }
        }
      }

      app.restored.then(refresh);
      setInterval(refresh, POLL_MS);
    }
  };

  const modules = {
    "./extension": function () {
      return Promise.resolve(function () {
        return {__esModule: true, default: [plugin]};
      });
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    get: function (module) {
      return modules[module] ? modules[module]()
        : Promise.reject(new Error('Module "' + module + '" does not exist in container ' + NAME + "."));
    },
    init: function () {} // nothing shared: no share scope to join
  };
})();
