// The trace model behind the trace page: spans from OTLP JSON as a tree with times relative to
// the trace start, the analysis laid over it (critical path, clock skew, gaps, findings), and the
// list of visible rows with collapsed subtrees and groups of repeated siblings.
//
// Everything here is plain data and loops, sized for traces of 100,000 spans: no recursion, one
// object per span, times as float nanoseconds relative to the trace's first second (exact for
// traces shorter than about 100 days).

import { splitNanos } from './lib.js';

export const KIND_NAMES = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const KIND_CLIENT = 3;
const KIND_PRODUCER = 4;
const KIND_CONSUMER = 5;
const STATUS_ERROR = 2;

/** Siblings with the same service and name are grouped from this many. */
export const GROUP_MIN = 10;
/** Traces up to this many spans open fully expanded. */
export const FULL_EXPAND_MAX = 2000;

const KIND_BY_TEXT = {
  SPAN_KIND_UNSPECIFIED: 0, SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5,
};

function kindOf(v) {
  if (typeof v === 'number') return v >= 0 && v <= 5 ? v : 0;
  return KIND_BY_TEXT[v] ?? 0;
}

function statusOf(st) {
  const c = st?.code;
  if (c === 2 || c === 'STATUS_CODE_ERROR') return 2;
  if (c === 1 || c === 'STATUS_CODE_OK') return 1;
  return 0;
}

/** The display text of an OTLP JSON AnyValue. */
export function anyValueText(v) {
  if (!v || typeof v !== 'object') return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return `base64:${v.bytesValue}`;
  if ('arrayValue' in v) return JSON.stringify((v.arrayValue.values ?? []).map(anyValueJs));
  if ('kvlistValue' in v) return JSON.stringify(kvObject(v.kvlistValue.values ?? []));
  return '';
}

function anyValueJs(v) {
  if (!v || typeof v !== 'object') return null;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(anyValueJs);
  if ('kvlistValue' in v) return kvObject(v.kvlistValue.values ?? []);
  if ('bytesValue' in v) return v.bytesValue;
  return null;
}

function kvObject(kvs) {
  const o = {};
  for (const kv of kvs) o[kv.key] = anyValueJs(kv.value);
  return o;
}

/** The value of attribute `key` in an OTLP attribute list, as text, or undefined. */
export function attr(list, key) {
  if (!list) return undefined;
  for (const kv of list) if (kv.key === key) return anyValueText(kv.value);
  return undefined;
}

/**
 * Builds the model of a trace from its compact view (GET /api/v1/traces/{id}/waterfall): columns
 * of ids, parents, names, kinds, statuses and times relative to `baseUnixSecond`. Span details
 * (attributes, events' attributes, links, scope) are attached later as `raw` by attachDetails.
 */
export function buildTrace(v, traceIdHint) {
  const n = v.spanCount;
  const c = v.spans;
  const names = v.names;
  const resources = v.resources.map((r) => ({ service: r.service || 'unknown_service', attributes: r.attributes }));
  const byId = new Map();
  const model = {
    traceId: v.traceId || traceIdHint || '',
    baseSec: v.baseUnixSecond,
    spans: new Array(n),
    byId,
    roots: [],
    order: [],
    start: 0,
    end: 0,
    services: [],
    serviceCounts: new Map(),
    errorCount: 0,
    maxDepth: 0,
    analysis: null,
    gaps: [],
    findings: [],
    stats: null,
    cpRoot: -1,
    detailed: false,
  };
  let minStart = Infinity;
  let maxEnd = -Infinity;
  const counts = new Map();
  for (let i = 0; i < n; i++) {
    const res = resources[c.resource[i]] ?? resources[0];
    const start = c.start[i];
    const end = Math.max(start, c.end[i]);
    const status = c.status[i];
    const sp = {
      i,
      id: c.id[i],
      parent: c.parent[i],
      name: names[c.name[i]] ?? '',
      kind: c.kind[i],
      service: res.service,
      res,
      start,
      end,
      shift: 0,
      skewInherited: false,
      error: status === STATUS_ERROR,
      status,
      events: null, // [[relative time, name], ...]
      raw: null, // the OTLP JSON span, once loaded
      scope: null,
      children: null,
      depth: 0,
      cp: 0,
      sections: null,
      below: 0, // bit 1: an error at or below; bit 2: critical path at or below
      orphan: false,
      missingParent: '',
    };
    model.spans[i] = sp;
    if (!byId.has(sp.id)) byId.set(sp.id, i);
    if (start < minStart) minStart = start;
    if (end > maxEnd) maxEnd = end;
    if (sp.error) model.errorCount++;
    counts.set(res.service, (counts.get(res.service) ?? 0) + 1);
  }
  for (const [i, pid] of v.missingParents ?? []) {
    const sp = model.spans[i];
    if (sp) {
      sp.orphan = true;
      sp.missingParent = pid;
    }
  }
  const ev = v.events ?? { span: [], time: [], name: [] };
  for (let k = 0; k < ev.span.length; k++) {
    const sp = model.spans[ev.span[k]];
    if (sp) (sp.events ??= []).push([ev.time[k], names[ev.name[k]] ?? '']);
  }
  model.serviceCounts = counts;
  model.start = n ? minStart : 0;
  model.end = n ? maxEnd : 0;
  model.services = [...counts.keys()].sort();
  linkTree(model);
  computeGaps(model);
  return model;
}

/**
 * Attaches the OTLP JSON document of the whole trace (GET /api/v1/traces/{id}) as span details.
 */
export function attachDetails(model, doc) {
  for (const rs of doc.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      const scope = ss.scope ?? {};
      for (const raw of ss.spans ?? []) {
        const i = model.byId.get(raw.spanId);
        if (i === undefined) continue;
        const sp = model.spans[i];
        if (!sp.raw) {
          sp.raw = raw;
          sp.scope = scope;
        }
      }
    }
  }
  model.detailed = true;
}

/** Parent/child links, depth, pre-order; robust to orphans, duplicates and cycles. */
function linkTree(model) {
  const { spans } = model;
  const n = spans.length;
  for (let i = 0; i < n; i++) {
    const sp = spans[i];
    const p = sp.parent;
    if (p < 0 || p >= n || p === i) {
      sp.parent = -1;
      continue;
    }
    const parent = spans[p];
    (parent.children ??= []).push(i);
  }
  const byStart = (a, b) => spans[a].start - spans[b].start || spans[a].end - spans[b].end || a - b;
  for (let i = 0; i < n; i++) if (spans[i].children && spans[i].children.length > 1) spans[i].children.sort(byStart);
  const roots = [];
  for (let i = 0; i < n; i++) if (spans[i].parent < 0) roots.push(i);
  roots.sort(byStart);
  // Pre-order walk; spans never reached sit on parent cycles and become roots.
  const seen = new Uint8Array(n);
  const order = [];
  const walk = (root) => {
    const stack = [root];
    spans[root].depth = 0;
    while (stack.length) {
      const i = stack.pop();
      if (seen[i]) continue;
      seen[i] = 1;
      order.push(i);
      const sp = spans[i];
      if (sp.depth > model.maxDepth) model.maxDepth = sp.depth;
      const kids = sp.children;
      if (kids) {
        for (let k = kids.length - 1; k >= 0; k--) {
          const c = kids[k];
          if (!seen[c]) {
            spans[c].depth = sp.depth + 1;
            stack.push(c);
          }
        }
      }
    }
  };
  for (const r of roots) walk(r);
  for (let i = 0; i < n; i++) {
    if (!seen[i]) {
      const sp = spans[i];
      if (sp.parent >= 0) {
        const sib = spans[sp.parent].children;
        sib.splice(sib.indexOf(i), 1);
      }
      sp.parent = -1;
      roots.push(i);
      walk(i);
    }
  }
  model.roots = roots;
  model.order = order;
  computeBelow(model);
}

/** Sets the `below` flags bottom-up: errors (1) and critical-path time (2) in each subtree. */
function computeBelow(model) {
  const { spans, order } = model;
  for (const sp of spans) sp.below = (sp.error ? 1 : 0) | (sp.cp > 0 ? 2 : 0);
  for (let k = order.length - 1; k >= 0; k--) {
    const sp = spans[order[k]];
    if (sp.parent >= 0) spans[sp.parent].below |= sp.below;
  }
}

/** True when the parent waits for this child (not a consumer or a child of a producer). */
export function isSync(model, sp) {
  if (sp.kind === KIND_CONSUMER) return false;
  if (sp.parent >= 0 && model.spans[sp.parent].kind === KIND_PRODUCER) return false;
  return true;
}

/** Relative nanoseconds of a Unix-nanosecond string. */
export function relNanos(model, str) {
  const [sec, ns] = splitNanos(str);
  return (sec - model.baseSec) * 1e9 + ns;
}

/**
 * Lays the analysis (GET /api/v1/traces/{id}/analysis) over the model: clock-skew shifts,
 * critical-path sections, gaps, findings and statistics.
 */
export function applyAnalysis(model, analysis) {
  const { spans, byId } = model;
  model.analysis = analysis;
  for (const adj of analysis.skewAdjustments ?? []) {
    const i = byId.get(adj.spanId);
    if (i === undefined) continue;
    const sp = spans[i];
    const shift = Number(adj.shiftNanos) || 0;
    sp.shift = shift;
    sp.skewInherited = Boolean(adj.inherited);
    sp.start += shift;
    sp.end += shift;
  }
  if ((analysis.skewAdjustments ?? []).length) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const sp of spans) {
      if (sp.start < lo) lo = sp.start;
      if (sp.end > hi) hi = sp.end;
    }
    model.start = lo;
    model.end = hi;
  }
  for (const sp of spans) {
    sp.cp = 0;
    sp.sections = null;
  }
  const cp = analysis.criticalPath ?? {};
  for (const sec of cp.sections ?? []) {
    const i = byId.get(sec.spanId);
    if (i === undefined) continue;
    const sp = spans[i];
    const a = relNanos(model, sec.startUnixNano);
    const b = relNanos(model, sec.endUnixNano);
    (sp.sections ??= []).push([a, b]);
    sp.cp += b - a;
  }
  model.cpRoot = cp.rootSpanId ? byId.get(cp.rootSpanId) ?? -1 : -1;
  computeBelow(model);
  model.findings = (analysis.findings ?? []).map((f, k) => ({
    ...f,
    index: k,
    spanIdx: (f.spans ?? []).map((id) => byId.get(id)).filter((i) => i !== undefined),
  }));
  model.stats = analysis.stats ?? null;
  computeGaps(model);
}

/**
 * Gaps to shade in the waterfall:
 *  - 'self': a critical-path section of a span with synchronous children, that is time the
 *    request waited on the span's own code or on something uninstrumented;
 *  - 'net': the parts of a CLIENT span before its remote server child started and after it
 *    ended: network, queueing, connection setup, serialization.
 * Each gap: {span, start, end, type, finding (index or -1)}.
 */
export function computeGaps(model) {
  const { spans } = model;
  const gaps = [];
  const findingBySpan = new Map();
  for (const f of model.findings) {
    if (f.kind === 'uninstrumentedTime' || f.kind === 'clientServerGap') {
      for (const i of f.spanIdx.slice(0, 1)) if (!findingBySpan.has(i)) findingBySpan.set(i, f.index);
    }
  }
  for (const sp of spans) {
    const kids = sp.children;
    if (!kids) continue;
    let remoteLo = Infinity;
    let remoteHi = -Infinity;
    let hasSync = false;
    for (const c of kids) {
      const ch = spans[c];
      if (isSync(model, ch)) hasSync = true;
      if (ch.service !== sp.service) {
        if (ch.start < remoteLo) remoteLo = ch.start;
        if (ch.end > remoteHi) remoteHi = ch.end;
      }
    }
    const finding = findingBySpan.get(sp.i) ?? -1;
    if (sp.kind === KIND_CLIENT && remoteLo !== Infinity) {
      const lo = Math.max(sp.start, Math.min(remoteLo, sp.end));
      const hi = Math.min(sp.end, Math.max(remoteHi, sp.start));
      if (lo > sp.start) gaps.push({ span: sp.i, start: sp.start, end: lo, type: 'net', finding });
      if (hi < sp.end) gaps.push({ span: sp.i, start: hi, end: sp.end, type: 'net', finding });
      continue;
    }
    if (hasSync && sp.sections) {
      for (const [a, b] of sp.sections) {
        if (b > a) gaps.push({ span: sp.i, start: a, end: b, type: 'self', finding });
      }
    }
  }
  model.gaps = gaps;
  const bySpan = new Map();
  for (const g of gaps) {
    let list = bySpan.get(g.span);
    if (!list) bySpan.set(g.span, (list = []));
    list.push(g);
  }
  model.gapsBySpan = bySpan;
}

// ----- Visible rows ----------------------------------------------------------------------------

/** The view state of a trace page: what is expanded. */
export function initialView(model) {
  const n = model.spans.length;
  const expanded = new Uint8Array(n);
  const full = n <= FULL_EXPAND_MAX;
  for (const sp of model.spans) {
    if (!sp.children) continue;
    if (full || sp.depth < 2 || hasBelowStrict(model, sp)) expanded[sp.i] = 1;
  }
  return { expanded, openGroups: new Set(), items: new Map() };
}

function hasBelowStrict(model, sp) {
  for (const c of sp.children) if (model.spans[c].below) return true;
  return false;
}

/** After the analysis arrived: expand the ancestors of critical-path spans too. */
export function expandCriticalPath(model, view) {
  for (const sp of model.spans) {
    if (sp.children && (sp.below & 2) && hasBelowStrict(model, sp)) view.expanded[sp.i] = 1;
  }
  view.items.clear();
}

/** Expands every ancestor of span i (and opens the group it is in). */
export function reveal(model, view, i) {
  let sp = model.spans[i];
  const child = sp;
  while (sp.parent >= 0) {
    const p = model.spans[sp.parent];
    view.expanded[p.i] = 1;
    const gid = `${p.i}:${groupKey(sp)}`;
    if (!view.openGroups.has(gid)) {
      const items = childItems(model, view, p.i);
      if (items.some((it) => typeof it === 'object' && it.id === gid)) view.openGroups.add(gid);
    }
    sp = p;
  }
  return child;
}

function groupKey(sp) {
  return `${sp.service}\u0000${sp.name}`;
}

/**
 * The child items of span p: span indices, and groups standing for repeated siblings (same
 * service and name, at least GROUP_MIN of them) that are neither on the critical path nor on
 * an error path.
 */
export function childItems(model, view, p) {
  let items = view.items.get(p);
  if (items) return items;
  const { spans } = model;
  const kids = spans[p].children ?? [];
  items = kids;
  if (kids.length >= GROUP_MIN) {
    const counts = new Map();
    for (const c of kids) {
      const k = groupKey(spans[c]);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const groups = new Map();
    for (const c of kids) {
      const sp = spans[c];
      const k = groupKey(sp);
      if (counts.get(k) < GROUP_MIN || sp.below) continue;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { id: `${p}:${k}`, parent: p, service: sp.service, name: sp.name, members: [] }));
      g.members.push(c);
    }
    for (const [k, g] of groups) if (g.members.length < 2) groups.delete(k);
    if (groups.size) {
      items = [];
      const emitted = new Set();
      for (const c of kids) {
        const g = groups.get(groupKey(spans[c]));
        if (g && !spans[c].below) {
          if (!emitted.has(g)) {
            emitted.add(g);
            finishGroup(model, g);
            items.push(g);
          }
          continue;
        }
        items.push(c);
      }
    }
  }
  view.items.set(p, items);
  return items;
}

function finishGroup(model, g) {
  const { spans } = model;
  const durs = new Float64Array(g.members.length);
  let lo = Infinity;
  let hi = -Infinity;
  let errors = 0;
  g.members.forEach((c, k) => {
    const sp = spans[c];
    durs[k] = sp.end - sp.start;
    if (sp.start < lo) lo = sp.start;
    if (sp.end > hi) hi = sp.end;
    if (sp.error) errors++;
  });
  durs.sort();
  const q = (p) => durs[Math.min(durs.length - 1, Math.max(0, Math.ceil(p * durs.length) - 1))];
  Object.assign(g, { count: g.members.length, start: lo, end: hi, errors, p50: q(0.5), p99: q(0.99), total: durs.reduce((a, b) => a + b, 0) });
}

/**
 * The visible rows: {span: i, depth} for spans and {group: g, depth} for groups, in pre-order,
 * skipping collapsed subtrees and closed groups.
 */
export function visibleRows(model, view) {
  const rows = [];
  const { spans } = model;
  const stack = [];
  for (let r = model.roots.length - 1; r >= 0; r--) stack.push(model.roots[r]);
  while (stack.length) {
    const it = stack.pop();
    if (typeof it === 'number') {
      const sp = spans[it];
      rows.push({ span: it, depth: sp.depth });
      if (sp.children && view.expanded[it]) {
        const items = childItems(model, view, it);
        for (let k = items.length - 1; k >= 0; k--) stack.push(items[k]);
      }
    } else if (it.group) {
      rows.push({ group: it.group, depth: spans[it.group.parent].depth + 1 });
    } else {
      // A group: its header, then its members when open.
      const open = view.openGroups.has(it.id);
      if (open) for (let k = it.members.length - 1; k >= 0; k--) stack.push(it.members[k]);
      stack.push({ group: it });
    }
  }
  return rows;
}

/**
 * Spans whose service, name or id contain `text` (case-insensitive), or whose attribute values
 * do (once the details are loaded) or whose attribute key is `text`.
 */
export function findSpans(model, text) {
  const q = text.trim().toLowerCase();
  if (!q) return [];
  const out = [];
  for (const i of model.order) {
    const sp = model.spans[i];
    if (sp.name.toLowerCase().includes(q) || sp.service.toLowerCase().includes(q) || sp.id.startsWith(q)) {
      out.push(i);
      continue;
    }
    const attrs = sp.raw?.attributes;
    if (attrs) {
      for (const kv of attrs) {
        const v = kv.value?.stringValue ?? kv.value?.intValue;
        if (kv.key.toLowerCase() === q || (v !== undefined && String(v).toLowerCase().includes(q))) {
          out.push(i);
          break;
        }
      }
    }
  }
  return out;
}

/** Self time of a span: its duration minus the union of its synchronous children's intervals. */
export function selfTime(model, sp) {
  const kids = sp.children;
  if (!kids) return sp.end - sp.start;
  let covered = 0;
  let curLo = -Infinity;
  let curHi = -Infinity;
  for (const c of kids) {
    const ch = model.spans[c];
    if (!isSync(model, ch)) continue;
    const lo = Math.max(ch.start, sp.start);
    const hi = Math.min(ch.end, sp.end);
    if (hi <= lo) continue;
    if (lo > curHi) {
      if (curHi > curLo) covered += curHi - curLo;
      curLo = lo;
      curHi = hi;
    } else if (hi > curHi) curHi = hi;
  }
  if (curHi > curLo) covered += curHi - curLo;
  return Math.max(0, sp.end - sp.start - covered);
}

export { KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER };
