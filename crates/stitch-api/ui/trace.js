// The trace page: header, minimap, waterfall, and a side panel with the findings, the selected
// span's details and the trace's statistics.

import {
  api, h, link, fmtDur, fmtInt, fmtPct, fmtDateTime, message, debounce, navigate, query,
  serviceHue, assignHues,
} from './lib.js';
import {
  buildTrace, attachDetails, applyAnalysis, initialView, childItems, expandCriticalPath, visibleRows, reveal, findSpans,
  selfTime, anyValueText, KIND_NAMES, FULL_EXPAND_MAX,
} from './model.js';
import { Waterfall, Minimap } from './waterfall.js';

/** Traces up to this many spans have all their details loaded after the first paint. */
const DETAIL_PRELOAD_MAX = 20000;

const FINDING_KINDS = {
  dominantLeaf: 'Dominant span',
  uninstrumentedTime: 'Uninstrumented time',
  clientServerGap: 'Client → server gap',
  sequentialCalls: 'Sequential calls',
  repeatedCalls: 'Repeated calls',
  retries: 'Retries',
  errorOrigin: 'Error origin',
  synchronousTail: 'Synchronous tail',
  brokenPropagation: 'Broken propagation',
};

export function traceTitle(model) {
  const root = model.spans[model.cpRoot >= 0 ? model.cpRoot : model.roots[0]];
  return root ? `${root.service}: ${root.name}` : 'Empty trace';
}

/** Renders /trace/{id}; returns the page controller ({destroy, onKey, onUrl}). */
export function tracePage(main, traceId) {
  const id = traceId.toLowerCase();
  const page = h('section', { class: 'page trace-page' },
    h('div', { class: 'loading' }, `Loading trace ${id}…`));
  main.replaceChildren(page);
  const ctl = new AbortController();
  const t0 = performance.now();
  // Timings for bench/ui_100k.sh, in milliseconds since navigation started.
  const timing = { pageStart: t0 };
  window.__stitchTiming = timing;
  const state = {
    destroyed: false,
    model: null,
    view: null,
    rows: [],
    selSpan: -1,
    selRow: -1,
    wf: null,
    mm: null,
    matches: [],
    matchPos: -1,
    tab: 'findings',
    activeFinding: -1,
    analysisError: null,
  };

  const traceP = api(`/api/v1/traces/${encodeURIComponent(id)}/waterfall`, { signal: ctl.signal });
  const analysisP = api(`/api/v1/traces/${encodeURIComponent(id)}/analysis`, { signal: ctl.signal });
  // Settle the analysis promise early so a failure is never unhandled.
  analysisP.catch(() => {});

  traceP.then((doc) => {
    if (state.destroyed) return;
    const tModel = performance.now();
    const model = buildTrace(doc, id);
    const modelMs = performance.now() - tModel;
    if (!model.spans.length) throw new Error('the trace has no spans');
    state.model = model;
    assignHues(model.services);
    state.view = initialView(model);
    build();
    const spanParam = new URLSearchParams(location.search).get('span');
    if (spanParam) selectSpanId(spanParam, { tab: 'span', center: true });
    else refreshRows();
    // Lay the first rows out now rather than in the next animation frame.
    state.wf.render();
    let paintedResolve;
    const painted = new Promise((r) => { paintedResolve = r; });
    requestAnimationFrame(() => {
      // The rows are laid out; this frame paints them.
      requestAnimationFrame(() => {
        Object.assign(timing, { paintedAt: performance.now(), modelMs, spans: model.spans.length, rows: state.rows.length });
        page.dataset.painted = '1';
        // The minimap draws every span: after the first paint, not before it.
        if (!state.destroyed) state.mm.draw();
        paintedResolve();
      });
    });
    if (model.spans.length <= DETAIL_PRELOAD_MAX) {
      // Small traces: load every span's details now, so that they show at once and the finder
      // searches attribute values too.
      api(`/api/v1/traces/${encodeURIComponent(id)}`, { signal: ctl.signal }).then((doc) => {
        if (state.destroyed) return;
        attachDetails(model, doc);
        if (state.tab === 'span') renderSide();
        if (els.find.value.trim()) runFind();
      }, () => {});
    }
    // The analysis is applied after the first paint, which it must never delay.
    Promise.all([analysisP, painted]).then(([analysis]) => {
      if (state.destroyed) return;
      applyAnalysis(model, analysis);
      expandCriticalPath(model, state.view);
      if (state.selSpan >= 0) reveal(model, state.view, state.selSpan);
      refreshRows();
      state.mm.draw();
      renderHead();
      renderSide();
      timing.analysisAppliedAt = performance.now();
      page.dataset.analysis = '1';
    }, (err) => {
      if (err.name === 'AbortError' || state.destroyed) return;
      state.analysisError = err;
      renderSide();
      page.dataset.analysis = 'error';
    });
  }).catch((err) => {
    if (err.name === 'AbortError' || state.destroyed) return;
    const notFound = err.status === 404;
    page.replaceChildren(message('error', notFound ? `Trace ${id} was not found.` : `Could not load trace ${id}.`,
      notFound ? 'It may have been deleted by retention, or not been received yet.' : err.message));
  });

  // ----- layout ---------------------------------------------------------------------------------

  let els = {};
  function build() {
    const model = state.model;
    els.head = h('header', { class: 'trace-head' });
    els.find = h('input', {
      type: 'search', class: 'find', placeholder: 'Find spans…  ( / )', 'aria-label': 'Find spans by service, operation, id or attribute value',
      oninput: debounce(() => runFind(), 150),
      onkeydown: (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          // Enter right after typing: search now rather than after the debounce.
          if (els.find.value !== state.findQuery) runFind();
          nextMatch(e.shiftKey ? -1 : 1);
        } else if (e.key === 'Escape') {
          els.find.value = '';
          runFind();
          state.wf.body.focus();
        }
      },
    });
    els.findCount = h('span', { class: 'find-count' });
    els.zoomReset = h('button', { class: 'btn', hidden: true, onclick: () => setRange(model.start, model.end) }, 'Reset zoom');
    const toolbar = h('div', { class: 'toolbar' },
      h('div', { class: 'find-box' }, els.find, els.findCount),
      h('button', { class: 'btn', onclick: () => expandAll(), title: 'Expand every span' }, 'Expand all'),
      h('button', { class: 'btn', onclick: () => collapseToPath(), title: 'Show the critical path and the errors only' }, 'Collapse'),
      els.zoomReset,
      h('span', { class: 'legend' },
        h('span', { class: 'lg cp' }), 'critical path',
        h('span', { class: 'lg self' }), 'uninstrumented',
        h('span', { class: 'lg net' }), 'client→server gap',
        h('span', { class: 'lg err' }), 'error'));
    els.mm = h('div', { class: 'minimap' });
    els.wf = h('div', { class: 'wf' });
    els.side = h('aside', { class: 'side', 'aria-label': 'Trace details' });
    page.replaceChildren(els.head, toolbar, els.mm, h('div', { class: 'trace-main' }, els.wf, els.side));
    state.wf = new Waterfall(els.wf, model, {
      onSelect: (k) => selectRow(k, { tab: 'span' }),
      onToggle: (k) => toggleRow(k),
      isExpanded: (i) => state.view.expanded[i] === 1,
      isGroupOpen: (gid) => state.view.openGroups.has(gid),
    });
    state.mm = new Minimap(els.mm, model, { onRange: (a, b) => setRange(a, b) });
    renderHead();
    renderSide();
    document.title = `${traceTitle(model)} · Stitch`;
  }

  function renderHead() {
    const m = state.model;
    const startMs = m.baseSec * 1e3 + m.start / 1e6;
    const services = [...m.serviceCounts.entries()].sort((a, b) => b[1] - a[1]);
    const dur = m.end - m.start;
    els.head.replaceChildren(
      h('h1', null, traceTitle(m)),
      h('dl', { class: 'facts' },
        fact('Trace', h('code', { class: 'trace-id', title: 'Trace id' }, m.traceId)),
        fact('Started', fmtDateTime(startMs)),
        fact('Duration', h('strong', { 'data-testid': 'trace-duration' }, fmtDur(dur))),
        fact('Spans', fmtInt(m.spans.length)),
        fact('Depth', String(m.maxDepth + 1)),
        fact('Errors', m.errorCount ? h('span', { class: 'err-text' }, fmtInt(m.errorCount)) : '0'),
        m.analysis?.skewAdjustments?.length
          ? fact('Clock skew', `${m.analysis.skewAdjustments.length} spans adjusted`) : null,
        m.roots.length > 1 ? fact('Roots', h('span', { title: 'Several roots: orphan spans or broken context propagation' }, String(m.roots.length))) : null),
      h('div', { class: 'chips' }, services.map(([s, n]) =>
        link(`/services/${encodeURIComponent(s)}`, h('span', { class: 'chip', style: `--h:${serviceHue(s)}` }, s, h('small', null, ` ${fmtInt(n)}`))))),
    );
  }

  function fact(label, value) {
    return h('div', null, h('dt', null, label), h('dd', null, value));
  }

  // ----- rows, selection, expansion ---------------------------------------------------------------

  function refreshRows() {
    state.rows = visibleRows(state.model, state.view);
    state.selRow = state.selSpan >= 0 ? state.rows.findIndex((r) => r.span === state.selSpan) : -1;
    state.wf.setRows(state.rows);
    state.wf.setSelected(state.selRow);
  }

  function selectRow(k, { tab, center = false, keepFinding = false } = {}) {
    const row = state.rows[k];
    if (!row) return;
    state.selRow = k;
    state.selSpan = row.span ?? -1;
    state.wf.setSelected(k);
    state.wf.scrollToRow(k, center);
    if (!keepFinding && state.activeFinding >= 0) {
      state.activeFinding = -1;
      state.wf.setMarked(new Set(state.matches));
    }
    if (row.span !== undefined) {
      const sp = state.model.spans[row.span];
      history.replaceState(null, '', `/trace/${state.model.traceId}${query({ span: sp.id })}`);
    }
    if (tab) state.tab = tab;
    renderSide();
  }

  function selectSpan(i, opts = {}) {
    reveal(state.model, state.view, i);
    state.selSpan = i;
    refreshRows();
    selectRow(state.selRow, { center: true, ...opts });
  }

  function selectSpanId(spanId, opts) {
    const i = state.model.byId.get(spanId.toLowerCase());
    if (i === undefined) {
      refreshRows();
      return;
    }
    selectSpan(i, opts);
  }

  function toggleRow(k) {
    const row = state.rows[k];
    if (!row) return;
    if (row.group) {
      const open = state.view.openGroups;
      if (open.has(row.group.id)) open.delete(row.group.id);
      else open.add(row.group.id);
    } else {
      const sp = state.model.spans[row.span];
      if (!sp.children) return;
      state.view.expanded[sp.i] ^= 1;
    }
    const keep = state.selSpan;
    refreshRows();
    if (keep < 0) {
      state.selRow = k;
      state.wf.setSelected(k);
    }
  }

  function setExpanded(k, open) {
    const row = state.rows[k];
    if (!row) return false;
    if (row.group) {
      const has = state.view.openGroups.has(row.group.id);
      if (has === open) return false;
    } else {
      const sp = state.model.spans[row.span];
      if (!sp.children || (state.view.expanded[sp.i] === 1) === open) return false;
    }
    toggleRow(k);
    return true;
  }

  /** Expands every span and opens every group of repeated siblings. */
  function expandAll() {
    const { model, view } = state;
    view.expanded.fill(1);
    for (const sp of model.spans) {
      if (!sp.children) continue;
      for (const it of childItems(model, view, sp.i)) if (typeof it === 'object') view.openGroups.add(it.id);
    }
    refreshRows();
  }

  function collapseToPath() {
    const fresh = initialView(state.model);
    if (state.model.spans.length <= FULL_EXPAND_MAX) {
      // Small traces open fully; "collapse" then means: critical path and errors only.
      fresh.expanded.fill(0);
      for (const sp of state.model.spans) {
        if (sp.children && sp.children.some((c) => state.model.spans[c].below)) fresh.expanded[sp.i] = 1;
      }
    }
    state.view = fresh;
    if (state.model.analysis) expandCriticalPath(state.model, state.view);
    refreshRows();
  }

  function setRange(a, b) {
    const m = state.model;
    const full = a <= m.start && b >= m.end;
    state.wf.setRange(a, b);
    state.mm.setRange(a, b);
    els.zoomReset.hidden = full;
  }

  // ----- find -----------------------------------------------------------------------------------

  function runFind() {
    const q = els.find.value;
    state.findQuery = q;
    state.matches = findSpans(state.model, q);
    state.matchPos = -1;
    els.findCount.textContent = q.trim() ? `${fmtInt(state.matches.length)} found` : '';
    state.activeFinding = -1;
    state.wf.setMarked(new Set(state.matches));
  }

  function nextMatch(dir) {
    if (!state.matches.length) return;
    state.matchPos = (state.matchPos + dir + state.matches.length) % state.matches.length;
    els.findCount.textContent = `${state.matchPos + 1} of ${fmtInt(state.matches.length)}`;
    selectSpan(state.matches[state.matchPos], { keepFinding: true });
  }

  // ----- side panel -----------------------------------------------------------------------------

  function renderSide() {
    const m = state.model;
    if (!m) return;
    const nFind = m.findings.length;
    const tabs = [
      ['findings', `Findings${m.analysis ? ` (${nFind})` : ''}`],
      ['span', 'Span'],
      ['stats', 'Statistics'],
    ];
    const tabBar = h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([key, label]) =>
      h('button', {
        class: `tab${state.tab === key ? ' active' : ''}`, role: 'tab', 'aria-selected': state.tab === key ? 'true' : 'false',
        'data-tab': key, onclick: () => { state.tab = key; renderSide(); },
      }, label)));
    let body;
    if (state.tab === 'findings') body = renderFindings();
    else if (state.tab === 'span') body = renderSpan();
    else body = renderStats();
    els.side.replaceChildren(tabBar, h('div', { class: 'side-body', role: 'tabpanel' }, body));
  }

  function analysisPending() {
    if (state.analysisError) return message('warn', 'The analysis of this trace is not available.', state.analysisError.message);
    return h('div', { class: 'loading small' }, 'Analysing the trace…');
  }

  function renderFindings() {
    const m = state.model;
    if (!m.analysis) return analysisPending();
    const dur = m.analysis.criticalPath?.totalNanos || m.end - m.start;
    const cp = criticalPathSummary();
    if (!m.findings.length) {
      return [cp, message('info', 'Nothing stands out in this trace.', 'No gap, sequential or repeated call, retry or error origin crossed the thresholds.')];
    }
    const list = h('ol', { class: 'findings' }, m.findings.map((f) => {
      const share = dur ? f.costNanos / dur : 0;
      return h('li', { class: `finding ${f.kind}${state.activeFinding === f.index ? ' active' : ''}`, 'data-kind': f.kind },
        h('button', {
          class: 'finding-btn', onclick: () => openFinding(f),
          title: 'Show the spans of this finding in the waterfall',
        },
        h('div', { class: 'finding-top' },
          h('span', { class: 'kind' }, FINDING_KINDS[f.kind] ?? f.kind),
          h('span', { class: 'cost', title: 'Time on the critical path' }, `${fmtDur(f.costNanos)} · ${fmtPct(share)}`)),
        h('p', { class: 'finding-title' }, f.title),
        f.savingNanos ? h('div', { class: 'saving' }, `Could save about ${fmtDur(f.savingNanos)}`) : null));
    }));
    return [cp, list];
  }

  function criticalPathSummary() {
    const m = state.model;
    const total = m.analysis.criticalPath?.totalNanos ?? 0;
    // The services owning the critical path, largest first.
    const by = new Map();
    for (const sp of m.spans) if (sp.cp) by.set(sp.service, (by.get(sp.service) ?? 0) + sp.cp);
    const parts = [...by.entries()].sort((a, b) => b[1] - a[1]);
    return h('div', { class: 'cp-summary' },
      h('div', { class: 'cp-head' }, h('strong', null, 'Critical path'), ` ${fmtDur(total)}`),
      h('div', { class: 'cp-bar', title: 'Share of the critical path per service' },
        parts.map(([s, t]) => h('span', { style: `width:${(100 * t) / Math.max(total, 1)}%;--h:${serviceHue(s)}`, title: `${s}: ${fmtDur(t)}` }))),
      h('div', { class: 'cp-legend' }, parts.slice(0, 6).map(([s, t]) =>
        h('span', null, h('i', { style: `--h:${serviceHue(s)}` }), `${s} ${fmtPct(t / Math.max(total, 1))}`))));
  }

  function openFinding(f) {
    state.activeFinding = f.index;
    state.wf.setMarked(new Set(f.spanIdx));
    if (f.spanIdx.length) {
      for (const i of f.spanIdx) reveal(state.model, state.view, i);
      selectSpan(f.spanIdx[0], { keepFinding: true });
    }
    renderSide();
  }

  function renderSpan() {
    const m = state.model;
    if (state.selSpan < 0) {
      const row = state.rows[state.selRow];
      if (row?.group) return renderGroupDetail(row.group);
      return message('info', 'Select a span to see its details.', 'Click a row, or move with j / k and the arrow keys.');
    }
    const sp = m.spans[state.selSpan];
    const raw = sp.raw ?? {};
    if (!sp.raw) loadDetail(sp);
    const dur = sp.end - sp.start;
    const total = m.end - m.start;
    const parent = sp.parent >= 0 ? m.spans[sp.parent] : null;
    const startMs = m.baseSec * 1e3 + sp.start / 1e6;
    const involved = m.findings.filter((f) => f.spanIdx.includes(sp.i));
    return h('div', { class: 'span-detail', 'data-span-id': sp.id },
      h('h2', null, h('span', { class: 'svc', style: `--h:${serviceHue(sp.service)}` }, sp.service), ' ', sp.name),
      h('div', { class: 'span-links' },
        link(`/services/${encodeURIComponent(sp.service)}`, `${sp.service} service`),
        link(`/search${query({ service: sp.service, operation: sp.name })}`, 'Similar traces')),
      h('dl', { class: 'kv' },
        kv('Duration', fmtDur(dur), `${fmtPct(dur / Math.max(total, 1))} of the trace`),
        kv('Self time', fmtDur(selfTime(m, sp))),
        sp.cp ? kv('Critical path', fmtDur(sp.cp), `${fmtPct(sp.cp / Math.max(m.analysis?.criticalPath?.totalNanos ?? total, 1))} of the request`) : null,
        kv('Start', `+${fmtDur(sp.start - m.start)}`, fmtDateTime(startMs)),
        kv('Kind', KIND_NAMES[sp.kind]),
        kv('Status', sp.status === 2 ? h('span', { class: 'err-text' }, 'ERROR') : sp.status === 1 ? 'OK' : 'unset', raw.status?.message),
        sp.shift ? kv('Clock skew', `moved ${sp.shift > 0 ? 'later' : 'earlier'} by ${fmtDur(Math.abs(sp.shift))}`, sp.skewInherited ? 'with its parent (same clock)' : 'to fit inside its parent') : null,
        kv('Span id', h('code', null, sp.id)),
        kv('Parent', parent ? h('a', { href: `?span=${parent.id}`, onclick: (e) => { e.preventDefault(); selectSpan(parent.i, { tab: 'span' }); } }, `${parent.service}: ${parent.name}`) : sp.orphan ? `missing (${sp.missingParent})` : 'none (root)'),
        sp.scope?.name ? kv('Scope', `${sp.scope.name}${sp.scope.version ? ` ${sp.scope.version}` : ''}`) : null),
      sp.raw ? null : h('div', { class: 'loading small' }, 'Loading attributes…'),
      involved.length ? section('Findings', h('ul', { class: 'mini-findings' }, involved.map((f) =>
        h('li', null, h('a', { href: '#', onclick: (e) => { e.preventDefault(); state.tab = 'findings'; openFinding(f); } }, f.title))))) : null,
      sp.raw ? section('Attributes', attrTable(raw.attributes)) : null,
      section(`Events (${sp.events?.length ?? 0})`, sp.events?.length ? h('ol', { class: 'events' }, sp.events.map(([t, name], k) => {
        const attrs = raw.events?.[k]?.attributes;
        return h('li', null, h('span', { class: 'ev-time' }, `+${fmtDur(t + sp.shift - sp.start)}`), ' ',
          h('strong', null, name), attrs?.length ? attrTable(attrs) : null);
      })) : null),
      sp.raw ? section(`Links (${raw.links?.length ?? 0})`, raw.links?.length ? h('ul', { class: 'links' }, raw.links.map((l) =>
        h('li', null, link(`/trace/${l.traceId}${query({ span: l.spanId })}`, h('code', null, `${l.traceId.slice(0, 16)}… / ${l.spanId}`)),
          l.attributes?.length ? attrTable(l.attributes) : null))) : null) : null,
      section('Resource', attrTable(sp.res.attributes)),
    );
  }

  /** Fetches one span's details (large traces load them span by span). */
  function loadDetail(sp) {
    if (sp.loading) return;
    sp.loading = true;
    api(`/api/v1/traces/${encodeURIComponent(id)}/spans/${sp.id}`, { signal: ctl.signal }).then((d) => {
      sp.raw = d.span;
      sp.scope = d.scope;
      if (!state.destroyed && state.selSpan === sp.i && state.tab === 'span') renderSide();
    }, () => {
      sp.loading = false;
    });
  }

  function renderGroupDetail(g) {
    return h('div', { class: 'span-detail' },
      h('h2', null, `×${fmtInt(g.count)} `, h('span', { class: 'svc', style: `--h:${serviceHue(g.service)}` }, g.service), ' ', g.name),
      h('p', null, 'Repeated sibling calls, none of them on the critical path or failing; press Enter or click ▸ to list them.'),
      h('dl', { class: 'kv' },
        kv('Calls', fmtInt(g.count)),
        kv('p50', fmtDur(g.p50)),
        kv('p99', fmtDur(g.p99)),
        kv('Total', fmtDur(g.total)),
        kv('Spread', fmtDur(g.end - g.start)),
        kv('Errors', fmtInt(g.errors))));
  }

  function renderStats() {
    const m = state.model;
    if (!m.analysis) return analysisPending();
    const st = m.stats;
    const table = (rows, withOp) => h('table', { class: 'stats' },
      h('thead', null, h('tr', null,
        h('th', null, withOp ? 'Operation' : 'Service'), h('th', { class: 'n' }, 'Spans'),
        h('th', { class: 'n', title: 'Sum of the spans\' durations' }, 'Total'),
        h('th', { class: 'n', title: 'Time with no child span running' }, 'Self'),
        h('th', { class: 'n', title: 'Time on the critical path' }, 'Critical path'))),
      h('tbody', null, rows.map((r) => h('tr', null,
        h('td', null, h('span', { class: 'svc', style: `--h:${serviceHue(r.service)}` }, withOp ? '' : link(`/services/${encodeURIComponent(r.service)}`, r.service)),
          withOp ? h('a', { href: '#', onclick: (e) => { e.preventDefault(); els.find.value = r.operation; runFind(); nextMatch(1); } }, `${r.service}: ${r.operation}`) : null),
        h('td', { class: 'n' }, fmtInt(r.spanCount)),
        h('td', { class: 'n' }, fmtDur(r.totalNanos)),
        h('td', { class: 'n' }, fmtDur(r.selfNanos), h('small', null, ` ${fmtPct(r.selfShare)}`)),
        h('td', { class: 'n' }, h('span', { class: 'share', style: `--w:${Math.min(100, r.criticalPathShare * 100)}%` }), fmtDur(r.criticalPathNanos), h('small', null, ` ${fmtPct(r.criticalPathShare)}`)))),
      ));
    return h('div', { class: 'stats-wrap' },
      h('p', { class: 'muted' }, `Busy time ${fmtDur(st.busyNanos)} over ${fmtDur(st.durationNanos)}: self times add up beyond the duration when branches run in parallel.`),
      h('h3', null, 'By service'), table(st.services, false),
      h('h3', null, 'By operation'), table(st.operations, true));
  }

  // ----- keyboard -------------------------------------------------------------------------------

  function onKey(e) {
    if (!state.model) return false;
    const k = state.selRow;
    const n = state.rows.length;
    switch (e.key) {
      case 'j': case 'ArrowDown':
        selectRow(Math.min(n - 1, k + 1), { tab: state.tab === 'span' ? 'span' : undefined });
        return true;
      case 'k': case 'ArrowUp':
        selectRow(Math.max(0, k - 1), { tab: state.tab === 'span' ? 'span' : undefined });
        return true;
      case 'Enter': case ' ':
        if (k >= 0) toggleRow(k);
        return true;
      case 'ArrowRight': case 'l':
        if (k >= 0 && !setExpanded(k, true) && k + 1 < n && state.rows[k + 1].depth > state.rows[k].depth) selectRow(k + 1);
        return true;
      case 'ArrowLeft': case 'h': {
        if (k < 0) return true;
        if (!setExpanded(k, false)) {
          const d = state.rows[k].depth;
          for (let p = k - 1; p >= 0; p--) if (state.rows[p].depth < d) { selectRow(p); break; }
        }
        return true;
      }
      case '/':
        els.find.focus();
        els.find.select();
        return true;
      case 'Escape':
        if (state.activeFinding >= 0 || state.matches.length) {
          els.find.value = '';
          runFind();
        }
        return true;
      case 'Home':
        selectRow(0);
        return true;
      case 'End':
        selectRow(n - 1);
        return true;
      case 'f':
        state.tab = 'findings';
        renderSide();
        return true;
      case 's':
        state.tab = 'stats';
        renderSide();
        return true;
      case 'n': case 'N':
        if (state.matches.length) nextMatch(e.key === 'n' ? 1 : -1);
        return true;
      default:
        return false;
    }
  }

  return {
    onKey,
    onUrl() {
      // Back/forward within the same trace: follow ?span=.
      const spanParam = new URLSearchParams(location.search).get('span');
      if (state.model && spanParam) selectSpanId(spanParam, { tab: 'span' });
      return true;
    },
    destroy() {
      state.destroyed = true;
      ctl.abort();
      state.wf?.destroy();
      state.mm?.destroy();
    },
  };
}

function kv(label, value, note) {
  return h('div', null, h('dt', null, label), h('dd', null, value, note ? h('small', null, ` ${note}`) : null));
}

function section(title, content) {
  return h('section', { class: 'detail-section' }, h('h3', null, title), content ?? h('p', { class: 'muted' }, 'none'));
}

function attrTable(list) {
  if (!list || !list.length) return null;
  return h('table', { class: 'attrs' }, h('tbody', null, list.map((a) =>
    h('tr', null, h('th', null, a.key), h('td', null, anyValueText(a.value))))));
}

