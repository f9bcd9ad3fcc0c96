// Shared helpers: DOM building, API calls, formatting, colours, navigation.

/** Creates an element: h('a', {href: '/x', class: 'y', onclick: f}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = tag.includes(':')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(tag.indexOf(':') + 1))
    : document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return h('svg:' + tag, attrs, ...children);
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Escapes text for HTML. */
export function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// ----- API -------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** GET a JSON document from the server; throws ApiError with the server's message. */
export async function api(path, { signal } = {}) {
  let resp;
  try {
    resp = await fetch(path, { signal, headers: { accept: 'application/json' } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach Stitch: ${e.message}`);
  }
  let body = null;
  const text = await resp.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const msg = body?.error?.message ?? body?.errors?.[0]?.msg ?? (text.slice(0, 200) || resp.statusText);
    throw new ApiError(resp.status, msg, body);
  }
  return body;
}

// ----- Time and numbers ------------------------------------------------------------------------

/** Splits a decimal Unix-nanosecond string into [seconds, nanoseconds] exactly. */
export function splitNanos(str) {
  if (str === undefined || str === null || str === '' || str === '0') return [0, 0];
  const t = String(str);
  if (t.length <= 9) return [0, Number(t)];
  return [Number(t.slice(0, -9)), Number(t.slice(-9))];
}

/** A Unix-nanosecond string as Unix milliseconds (a float). */
export function nanosToMs(str) {
  const [sec, ns] = splitNanos(str);
  return sec * 1e3 + ns / 1e6;
}

/** Formats a duration in nanoseconds: 45µs, 12.3ms, 1.94s, 2m 3s. */
export function fmtDur(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return '–';
  const a = Math.abs(ns);
  const sign = ns < 0 ? '-' : '';
  if (a < 1e3) return `${sign}${Math.round(a)}ns`;
  if (a < 1e6) return `${sign}${trim(a / 1e3)}µs`;
  if (a < 1e9) return `${sign}${trim(a / 1e6)}ms`;
  if (a < 60e9) return `${sign}${trim(a / 1e9)}s`;
  if (a < 3600e9) {
    const m = Math.floor(a / 60e9);
    const sec = Math.round((a - m * 60e9) / 1e9);
    return `${sign}${m}m${sec ? ` ${sec}s` : ''}`;
  }
  const hr = Math.floor(a / 3600e9);
  const m = Math.round((a - hr * 3600e9) / 60e9);
  return `${sign}${hr}h${m ? ` ${m}m` : ''}`;
}

/** Three significant digits at most, no trailing zeros: 400, 12.3, 1.94. */
function trim(v) {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return String(Number(v.toFixed(digits)));
}

/** 1,234 */
export function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US');
}

/** 0.1234 → 12.3% */
export function fmtPct(f) {
  if (!f) return '0%';
  const p = f * 100;
  if (p < 0.1) return '<0.1%';
  return `${p >= 10 ? Math.round(p) : p.toFixed(1)}%`;
}

/** Requests per second: 12.3/s, 0.05/s. */
export function fmtRate(r) {
  if (!r) return '0/s';
  if (r >= 100) return `${Math.round(r)}/s`;
  if (r >= 1) return `${Number(r.toFixed(1))}/s`;
  if (r >= 1 / 60) return `${Number((r * 60).toFixed(1))}/min`;
  return `${Number((r * 3600).toFixed(1))}/h`;
}

/** A rate formatter with one unit for a whole axis whose largest value is `max` per second. */
export function rateAxis(max) {
  const [mult, unit] = max >= 1 ? [1, '/s'] : max >= 1 / 60 ? [60, '/min'] : [3600, '/h'];
  return (r) => `${Number((r * mult).toFixed(r * mult >= 10 ? 0 : 1))}${unit}`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Unix ms → "2024-05-01 13:45:12.345" in local time. */
export function fmtDateTime(ms, { millis = true } = {}) {
  const d = new Date(ms);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** Unix ms → "13:45:12" (or with the date when not today). */
export function fmtClock(ms) {
  const d = new Date(ms);
  const now = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Unix ms → "3 minutes ago". */
export function fmtAgo(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return 'in the future';
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const hr = Math.round(m / 60);
  if (hr < 48) return `${hr} hour${hr === 1 ? '' : 's'} ago`;
  const d = Math.round(hr / 24);
  return `${d} days ago`;
}

/** "Nice" tick values covering [lo, hi] with about `count` ticks. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// ----- Colours ---------------------------------------------------------------------------------

/** Hues spread so that neighbours differ; red (errors) is avoided. */
const HUES = [210, 150, 275, 35, 185, 315, 95, 245, 55, 165, 295, 125, 230, 195, 260, 80, 140, 45];

function hash(str) {
  let x = 2166136261;
  for (let i = 0; i < str.length; i++) {
    x ^= str.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return x >>> 0;
}

const assigned = new Map();

/** A stable hue per service: the first services seen get distinct hues, the rest a hash. */
export function serviceHue(name) {
  let hue = assigned.get(name);
  if (hue === undefined) {
    hue = assigned.size < HUES.length
      ? HUES[(hash(name) % HUES.length + probe(hash(name) % HUES.length)) % HUES.length]
      : HUES[hash(name) % HUES.length];
    assigned.set(name, hue);
  }
  return hue;
}

function probe(start) {
  const used = new Set(assigned.values());
  for (let k = 0; k < HUES.length; k++) if (!used.has(HUES[(start + k) % HUES.length])) return k;
  return 0;
}

/** Assigns hues to services in a fixed order, so that one trace's services get distinct hues. */
export function assignHues(names) {
  for (const n of [...names].sort()) serviceHue(n);
}

/** A CSS colour for a service in the current theme (canvas drawing needs concrete colours). */
export function serviceColor(name, dark) {
  const hue = serviceHue(name);
  return dark ? `hsl(${hue} 55% 58%)` : `hsl(${hue} 60% 52%)`;
}

export function isDark() {
  return document.documentElement.dataset.resolvedTheme === 'dark';
}

// ----- Navigation ------------------------------------------------------------------------------

let navigateHandler = null;

export function setNavigateHandler(f) {
  navigateHandler = f;
}

/** Goes to a URL of the app without reloading. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  navigateHandler?.();
}

/** An in-app link. */
export function link(href, ...children) {
  return h('a', { href, 'data-link': '' }, ...children);
}

/** Builds a query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const t = q.toString();
  return t ? `?${t}` : '';
}

/** A message block for errors and empty states. */
export function message(kind, text, detail) {
  return h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('p', null, text), detail ? h('p', { class: 'detail' }, detail) : null);
}

/** Debounces f by ms. */
export function debounce(f, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => f(...args), ms);
  };
}

/** Lookback choices shared by the pages. */
export const LOOKBACKS = [
  ['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['2h', 'Last 2 hours'],
  ['6h', 'Last 6 hours'], ['12h', 'Last 12 hours'], ['1d', 'Last 24 hours'], ['2d', 'Last 2 days'],
  ['7d', 'Last 7 days'],
];

/** Parses a lookback such as 15m or 2d into milliseconds. */
export function lookbackMs(text) {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(text ?? '');
  if (!m) return 3600e3;
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2]];
  return Number(m[1]) * unit;
}
