// The azscale dashboard page. Every piece of data is put in the DOM with textContent or an
// attribute, never parsed as markup: task data and error messages are user-controlled.
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const STAT_KEYS = ['queued', 'delayed', 'processing', 'completed', 'failed', 'deadLettered'];
  const LIST = ['queued', 'delayed', 'processing', 'completed', 'failed', 'cancelled'];
  const PAGE = 20;
  let config = null;
  let timer = 0;
  let view = { page: 'overview' };
  let generation = 0;
  const listState = { status: 'queued', offset: 0, task: null };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'onclick') e.addEventListener('click', v);
      else if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(
        typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c,
      );
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return '–';
    return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits ?? 0 });
  }

  function money(n) {
    return n === null || n === undefined ? '–' : `$${Number(n).toFixed(2)}`;
  }

  function time(ms) {
    return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '–';
  }

  function toast(message, isError) {
    const t = document.getElementById('toast');
    t.textContent = message;
    t.className = isError ? 'error' : '';
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => {
      t.hidden = true;
    }, 5000);
  }

  async function api(path) {
    const r = await fetch(`api/${path}`, { headers: { accept: 'application/json' } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : r.status);
    return body;
  }

  async function act(path, body) {
    const headers = { 'content-type': 'application/json', 'x-azscale-action': '1' };
    const token = sessionStorage.getItem('azs-dashboard-token');
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`api/${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body || {}),
    });
    const out = await r.json();
    if (!r.ok) {
      toast(`${r.status} ${out.error?.code}: ${out.error?.message}`, true);
      return null;
    }
    toast(`done: ${path.split('/').pop()}`);
    await refresh();
    return out;
  }

  function actionButton(label, path, body, cls, confirmText) {
    if (!config.actions) return null;
    return el('button', {
      class: cls,
      'data-action': path.split('/').pop(),
      text: label,
      onclick: (ev) => {
        ev.stopPropagation();
        if (confirmText && !window.confirm(confirmText)) return;
        act(path, body);
      },
    });
  }

  function badge(text, cls) {
    return el('span', { class: `badge ${cls || text}`, text });
  }

  function bar(used, total) {
    const share = total > 0 ? Math.min(1, used / total) : 0;
    const inner = el('div');
    inner.style.width = `${(share * 100).toFixed(1)}%`;
    return el('div', { class: `bar${used > total ? ' over' : ''}` }, inner);
  }

  // A line chart of points [{t, a, b}] (b optional), in SVG built node by node.
  function lineChart(points, labelA, labelB) {
    const W = 400;
    const H = 120;
    const P = 24;
    const s = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    if (points.length < 2) {
      const t = svg('text', { x: P, y: H / 2 });
      t.textContent = 'collecting samples…';
      s.append(t);
      return el('div', {}, s);
    }
    const t0 = points[0].t;
    const t1 = points[points.length - 1].t;
    const max = Math.max(1, ...points.map((p) => Math.max(p.a, p.b ?? 0)));
    const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - P - 4);
    const y = (v) => H - 14 - (v / max) * (H - 24);
    for (const v of [0, max]) {
      s.append(svg('line', { class: 'grid', x1: P, x2: W, y1: y(v), y2: y(v) }));
      const lab = svg('text', { x: 0, y: y(v) + 3 });
      lab.textContent = fmt(v, 1);
      s.append(lab);
    }
    const path = (key) =>
      points
        .map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p[key] ?? 0).toFixed(1)}`)
        .join('');
    s.append(svg('path', { class: 'line', d: path('a') }));
    if (labelB) s.append(svg('path', { class: 'line2', d: path('b') }));
    const from = svg('text', { x: P, y: H - 2 });
    from.textContent = time(t0).slice(11, 16);
    const to = svg('text', { x: W - 34, y: H - 2 });
    to.textContent = time(t1).slice(11, 16);
    s.append(from, to);
    return el(
      'div',
      {},
      s,
      el(
        'div',
        { class: 'legend' },
        el('span', { class: 'a', text: `— ${labelA}` }),
        labelB ? el('span', { class: 'b', text: `— ${labelB}` }) : null,
      ),
    );
  }

  function spendChart(history) {
    const W = 400;
    const H = 120;
    const s = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    const max = Math.max(0.01, ...history.map((h) => h.total));
    const bw = W / history.length;
    history.forEach((h, i) => {
      const hgt = (h.total / max) * (H - 20);
      const r = svg('rect', {
        class: `barv${i === history.length - 1 ? ' now' : ''}`,
        x: i * bw + 1,
        y: H - 12 - hgt,
        width: Math.max(1, bw - 2),
        height: hgt,
      });
      const title = svg('title');
      title.textContent = `${time(h.hourStartMs).slice(0, 16)} ${money(h.total)}`;
      r.append(title);
      s.append(r);
    });
    const lab = svg('text', { x: 0, y: 10 });
    lab.textContent = `max ${money(max)}/h`;
    s.append(lab);
    return s;
  }

  function errorNote(e) {
    return el('p', { class: 'muted', text: `unavailable: ${e.code}: ${e.message}` });
  }

  function table(headers, rows) {
    return el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { class: h[1], text: h[0] })))),
      el('tbody', {}, ...rows),
    );
  }

  function queueRow(q) {
    const s = q.stats || {};
    return el(
      'tr',
      {
        class: 'clickable',
        'data-queue': q.name,
        onclick: () => {
          location.hash = `#/queue/${encodeURIComponent(q.name)}`;
        },
      },
      el('td', {}, el('a', { href: `#/queue/${encodeURIComponent(q.name)}`, text: q.name })),
      ...STAT_KEYS.map((k) => el('td', { class: 'num', 'data-stat': k, text: fmt(s[k]) })),
      el(
        'td',
        {},
        q.error ? badge('error', 'bad') : q.paused ? badge('paused') : badge('running', 'ok'),
      ),
    );
  }

  const QUEUE_HEAD = [
    ['queue'],
    ['queued', 'num'],
    ['delayed', 'num'],
    ['processing', 'num'],
    ['completed', 'num'],
    ['failed', 'num'],
    ['dead', 'num'],
    ['state'],
  ];

  function renderOverview(o) {
    const out = [];
    if (o.advisor) {
      const a = o.advisor;
      out.push(
        el(
          'section',
          { id: 'advisor' },
          el('h2', { text: 'Scaling advice' }),
          a.code
            ? errorNote(a)
            : el(
                'div',
                {},
                el('span', { class: 'big' }, badge(a.scale)),
                ` ${a.direction}${a.bottleneck ? ` · bottleneck: ${a.bottleneck}` : ''}`,
                el('ul', { class: 'reasons' }, ...a.reasons.map((r) => el('li', { text: r }))),
              ),
        ),
      );
    }
    if (o.spend) {
      const sp = o.spend;
      out.push(
        el(
          'section',
          { id: 'spend' },
          el('h2', { text: 'Spend this hour' }),
          sp.code
            ? errorNote(sp)
            : el(
                'div',
                {},
                el('div', { class: 'big', 'data-value': 'spent', text: money(sp.spent) }),
                el('div', {
                  class: 'muted',
                  text: `of ${money(sp.budget)} budget, ${money(sp.remaining)} left`,
                }),
                bar(sp.spent, sp.budget),
                el('h3', { text: 'Last 24 hours' }),
                spendChart(sp.history),
              ),
        ),
      );
    }
    if (o.latency) {
      const l = o.latency;
      out.push(
        el(
          'section',
          { id: 'latency' },
          el('h2', { text: 'Latency' }),
          el('div', {
            class: 'big',
            'data-value': 'p95',
            text: l.p95Ms === null ? '–' : `${fmt(l.p95Ms, 1)} ms`,
          }),
          el('div', {
            class: 'muted',
            text: `p95 · p50 ${l.p50Ms === null ? '–' : `${fmt(l.p50Ms, 1)} ms`} · ${fmt(l.requestRate, 2)} req/s · ${fmt(l.errorRate * 100, 2)}% errors`,
          }),
        ),
      );
    }
    if (o.queues.length) {
      out.push(
        el(
          'section',
          { id: 'queues', class: 'wide' },
          el('h2', { text: 'Queues' }),
          table(QUEUE_HEAD, o.queues.map(queueRow)),
        ),
      );
      for (const q of o.queues) {
        out.push(
          el(
            'section',
            { 'data-chart': q.name },
            el('h2', { text: `${q.name}: last hour` }),
            lineChart(
              q.history.map((h) => ({ t: h.t, a: h.depth, b: h.throughput })),
              'waiting',
              'completed / min',
            ),
          ),
        );
      }
    }
    out.push(renderBreakers(o.breakers, false));
    out.push(renderLimits(o.limiters, o.rateLimiters));
    return out;
  }

  function renderBreakers(breakers, full) {
    const rows = breakers.map((b) =>
      el(
        'tr',
        { 'data-breaker': b.name },
        el('td', { text: b.name }),
        el('td', {}, badge(b.state)),
        el('td', { text: b.shared ? 'fleet' : 'process' }),
        el('td', {}, b.lastFailure ? `${b.lastFailure.name}: ${b.lastFailure.message}` : '–'),
        full
          ? el(
              'td',
              {},
              ...b.recentFailures.map((f) =>
                el('div', { class: 'muted', text: `${time(f.at)} ${f.name}: ${f.message}` }),
              ),
            )
          : null,
        full
          ? el('td', {}, actionButton('reset', `breakers/${encodeURIComponent(b.name)}/reset`))
          : null,
      ),
    );
    const head = [['breaker'], ['state'], ['scope'], ['last failure']];
    if (full) head.push(['recent opens'], ['']);
    return el(
      'section',
      { id: 'breakers', class: full ? 'wide' : undefined },
      el('h2', { text: 'Circuit breakers' }),
      breakers.length ? table(head, rows) : el('p', { class: 'muted', text: 'no breakers' }),
    );
  }

  function renderLimits(limiters, rates) {
    const lrows = limiters.map((l) =>
      el(
        'tr',
        { 'data-limiter': l.name },
        el('td', { text: l.name }),
        el('td', { class: 'num', text: `${fmt(l.inUse)} / ${fmt(l.concurrency)}` }),
        el('td', {}, l.error ? errorNote(l.error) : bar(l.inUse, l.concurrency)),
        el('td', { class: 'num', text: fmt(l.waiting) }),
      ),
    );
    const rrows = rates.map((r) =>
      el(
        'tr',
        { 'data-rate': r.name },
        el('td', { text: r.name }),
        el('td', {
          class: 'num',
          text:
            r.requestsPerMinute === null
              ? '–'
              : `${fmt(r.requestsLeft)} / ${fmt(r.requestsPerMinute)}`,
        }),
        el('td', {
          class: 'num',
          text:
            r.tokensPerMinute === null ? '–' : `${fmt(r.tokensLeft)} / ${fmt(r.tokensPerMinute)}`,
        }),
        el(
          'td',
          {},
          r.error
            ? errorNote(r.error)
            : r.pausedFor > 0
              ? badge(`paused ${fmt(r.pausedFor, 1)} s`, 'warn')
              : badge('ok'),
        ),
      ),
    );
    return el(
      'section',
      { id: 'limits' },
      el('h2', { text: 'Limits' }),
      limiters.length
        ? table([['limiter'], ['in use', 'num'], [''], ['waiting here', 'num']], lrows)
        : el('p', { class: 'muted', text: 'no concurrency limiters' }),
      el('h3', { text: 'Rate limits (budget left this minute)' }),
      rates.length
        ? table([['rate limit'], ['requests', 'num'], ['tokens', 'num'], ['state']], rrows)
        : el('p', { class: 'muted', text: 'no rate limiters' }),
    );
  }

  function pretty(v) {
    if (v === undefined) return '–';
    return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
  }

  function renderTask(name, t) {
    const base = `queues/${encodeURIComponent(name)}/tasks/${encodeURIComponent(t.id)}`;
    const timeline = Object.entries(t)
      .filter(([k, v]) => /At$/.test(k) && typeof v === 'number')
      .sort((a, b) => a[1] - b[1])
      .map(([k, v]) => el('li', { text: `${time(v)} ${k.replace(/At$/, '')}` }));
    return el(
      'section',
      { id: 'task', class: 'wide' },
      el('h2', {}, 'Task ', el('code', { text: t.id }), ' ', badge(t.status)),
      el(
        'div',
        { class: 'actions' },
        actionButton('retry', `${base}/retry`),
        actionButton('cancel', `${base}/cancel`, undefined, 'danger'),
        el('button', {
          text: 'close',
          onclick: () => {
            listState.task = null;
            refresh();
          },
        }),
      ),
      el('div', {
        class: 'muted',
        text: `attempts ${fmt(t.attempts)} · progress ${t.progress === undefined ? '–' : fmt(t.progress, 2)}${t.name ? ` · name ${t.name}` : ''}`,
      }),
      el('h3', { text: 'Data' }),
      el('pre', { 'data-field': 'data', text: pretty(t.data) }),
      el('h3', { text: 'Result' }),
      el('pre', { 'data-field': 'result', text: pretty(t.result) }),
      el('h3', { text: 'Error' }),
      el('pre', {
        'data-field': 'error',
        text: t.error ? `${t.errorName || 'Error'}: ${t.error}` : '–',
      }),
      el('h3', { text: 'Timeline' }),
      el('ul', {}, ...timeline),
    );
  }

  async function renderQueue(name) {
    const enc = encodeURIComponent(name);
    const q = await api(`queues/${enc}`);
    const feats = q.features || {};
    const statuses = feats.listTasks ? LIST : ['dead'];
    if (!statuses.includes(listState.status)) listState.status = statuses[0];
    const list = await api(
      `queues/${enc}/tasks?status=${listState.status}&offset=${listState.offset}&limit=${PAGE}`,
    ).catch((e) => ({ error: e }));
    const task = listState.task
      ? await api(`queues/${enc}/tasks/${encodeURIComponent(listState.task)}`).catch(() => null)
      : null;
    const s = q.stats || {};
    const counts = el(
      'div',
      { class: 'counts' },
      ...STAT_KEYS.map((k) =>
        el(
          'div',
          { class: 'count' },
          el('b', { 'data-stat': k, text: fmt(s[k]) }),
          k === 'deadLettered' ? 'dead letters' : k,
        ),
      ),
      el(
        'div',
        { class: 'count' },
        el('b', { 'data-stat': 'oldestAge', text: s.oldestAge ? `${fmt(s.oldestAge, 1)} s` : '–' }),
        'oldest waiting',
      ),
    );
    const actions = el(
      'div',
      { class: 'actions' },
      q.paused === null ? null : badge(q.paused ? 'paused' : 'running', q.paused ? 'paused' : 'ok'),
      q.paused === false ? actionButton('pause', `queues/${enc}/pause`) : null,
      q.paused === true ? actionButton('resume', `queues/${enc}/resume`) : null,
      actionButton(
        'redrive all dead letters',
        `queues/${enc}/redrive`,
        undefined,
        undefined,
        'Redrive every dead letter?',
      ),
      feats.clean
        ? actionButton(
            'clean completed',
            `queues/${enc}/clean`,
            { status: 'completed' },
            'danger',
            'Remove every completed task?',
          )
        : null,
      feats.clean
        ? actionButton(
            'clean dead letters',
            `queues/${enc}/clean`,
            { status: 'failed' },
            'danger',
            'Remove every dead letter (failed task)?',
          )
        : null,
    );
    const tabs = el(
      'div',
      { class: 'actions tabs' },
      ...statuses.map((st) =>
        el('button', {
          class: st === listState.status ? 'active' : undefined,
          'data-tab': st,
          text: st,
          onclick: () => {
            listState.status = st;
            listState.offset = 0;
            refresh();
          },
        }),
      ),
    );
    let tasks;
    if (list.error) tasks = el('p', { class: 'muted', text: String(list.error.message) });
    else {
      tasks = table(
        [
          ['id'],
          ['status'],
          ['attempts', 'num'],
          ['progress', 'num'],
          ['updated'],
          ['error'],
          [''],
        ],
        list.tasks.map((t) =>
          el(
            'tr',
            {
              class: 'clickable',
              'data-task': t.id,
              onclick: () => {
                listState.task = t.id;
                refresh();
              },
            },
            el('td', {}, el('code', { text: t.id })),
            el('td', {}, badge(t.status)),
            el('td', { class: 'num', text: fmt(t.attempts) }),
            el('td', { class: 'num', text: t.progress === undefined ? '–' : fmt(t.progress, 2) }),
            el('td', { text: time(t.updatedAt) }),
            el('td', { class: 'muted', text: t.error ? String(t.error).slice(0, 120) : '' }),
            el(
              'td',
              {},
              listState.status === 'dead' || t.status === 'failed'
                ? actionButton('redrive', `queues/${enc}/tasks/${encodeURIComponent(t.id)}/retry`)
                : null,
              ['queued', 'delayed', 'processing'].includes(t.status)
                ? actionButton(
                    'cancel',
                    `queues/${enc}/tasks/${encodeURIComponent(t.id)}/cancel`,
                    undefined,
                    'danger',
                  )
                : null,
            ),
          ),
        ),
      );
    }
    const pager = el(
      'div',
      { class: 'actions' },
      el('button', {
        text: '‹ newer',
        disabled: listState.offset === 0,
        onclick: () => {
          listState.offset = Math.max(0, listState.offset - PAGE);
          refresh();
        },
      }),
      el('span', {
        class: 'muted',
        text: `${listState.offset + 1}–${listState.offset + (list.tasks ? list.tasks.length : 0)}`,
      }),
      el('button', {
        text: 'older ›',
        disabled: !list.tasks || list.tasks.length < PAGE,
        onclick: () => {
          listState.offset += PAGE;
          refresh();
        },
      }),
    );
    return [
      el(
        'section',
        { id: 'queue', class: 'wide', 'data-queue': name },
        el('h2', { text: `Queue ${name}` }),
        q.error ? errorNote(q.error) : counts,
        actions,
      ),
      el(
        'section',
        { class: 'wide' },
        el('h2', { text: 'Last hour' }),
        lineChart(
          q.history.map((h) => ({ t: h.t, a: h.depth, b: h.throughput })),
          'waiting',
          'completed / min',
        ),
      ),
      task ? renderTask(name, task) : null,
      el(
        'section',
        { id: 'tasks', class: 'wide' },
        el('h2', { text: 'Tasks' }),
        tabs,
        tasks,
        pager,
      ),
    ];
  }

  function renderNav() {
    const nav = document.getElementById('nav');
    const links = [
      ['#/', 'Overview', view.page === 'overview'],
      ...config.queues.map((q) => [
        `#/queue/${encodeURIComponent(q)}`,
        q,
        view.page === 'queue' && view.name === q,
      ]),
      ['#/breakers', 'Breakers', view.page === 'breakers'],
      ['#/limits', 'Limits', view.page === 'limits'],
    ];
    nav.replaceChildren(
      ...links.map(([href, text, active]) =>
        el('a', { href, text, class: active ? 'active' : undefined }),
      ),
    );
  }

  function renderAuth() {
    const box = document.getElementById('auth');
    if (!config.actions) {
      box.replaceChildren(badge('read-only', 'warn'));
      return;
    }
    if (!config.tokenAuth) {
      box.replaceChildren();
      return;
    }
    const input = el('input', {
      type: 'password',
      placeholder: 'action token',
      autocomplete: 'off',
    });
    input.value = sessionStorage.getItem('azs-dashboard-token') || '';
    input.addEventListener('change', () =>
      sessionStorage.setItem('azs-dashboard-token', input.value),
    );
    box.replaceChildren(input);
  }

  function route() {
    const h = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    if (h.startsWith('queue/')) {
      const name = h.slice(6);
      if (view.page !== 'queue' || view.name !== name)
        Object.assign(listState, { status: 'queued', offset: 0, task: null });
      view = { page: 'queue', name };
    } else if (h === 'breakers' || h === 'limits') view = { page: h };
    else view = { page: 'overview' };
  }

  async function refresh() {
    const mine = ++generation;
    let nodes;
    try {
      if (view.page === 'queue') nodes = await renderQueue(view.name);
      else if (view.page === 'breakers')
        nodes = [renderBreakers((await api('breakers')).breakers, true)];
      else if (view.page === 'limits') {
        const l = await api('limits');
        nodes = [renderLimits(l.limiters, l.rateLimiters)];
      } else nodes = renderOverview(await api('overview'));
    } catch (e) {
      nodes = [
        el(
          'section',
          { class: 'wide' },
          el('p', { class: 'muted', text: `could not load: ${e.message}` }),
        ),
      ];
    }
    // A slower, older refresh must not overwrite a newer page.
    if (mine !== generation) return;
    document.getElementById('main').replaceChildren(...nodes.filter(Boolean));
    document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.ready = String(generation);
  }

  async function start() {
    config = await api('config');
    document.title = `${config.title} · dashboard`;
    document.getElementById('title').textContent = config.title;
    renderAuth();
    route();
    renderNav();
    await refresh();
    window.addEventListener('hashchange', () => {
      route();
      renderNav();
      refresh();
    });
    timer = setInterval(refresh, Math.max(500, config.refreshInterval * 1000));
    document.addEventListener('visibilitychange', () => {
      clearInterval(timer);
      if (!document.hidden) {
        refresh();
        timer = setInterval(refresh, Math.max(500, config.refreshInterval * 1000));
      }
    });
  }

  start().catch((e) => {
    document.getElementById('main').textContent = `could not start the dashboard: ${e.message}`;
  });
})();
