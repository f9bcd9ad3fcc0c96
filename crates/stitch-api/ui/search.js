// The search page: a TraceQL query box, and a form (service, operation, attributes, durations,
// time range, limit) that is its simple mode: it shows the TraceQL it stands for, which "Edit
// as TraceQL" moves into the box. State lives in the URL (`q=` for a TraceQL search, the form's
// fields otherwise); results are a scatter plot and a list, newest first.

import {
  api, h, link, fmtDur, fmtInt, fmtDateTime, fmtAgo, message, navigate, query, serviceHue,
  LOOKBACKS, lookbackMs,
} from './lib.js';
import { scatterPlot } from './charts.js';

const SORTS = [
  ['newest', 'Newest first'], ['longest', 'Longest first'], ['shortest', 'Shortest first'],
  ['spans', 'Most spans'], ['errors', 'Most errors'],
];

/** Parses "key=value key2=\"a b\"" (logfmt) into an object; throws on malformed input. */
export function parseTags(text) {
  const out = {};
  const re = /\s*([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/gy;
  let m;
  let pos = 0;
  const t = text.trim();
  while (pos < t.length && (m = re.exec(t))) {
    out[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
    pos = re.lastIndex;
  }
  if (t.slice(pos).trim()) throw new Error(`cannot read "${t.slice(pos).trim()}": write key=value pairs separated by spaces`);
  return out;
}

const DURATION = /^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)$/;

/** A TraceQL attribute reference for a key, quoted when the key needs it. */
function attrRef(key) {
  return /^[A-Za-z_][^\s{}()=~!<>&|,"^]*$/.test(key) ? `.${key}` : `.${JSON.stringify(key)}`;
}

/**
 * The TraceQL query the form's fields stand for: one span with every condition, attributes
 * compared as text or as the number or boolean they spell (as the form's search compares them).
 * Throws on a duration TraceQL cannot write.
 */
export function formToTraceQL(p) {
  const conds = [];
  const str = (v) => JSON.stringify(v);
  if (p.service) conds.push(`resource.service.name = ${str(p.service)}`);
  if (p.operation) conds.push(`name = ${str(p.operation)}`);
  for (const [k, v] of Object.entries(parseTags(p.tags ?? ''))) {
    const a = attrRef(k);
    if (k === 'error' && v === 'true') conds.push(`(status = error || ${a} = true)`);
    else if (/^-?\d+$/.test(v) || v === 'true' || v === 'false') conds.push(`(${a} = ${v} || ${a} = ${str(v)})`);
    else conds.push(`${a} = ${str(v)}`);
  }
  for (const [field, op] of [['minDuration', '>='], ['maxDuration', '<=']]) {
    const d = (p[field] ?? '').trim();
    if (!d) continue;
    if (!DURATION.test(d)) throw new Error(`${d} is not a duration TraceQL can write (e.g. 250ms, 1.5s, 2m)`);
    conds.push(`duration ${op} ${d}`);
  }
  return conds.length ? `{ ${conds.join(' && ')} }` : '{ }';
}

/** Summarises a trace of a TraceQL answer for the list. */
function summarizeTraceQL(t) {
  const stats = Object.entries(t.serviceStats ?? {});
  return {
    id: t.traceID,
    title: `${t.rootServiceName}: ${t.rootTraceName}`,
    startMs: Number(t.startTimeUnixNano) / 1e6,
    durNs: (t.durationMs ?? 0) * 1e6,
    spans: stats.reduce((n, [, s]) => n + s.spanCount, 0),
    errors: stats.reduce((n, [, s]) => n + s.errorCount, 0),
    matched: (t.spanSets ?? []).reduce((n, s) => n + (s.matched ?? 0), 0),
    services: stats.map(([sv, s]) => [sv, s.spanCount]).sort((a, b) => b[1] - a[1]),
  };
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

/** Summarises a Jaeger-format trace for the list. */
function summarize(t) {
  const spans = t.spans ?? [];
  const ids = new Set(spans.map((sp) => sp.spanID));
  let start = Infinity;
  let end = -Infinity;
  let root = null;
  let errors = 0;
  const services = new Map();
  const svcOf = (sp) => t.processes?.[sp.processID]?.serviceName ?? 'unknown_service';
  for (const sp of spans) {
    if (sp.startTime < start) start = sp.startTime;
    if (sp.startTime + sp.duration > end) end = sp.startTime + sp.duration;
    const isRoot = !(sp.references ?? []).some((r) => r.refType === 'CHILD_OF' && ids.has(r.spanID));
    if (isRoot && (!root || sp.startTime < root.startTime)) root = sp;
    if ((sp.tags ?? []).some((tg) => tg.key === 'error' && (tg.value === true || tg.value === 'true'))) errors++;
    const sv = svcOf(sp);
    services.set(sv, (services.get(sv) ?? 0) + 1);
  }
  root ??= spans[0];
  return {
    id: t.traceID,
    title: root ? `${svcOf(root)}: ${root.operationName}` : t.traceID,
    startMs: start / 1e3,
    durNs: (end - start) * 1e3,
    spans: spans.length,
    errors,
    services: [...services.entries()].sort((a, b) => b[1] - a[1]),
  };
}

export function searchPage(main) {
  const state = { destroyed: false, ctl: null, services: [], results: null, sort: 'newest' };
  const f = {};
  f.service = h('select', { name: 'service', 'aria-label': 'Service', onchange: () => loadOperations(f.service.value, '') });
  f.operation = h('select', { name: 'operation', 'aria-label': 'Operation' }, h('option', { value: '' }, 'All operations'));
  f.tags = h('input', { name: 'tags', type: 'text', placeholder: 'http.status_code=500 error=true', 'aria-label': 'Attributes' });
  f.minDuration = h('input', { name: 'minDuration', type: 'text', placeholder: 'e.g. 100ms', size: 8, 'aria-label': 'Minimum duration' });
  f.maxDuration = h('input', { name: 'maxDuration', type: 'text', placeholder: 'e.g. 2s', size: 8, 'aria-label': 'Maximum duration' });
  f.lookback = h('select', { name: 'lookback', 'aria-label': 'Time range', onchange: () => { customBox.hidden = f.lookback.value !== 'custom'; } },
    LOOKBACKS.map(([v, label]) => h('option', { value: v }, label)), h('option', { value: 'custom' }, 'Custom range'));
  f.start = h('input', { name: 'start', type: 'datetime-local', 'aria-label': 'From' });
  f.end = h('input', { name: 'end', type: 'datetime-local', 'aria-label': 'To' });
  f.limit = h('input', { name: 'limit', type: 'number', min: 1, max: 1500, value: 20, 'aria-label': 'Limit' });
  const customBox = h('div', { class: 'field-row', hidden: true },
    field('From', f.start), field('To', f.end));
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'search-form', onsubmit: (e) => { e.preventDefault(); submit(); } },
    h('h2', null, 'Find traces'),
    field('Service', f.service),
    field('Operation', f.operation),
    field('Attributes', f.tags, 'key=value pairs, space separated'),
    h('div', { class: 'field-row' }, field('Min duration', f.minDuration), field('Max duration', f.maxDuration)),
    field('Time range', f.lookback),
    customBox,
    field('Limit', f.limit),
    formError,
    h('button', { type: 'submit', class: 'btn primary' }, 'Find traces'));
  const asTraceQL = h('code', { class: 'as-traceql', 'data-testid': 'form-traceql' });
  form.insertBefore(h('div', { class: 'field' }, h('span', null, 'As TraceQL'), asTraceQL,
    h('button', { type: 'button', class: 'btn', onclick: () => editAsTraceQL() }, 'Edit as TraceQL')), formError);
  form.addEventListener('input', () => showFormQuery());
  form.addEventListener('change', () => showFormQuery());
  f.q = h('textarea', { name: 'q', rows: 3, spellcheck: 'false', placeholder: '{ status = error } >> { resource.service.name = "db" }', 'aria-label': 'TraceQL query' });
  const qError = h('pre', { class: 'form-error traceql-error', role: 'alert' });
  const qForm = h('form', { class: 'search-form traceql-form', onsubmit: (e) => { e.preventDefault(); runQuery(); } },
    h('label', { class: 'field' }, h('span', null, 'TraceQL'), f.q),
    qError,
    h('button', { type: 'button', class: 'btn primary', onclick: () => runQuery() }, 'Run query'));
  f.q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runQuery(); }
  });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  main.replaceChildren(h('section', { class: 'page search-page' }, h('aside', { class: 'search-side' }, qForm, form), results));
  document.title = 'Search · Stitch';

  function field(label, input, hint) {
    return h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', null, hint) : null);
  }

  async function loadOperations(service, selected) {
    f.operation.replaceChildren(h('option', { value: '' }, 'All operations'));
    if (!service) return;
    try {
      const ops = await api(`/api/operations${query({ service })}`);
      const names = [...new Set((ops.data ?? []).map((o) => o.name))].sort();
      for (const n of names) f.operation.append(h('option', { value: n }, n));
      if (selected && !names.includes(selected)) f.operation.append(h('option', { value: selected }, selected));
      f.operation.value = selected ?? '';
    } catch {
      if (selected) f.operation.append(h('option', { value: selected }, selected));
      f.operation.value = selected ?? '';
    }
  }

  /** The form's fields as the parameters of a search. */
  function formParams() {
    return {
      service: f.service.value,
      operation: f.operation.value,
      tags: f.tags.value.trim(),
      minDuration: f.minDuration.value.trim(),
      maxDuration: f.maxDuration.value.trim(),
    };
  }

  function showFormQuery() {
    try {
      asTraceQL.textContent = formToTraceQL(formParams());
    } catch (e) {
      asTraceQL.textContent = `(${e.message})`;
    }
  }

  function editAsTraceQL() {
    formError.textContent = '';
    let q;
    try {
      q = formToTraceQL(formParams());
    } catch (e) {
      formError.textContent = e.message;
      return;
    }
    f.q.value = q;
    runQuery();
  }

  function runQuery() {
    qError.textContent = '';
    const q = f.q.value.trim();
    if (!q) {
      qError.textContent = 'Write a TraceQL query, e.g. { status = error }';
      return;
    }
    navigate(`/search${query({ q, lookback: f.lookback.value === 'custom' ? '1h' : f.lookback.value, limit: f.limit.value })}`);
  }

  function submit() {
    formError.textContent = '';
    const p = {
      service: f.service.value,
      operation: f.operation.value,
      tags: f.tags.value.trim(),
      minDuration: f.minDuration.value.trim(),
      maxDuration: f.maxDuration.value.trim(),
      lookback: f.lookback.value,
      limit: f.limit.value,
    };
    try {
      parseTags(p.tags);
    } catch (e) {
      formError.textContent = `Attributes: ${e.message}`;
      return;
    }
    if (p.lookback === 'custom') {
      if (!f.start.value) {
        formError.textContent = 'Choose the start of the custom range.';
        return;
      }
      p.start = String(new Date(f.start.value).getTime() * 1000);
      p.end = f.end.value ? String(new Date(f.end.value).getTime() * 1000) : '';
    }
    navigate(`/search${query(p)}`);
  }

  /** Reads the URL into the form and runs the search. */
  async function fromUrl() {
    const q = new URLSearchParams(location.search);
    if (!state.services.length) {
      try {
        state.services = (await api('/api/services')).data ?? [];
      } catch (e) {
        results.replaceChildren(message('error', 'Could not load the services.', e.message));
        return;
      }
      if (state.destroyed) return;
      f.service.replaceChildren(...state.services.map((sv) => h('option', { value: sv }, sv)));
    }
    if (!state.services.length) {
      results.replaceChildren(message('info', 'No traces yet.', 'Point an OpenTelemetry SDK at Stitch (OTLP on ports 4317 and 4318) and traces will appear here.'));
      return;
    }
    if (q.get('q')) {
      f.q.value = q.get('q');
      f.lookback.value = q.get('lookback') ?? '1h';
      f.limit.value = q.get('limit') ?? '20';
      state.sort = q.get('sort') ?? 'newest';
      await runTraceQL(q);
      return;
    }
    let service = q.get('service');
    if (!service) {
      const last = localStorage.getItem('stitch-last-service');
      service = state.services.includes(last) ? last : state.services[0];
      navigate(`/search${query({ service, lookback: q.get('lookback') ?? '1h' })}`, { replace: true });
      return;
    }
    if (!state.services.includes(service)) f.service.append(h('option', { value: service }, service));
    f.service.value = service;
    localStorage.setItem('stitch-last-service', service);
    await loadOperations(service, q.get('operation') ?? '');
    f.tags.value = q.get('tags') ?? '';
    f.minDuration.value = q.get('minDuration') ?? '';
    f.maxDuration.value = q.get('maxDuration') ?? '';
    const lookback = q.get('lookback') ?? (q.get('start') ? 'custom' : '1h');
    f.lookback.value = lookback;
    customBox.hidden = lookback !== 'custom';
    if (q.get('start')) f.start.value = toLocalInput(Number(q.get('start')) / 1000);
    if (q.get('end')) f.end.value = toLocalInput(Number(q.get('end')) / 1000);
    f.limit.value = q.get('limit') ?? '20';
    state.sort = q.get('sort') ?? 'newest';
    showFormQuery();
    f.q.value = asTraceQL.textContent.startsWith('(') ? '' : asTraceQL.textContent;
    await run(q);
  }

  /** The window of a search's URL as `start` and `end` in Unix microseconds. */
  function windowOf(q) {
    const lookback = q.get('lookback') ?? (q.get('start') ? 'custom' : '1h');
    if (lookback === 'custom') return { start: q.get('start'), end: q.get('end') ?? '' };
    const end = Date.now() * 1000;
    return { start: String(end - lookbackMs(lookback) * 1000), end: String(end) };
  }

  async function runTraceQL(q) {
    state.ctl?.abort();
    state.ctl = new AbortController();
    qError.textContent = '';
    results.replaceChildren(h('div', { class: 'loading' }, 'Searching…'));
    const text = q.get('q');
    try {
      const body = await api(`/api/v1/search${query({ q: text, limit: q.get('limit') ?? '20', ...windowOf(q) })}`, { signal: state.ctl.signal });
      if (state.destroyed) return;
      state.results = (body.traces ?? []).map(summarizeTraceQL);
      renderResults();
      if (body.metrics?.truncated) {
        results.prepend(message('info', `Only the newest ${fmtInt(body.metrics.inspectedTraces)} candidate traces were searched.`, 'Narrow the time range to reach older ones.'));
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
      const pos = e.body?.error?.position;
      qError.textContent = pos === undefined ? e.message : `${e.message}\n${text}\n${' '.repeat([...text].slice(0, pos).length)}^`;
      results.replaceChildren(message('error', 'The query was refused.', e.message));
    }
  }

  async function run(q) {
    state.ctl?.abort();
    state.ctl = new AbortController();
    const params = {
      service: q.get('service'),
      operation: q.get('operation') ?? '',
      minDuration: q.get('minDuration') ?? '',
      maxDuration: q.get('maxDuration') ?? '',
      limit: q.get('limit') ?? '20',
    };
    let tags = {};
    try {
      tags = parseTags(q.get('tags') ?? '');
    } catch (e) {
      results.replaceChildren(message('error', 'The attribute filter is malformed.', e.message));
      return;
    }
    if (Object.keys(tags).length) params.tags = JSON.stringify(tags);
    const lookback = q.get('lookback') ?? (q.get('start') ? 'custom' : '1h');
    if (lookback === 'custom') {
      params.start = q.get('start');
      params.end = q.get('end') ?? '';
    } else {
      const end = Date.now() * 1000;
      params.end = String(end);
      params.start = String(end - lookbackMs(lookback) * 1000);
    }
    results.replaceChildren(h('div', { class: 'loading' }, 'Searching…'));
    try {
      const body = await api(`/api/traces${query(params)}`, { signal: state.ctl.signal });
      if (state.destroyed) return;
      state.results = (body.data ?? []).map(summarize);
      renderResults();
    } catch (e) {
      if (e.name === 'AbortError') return;
      results.replaceChildren(message('error', 'The search failed.', e.message));
    }
  }

  function sorted() {
    const r = [...state.results];
    const by = {
      newest: (a, b) => b.startMs - a.startMs,
      longest: (a, b) => b.durNs - a.durNs,
      shortest: (a, b) => a.durNs - b.durNs,
      spans: (a, b) => b.spans - a.spans,
      errors: (a, b) => b.errors - a.errors || b.startMs - a.startMs,
    }[state.sort] ?? ((a, b) => b.startMs - a.startMs);
    return r.sort(by);
  }

  function renderResults() {
    const list = sorted();
    if (!list.length) {
      results.replaceChildren(message('info', 'No trace matches.', 'Widen the time range, or remove a filter.'));
      return;
    }
    const maxDur = Math.max(...list.map((r) => r.durNs), 1);
    const sortSel = h('select', {
      'aria-label': 'Sort', onchange: () => {
        state.sort = sortSel.value;
        const q = new URLSearchParams(location.search);
        q.set('sort', state.sort);
        history.replaceState(null, '', `/search?${q}`);
        renderResults();
      },
    }, SORTS.map(([v, label]) => h('option', { value: v }, label)));
    sortSel.value = state.sort;
    const errCount = list.filter((r) => r.errors).length;
    const plot = scatterPlot({
      points: list.map((r) => ({
        id: r.id, x: r.startMs, y: r.durNs, r: 3 + Math.min(6, Math.log2(1 + r.spans) / 1.5), error: r.errors > 0,
        href: `/trace/${r.id}`, label: `${r.title}\n${fmtDur(r.durNs)}, ${r.spans} spans${r.errors ? `, ${r.errors} errors` : ''}\n${fmtDateTime(r.startMs)}`,
      })),
      yFmt: fmtDur,
      height: 190,
    });
    results.replaceChildren(
      h('div', { class: 'results-head' },
        h('h2', null, `${fmtInt(list.length)} trace${list.length === 1 ? '' : 's'}`),
        errCount ? h('span', { class: 'err-text' }, `${errCount} with errors`) : null,
        h('span', { class: 'spacer' }), sortSel),
      h('div', { class: 'card' }, plot),
      h('ol', { class: 'result-list' }, list.map((r) => h('li', { class: `result${r.errors ? ' has-errors' : ''}`, 'data-trace-id': r.id },
        link(`/trace/${r.id}`,
          h('div', { class: 'r-top' },
            h('span', { class: 'r-title' }, r.title),
            h('span', { class: 'r-dur' }, fmtDur(r.durNs))),
          h('div', { class: 'r-bar' }, h('span', { style: `width:${Math.max(0.5, (100 * r.durNs) / maxDur)}%` })),
          h('div', { class: 'r-meta' },
            h('span', null, `${fmtInt(r.spans)} spans`),
            r.matched ? h('span', { class: 'matched' }, `${fmtInt(r.matched)} matching`) : null,
            r.errors ? h('span', { class: 'err-text' }, `${fmtInt(r.errors)} error${r.errors === 1 ? '' : 's'}`) : null,
            h('span', { class: 'chips' }, r.services.slice(0, 8).map(([sv, n]) => h('span', { class: 'chip', style: `--h:${serviceHue(sv)}` }, sv, h('small', null, ` ${n}`))),
              r.services.length > 8 ? h('span', { class: 'muted' }, ` +${r.services.length - 8}`) : null),
            h('span', { class: 'spacer' }),
            h('span', { class: 'muted', title: fmtDateTime(r.startMs) }, fmtAgo(r.startMs)),
            h('code', { class: 'muted' }, r.id.slice(0, 12))))))));
  }

  fromUrl();
  return {
    onUrl() {
      fromUrl();
      return true;
    },
    onKey(e) {
      if (e.key === '/') {
        f.service.focus();
        return true;
      }
      return false;
    },
    destroy() {
      state.destroyed = true;
      state.ctl?.abort();
    },
  };
}
