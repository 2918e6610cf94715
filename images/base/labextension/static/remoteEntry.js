/*
 * @goldenhub/gpu-usage: a JupyterLab status bar item with the memory and utilisation of the
 * GPUs this server was given ("GPU: 37 % | 2.10 / 16.00 GiB"), from goldenhub_usage's
 * GET api/goldenhub/gpus. Written by hand as a module-federation container (the protocol
 * JupyterLab's bootstrap.js uses for prebuilt extensions: window._JUPYTERLAB[name] with
 * init(shareScope) and get(module)), so that the image needs no Node build. It takes
 * JupyterLab's own singletons (the IStatusBar token, Widget, ServerConnection) from the
 * share scope and bundles nothing.
 *
 * Rules: a server with no GPU (the answer lists none) gets no item and no further request;
 * an item whose GPU can no longer be read says "GPU: n/a", never stale numbers; text only
 * (textContent), no HTML; polling every 5 s, paused while the page is hidden.
 */
(function () {
  'use strict';
  const NAME = '@goldenhub/gpu-usage';
  const INTERVAL_MS = 5000;
  let shareScope = null;

  async function shared(pkg) {
    const versions = (shareScope || {})[pkg] || {};
    const version = Object.keys(versions)[0];
    if (!version) {
      throw new Error(NAME + ': JupyterLab does not share ' + pkg);
    }
    const factory = await versions[version].get();
    return factory();
  }

  function gib(bytes) {
    return (bytes / 1073741824).toFixed(2);
  }

  function describe(gpus) {
    return gpus.map(function (g) {
      const label = gpus.length > 1 ? 'GPU' + g.index : 'GPU';
      const util = g.utilization === null ? '' : ' ' + g.utilization + ' % |';
      return label + ':' + util + ' ' + gib(g.memory_used) + ' / ' + gib(g.memory_total) + ' GiB';
    }).join('  ');
  }

  async function extension() {
    const [statusbar, widgets, services, coreutils] = await Promise.all([
      shared('@jupyterlab/statusbar'), shared('@lumino/widgets'),
      shared('@jupyterlab/services'), shared('@jupyterlab/coreutils')
    ]);
    const plugin = {
      id: NAME + ':status',
      description: 'The GPUs of this server in the status bar (goldenhub).',
      autoStart: true,
      optional: [statusbar.IStatusBar],
      activate: function (app, statusBar) {
        if (!statusBar) {
          return;
        }
        const settings = services.ServerConnection.makeSettings();
        const url = coreutils.URLExt.join(settings.baseUrl, 'api/goldenhub/gpus');
        const item = new widgets.Widget();
        item.addClass('goldenhub-gpu-usage');
        item.node.style.padding = '0 6px';
        item.node.title = 'GPU memory and utilisation of this server';
        let registered = false;

        async function read() {
          const response = await services.ServerConnection.makeRequest(url, {}, settings);
          if (response.status === 404) {
            return []; // no goldenhub_usage server extension: nothing to show, nothing to ask again
          }
          if (!response.ok) {
            return null;
          }
          return (await response.json()).gpus || [];
        }

        async function tick() {
          let gpus = null;
          try {
            gpus = await read();
          } catch (e) {
            gpus = null; // the server is restarting: try again at the next tick
          }
          if (gpus !== null && gpus.length === 0 && !registered) {
            return; // no GPU on this server: no item, no more requests
          }
          if (registered && (gpus === null || gpus.length === 0)) {
            item.node.textContent = 'GPU: n/a'; // never the last numbers as if they were current
          }
          if (gpus !== null && gpus.length > 0) {
            item.node.textContent = describe(gpus);
            if (!registered) {
              statusBar.registerStatusItem(NAME + ':status', { item: item, align: 'left', rank: 4 });
              registered = true;
            }
          }
          setTimeout(function wait() {
            if (document.hidden) {
              setTimeout(wait, INTERVAL_MS);
            } else {
              void tick();
            }
          }, INTERVAL_MS);
        }

        void app.restored.then(tick);
      }
    };
    return { __esModule: true, default: [plugin] };
  }

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function (scope) {
      shareScope = scope;
    },
    get: function (module) {
      if (module !== './extension') {
        return Promise.reject(new Error(NAME + ' has no module ' + module));
      }
      return extension().then(function (m) {
        return function () {
          return m;
        };
      });
    }
  };
})();
