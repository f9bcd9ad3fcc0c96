// The services pages: /services (the dependency graph and every service's RED numbers) and
// /services/{name} (RED charts over time, callers and callees, operations).

import {
  api, h, link, fmtDur, fmtInt, fmtPct, fmtRate, rateAxis, message, navigate, query, serviceHue, assignHues,
  nanosToMs, LOOKBACKS,
} from './lib.js';
import { lineChart } from './charts.js';
import { dependencyGraph } from './graph.js';

function windowSelect(lookback) {
  const sel = h('select', {
    'aria-label': 'Time range', onchange: () => {
      const q = new URLSearchParams(location.search);
      q.set('lookback', sel.value);
      navigate(`${location.pathname}?${q}`);
    },
  }, LOOKBACKS.map(([v, label]) => h('option', { value: v }, label)));
  sel.value = lookback;
  return sel;
}

function lookbackOf() {
  return new URLSearchParams(location.search).get('lookback') ?? '1h';
}

function scanNote(body) {
  return body.truncated
    ? h('p', { class: 'muted warn-text' }, `Computed from the newest ${fmtInt(body.tracesScanned)} traces of the window only (the scan limit).`)
    : h('p', { class: 'muted' }, `Computed from ${fmtInt(body.tracesScanned)} trace${body.tracesScanned === 1 ? '' : 's'} in the window.`);
}

// ----- /services -------------------------------------------------------------------------------

export function servicesPage(main) {
  const ctl = new AbortController();
  const lookback = lookbackOf();
  const body = h('div', { class: 'services-body' }, h('div', { class: 'loading' }, 'Loading the dependency graph…'));
  main.replaceChildren(h('section', { class: 'page services-page' },
    h('header', { class: 'page-head' }, h('h1', null, 'Services'), h('span', { class: 'spacer' }), windowSelect(lookback)),
    body));
  document.title = 'Services · Stitch';
  (async () => {
    let deps;
    try {
      deps = await api(`/api/v1/dependencies${query({ lookback })}`, { signal: ctl.signal });
    } catch (e) {
      if (e.name !== 'AbortError') body.replaceChildren(message('error', 'Could not load the dependency graph.', e.message));
      return;
    }
    assignHues(deps.services.map((sv) => sv.name));
    const stats = (deps.serviceStats ?? []).slice().sort((a, b) => b.requests - a.requests);
    body.replaceChildren(
      h('div', { class: 'card' },
        h('h2', null, 'Dependencies'),
        deps.edges.length || deps.services.length
          ? dependencyGraph(deps)
          : message('info', 'No calls between services in this window.', 'Widen the time range, or send traces that cross services.'),
        scanNote(deps)),
      h('div', { class: 'card' },
        h('h2', null, 'Requests served'),
        stats.length ? redTable(stats, (r) => link(`/services/${encodeURIComponent(r.service)}${query({ lookback })}`,
          h('span', { class: 'svc', style: `--h:${serviceHue(r.service)}` }, r.service)))
          : message('info', 'No requests in this window.')));
  })();
  return { destroy: () => ctl.abort() };
}

function redTable(rows, nameCell, extra) {
  return h('table', { class: 'red-table' },
    h('thead', null, h('tr', null,
      h('th', null, 'Name'), extra ? h('th', null, 'Kind') : null,
      h('th', { class: 'n' }, 'Requests'), h('th', { class: 'n' }, 'Rate'), h('th', { class: 'n' }, 'Errors'),
      h('th', { class: 'n' }, 'p50'), h('th', { class: 'n' }, 'p95'), h('th', { class: 'n' }, 'p99'), extra ? h('th', null, '') : null)),
    h('tbody', null, rows.map((r) => h('tr', { class: extra?.rowClass?.(r) ?? '', onclick: extra?.onRow ? () => extra.onRow(r) : null },
      h('td', null, nameCell(r)), extra ? h('td', null, r.spanKind || '–') : null,
      h('td', { class: 'n' }, fmtInt(r.requests)),
      h('td', { class: 'n' }, fmtRate(r.ratePerSecond)),
      h('td', { class: `n${r.errors ? ' err-text' : ''}` }, r.errors ? `${fmtPct(r.errorRate)} (${fmtInt(r.errors)})` : '0%'),
      h('td', { class: 'n' }, fmtDur(r.p50Nanos)),
      h('td', { class: 'n' }, fmtDur(r.p95Nanos)),
      h('td', { class: 'n' }, fmtDur(r.p99Nanos)),
      extra ? h('td', null, extra.actions(r)) : null))));
}

// ----- /services/{name} ------------------------------------------------------------------------

export function servicePage(main, name) {
  const ctl = new AbortController();
  const lookback = lookbackOf();
  const body = h('div', { class: 'service-body' }, h('div', { class: 'loading' }, `Loading ${name}…`));
  main.replaceChildren(h('section', { class: 'page service-page' },
    h('header', { class: 'page-head' },
      h('div', null,
        h('div', { class: 'crumbs' }, link(`/services${query({ lookback })}`, 'Services'), ' / '),
        h('h1', null, h('span', { class: 'svc big', style: `--h:${serviceHue(name)}` }, name))),
      h('span', { class: 'spacer' }),
      link(`/search${query({ service: name, lookback })}`, h('span', { class: 'btn' }, 'Search traces')),
      windowSelect(lookback)),
    body));
  document.title = `${name} · Stitch`;
  const state = { red: null, deps: null };

  const selection = () => {
    const q = new URLSearchParams(location.search);
    return { operation: q.get('operation'), kind: q.get('kind') ?? '' };
  };

  function render() {
    const { red, deps } = state;
    const sel = selection();
    const chosen = sel.operation !== null
      ? red.operations.find((o) => o.operation === sel.operation && (o.spanKind ?? '') === sel.kind) ?? null
      : red.overall;
    const xs = red.timestamps.map(nanosToMs);
    const stepMs = red.stepNanos / 1e6;
    const charts = chosen
      ? h('div', { class: 'charts' },
        chartCard('Requests', lineChart({ xs, stepMs, series: [{ label: 'rate', values: chosen.series.ratePerSecond, cls: 's-rate', area: true }], yFmt: rateAxis(Math.max(0, ...chosen.series.ratePerSecond)), ariaLabel: 'Request rate over time' })),
        chartCard('Errors', lineChart({ xs, stepMs, series: [{ label: 'error rate', values: chosen.series.errorRate, cls: 's-err', area: true }], yFmt: fmtPct, yMinMax: 0.01, ariaLabel: 'Error rate over time' })),
        chartCard('Duration', lineChart({
          xs, stepMs, ariaLabel: 'Duration quantiles over time', yFmt: fmtDur, series: [
            { label: 'p50', values: chosen.series.p50Nanos, cls: 's-p50' },
            { label: 'p95', values: chosen.series.p95Nanos, cls: 's-p95' },
            { label: 'p99', values: chosen.series.p99Nanos, cls: 's-p99' }],
        })))
      : message('info', `${name} served no request in this window.`, 'Its operations below may still have spans.');
    const summary = chosen?.summary;
    const tiles = summary ? h('div', { class: 'tiles' },
      tile('Requests', fmtInt(summary.requests)), tile('Rate', fmtRate(summary.ratePerSecond)),
      tile('Error rate', fmtPct(summary.errorRate), summary.errors ? 'bad' : ''),
      tile('p50', fmtDur(summary.p50Nanos)), tile('p95', fmtDur(summary.p95Nanos)), tile('p99', fmtDur(summary.p99Nanos))) : null;
    const heading = sel.operation !== null
      ? h('h2', null, h('span', { class: 'op-title' }, sel.operation), sel.kind ? h('small', null, ` ${sel.kind}`) : null, ' ',
        h('a', { href: '#', class: 'small-link', onclick: (e) => { e.preventDefault(); choose(null); } }, 'show the whole service'))
      : h('h2', null, 'Requests served', h('small', { class: 'muted' }, ' (entry spans: what callers waited for)'));
    const callers = deps ? deps.edges.filter((e) => e.child === name) : [];
    const callees = deps ? deps.edges.filter((e) => e.parent === name) : [];
    body.replaceChildren(
      h('div', { class: 'card' }, heading, tiles, charts, scanNote(red)),
      h('div', { class: 'card two-col' },
        h('div', null, h('h2', null, 'Called by'), edgeTable(callers, 'parent', lookback)),
        h('div', null, h('h2', null, 'Calls'), edgeTable(callees, 'child', lookback))),
      h('div', { class: 'card' }, h('h2', null, `Operations (${red.operations.length})`),
        red.operations.length ? redTable(red.operations.map((o) => ({ ...o.summary, _o: o })), (r) => h('a', {
          href: `/services/${encodeURIComponent(name)}${query({ lookback, operation: r.operation, kind: r.spanKind })}`,
          onclick: (e) => { e.preventDefault(); choose(r._o); },
        }, r.operation), {
          rowClass: (r) => (chosen === r._o ? 'selected' : ''),
          actions: (r) => link(`/search${query({ service: name, operation: r.operation, lookback })}`, 'traces'),
        }) : message('info', 'No spans in this window.')),
      deps ? h('div', { class: 'card' }, h('h2', null, 'Neighbourhood'), dependencyGraph(neighbourhood(deps, name), { highlight: name })) : null);
  }

  function choose(o) {
    const q = new URLSearchParams(location.search);
    if (o) {
      q.set('operation', o.operation);
      if (o.spanKind) q.set('kind', o.spanKind);
      else q.delete('kind');
    } else {
      q.delete('operation');
      q.delete('kind');
    }
    history.pushState(null, '', `${location.pathname}?${q}`);
    render();
    window.scrollTo({ top: 0 });
  }

  (async () => {
    try {
      const [red, deps] = await Promise.all([
        api(`/api/v1/services/${encodeURIComponent(name)}/red${query({ lookback })}`, { signal: ctl.signal }),
        api(`/api/v1/dependencies${query({ lookback })}`, { signal: ctl.signal }).catch((e) => (e.name === 'AbortError' ? Promise.reject(e) : null)),
      ]);
      state.red = red;
      state.deps = deps;
      if (deps) assignHues(deps.services.map((sv) => sv.name));
      render();
    } catch (e) {
      if (e.name !== 'AbortError') body.replaceChildren(message('error', `Could not load ${name}.`, e.message));
    }
  })();

  return {
    onUrl() {
      const q = new URLSearchParams(location.search);
      if (state.red && (q.get('lookback') ?? '1h') === lookback) {
        render();
        return true;
      }
      return false;
    },
    destroy: () => ctl.abort(),
  };
}

/** The services one call away from `name`, and the edges among them. */
function neighbourhood(deps, name) {
  const near = new Set([name]);
  for (const e of deps.edges) {
    if (e.parent === name) near.add(e.child);
    if (e.child === name) near.add(e.parent);
  }
  return {
    services: deps.services.filter((sv) => near.has(sv.name)),
    edges: deps.edges.filter((e) => near.has(e.parent) && near.has(e.child) && (e.parent === name || e.child === name)),
    serviceStats: deps.serviceStats,
  };
}

function edgeTable(edges, side, lookback) {
  if (!edges.length) return h('p', { class: 'muted' }, 'none in this window');
  return h('table', { class: 'red-table' },
    h('thead', null, h('tr', null, h('th', null, 'Service'), h('th', { class: 'n' }, 'Calls'), h('th', { class: 'n' }, 'Errors'), h('th', { class: 'n' }, 'p50'), h('th', { class: 'n' }, 'p99'))),
    h('tbody', null, edges.map((e) => {
      const other = e[side];
      const inferred = side === 'child' && e.inferredChild;
      return h('tr', null,
        h('td', null, inferred ? h('span', { class: 'svc', style: `--h:${serviceHue(other)}`, title: 'not instrumented' }, other, h('small', null, ' (inferred)'))
          : link(`/services/${encodeURIComponent(other)}${query({ lookback })}`, h('span', { class: 'svc', style: `--h:${serviceHue(other)}` }, other))),
        h('td', { class: 'n' }, fmtInt(e.callCount)),
        h('td', { class: `n${e.errorCount ? ' err-text' : ''}` }, e.errorCount ? `${fmtPct(e.errorRate)} (${fmtInt(e.errorCount)})` : '0%'),
        h('td', { class: 'n' }, fmtDur(e.p50Nanos)),
        h('td', { class: 'n' }, fmtDur(e.p99Nanos)));
    })));
}

function chartCard(title, chart) {
  return h('div', { class: 'chart-card' }, h('h3', null, title), chart);
}

function tile(label, value, cls = '') {
  return h('div', { class: `tile ${cls}` }, h('span', null, label), h('strong', null, value));
}
