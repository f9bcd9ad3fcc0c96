// Benchmark of the trace page on a 100,000-span trace in headless Chromium (run by
// bench/ui_100k.sh, which starts a release `stitch`):
//
//   node bench_100k.mjs --url http://127.0.0.1:16686 --otlp http://127.0.0.1:4318/v1/traces [--spans 100000] [--runs 3]
//
// Sends one generated trace over OTLP/HTTP JSON, then opens /trace/{id} `runs` times and
// measures, from the start of navigation: the trace document received, the waterfall's first
// paint, and the analysis applied (critical path drawn). Then it scrolls the waterfall for 3 s,
// one step per animation frame, with the default rows (critical path and errors expanded) and
// with every span expanded, and reports frame intervals and the time spent rendering rows.

import { launch } from './harness.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, k, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[k + 1]]);
  return acc;
}, []));
const url = args.url;
const otlp = args.otlp;
const N = Number(args.spans ?? 100_000);
const RUNS = Number(args.runs ?? 3);
if (!url || !otlp) {
  console.error('usage: node bench_100k.mjs --url QUERY_URL --otlp OTLP_HTTP_TRACES_URL [--spans N] [--runs N]');
  process.exit(2);
}

// ----- the trace ---------------------------------------------------------------------------------

const SERVICES = ['catalog', 'pricing', 'inventory', 'recommendations', 'reviews', 'search', 'users', 'shipping'];
const CALLS = 40;
const WAVE = 8;
const MS = 1_000_000n;

/** A deterministic pseudo-random generator (xorshift32). */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * A report request fanning out to 40 backend calls in waves of 8; each call loads ~2,500 items
 * with one database query each (the repeated siblings), a few of which fail. Returns spans as
 * {service, span} with OTLP JSON fields.
 */
function generate(n, traceId, t0) {
  const rand = rng(42);
  const out = [];
  let next = 1;
  const id = () => (next++).toString(16).padStart(16, '0');
  const span = (service, parent, name, kind, start, end, extra = {}) => {
    const s = {
      traceId, spanId: id(), parentSpanId: parent ?? undefined, name, kind,
      startTimeUnixNano: String(t0 + BigInt(Math.round(start * 1e6))),
      endTimeUnixNano: String(t0 + BigInt(Math.round(end * 1e6))),
      ...extra,
    };
    out.push({ service, span: s });
    return s;
  };
  const perCall = Math.floor((n - 1) / CALLS) - 4;
  let remaining = n - 1 - CALLS * 4;
  const root = span('api-gateway', null, 'GET /api/report', 2, 0, 0, {
    attributes: [{ key: 'http.route', value: { stringValue: '/api/report' } }],
  });
  let wave0 = 1;
  let end = 1;
  for (let c = 0; c < CALLS; c++) {
    if (c % WAVE === 0) wave0 = end + 0.5;
    const svc = SERVICES[c % SERVICES.length];
    const q = c === CALLS - 1 ? remaining : Math.min(perCall, remaining);
    remaining -= q;
    const start = wave0 + rand() * 2;
    const client = span('api-gateway', root.spanId, `GET /${svc}/items`, 3, start, 0);
    const server = span(svc, client.spanId, `GET /${svc}/items`, 2, start + 0.4, 0);
    const load = span(svc, server.spanId, 'load items', 1, start + 0.6, 0);
    let t = start + 0.7;
    for (let k = 0; k < q; k++) {
      const d = 0.2 + rand() * 1.2;
      const failed = (c * 7919 + k) % 1499 === 0;
      span(svc, load.spanId, 'SELECT items', 3, t, t + d, {
        attributes: [
          { key: 'db.system', value: { stringValue: 'postgresql' } },
          { key: 'db.statement', value: { stringValue: 'SELECT * FROM items WHERE id = $1' } },
          { key: 'db.item_id', value: { intValue: String(c * 100000 + k) } },
        ],
        status: failed ? { code: 2, message: 'deadlock detected' } : undefined,
      });
      t += d + 0.02;
    }
    load.endTimeUnixNano = String(t0 + BigInt(Math.round((t + 0.1) * 1e6)));
    const ser = span(svc, server.spanId, 'serialize response', 1, t + 0.2, t + 0.2 + rand() * 3);
    const serEnd = Number(BigInt(ser.endTimeUnixNano) - t0) / 1e6;
    server.endTimeUnixNano = String(t0 + BigInt(Math.round((serEnd + 0.1) * 1e6)));
    client.endTimeUnixNano = String(t0 + BigInt(Math.round((serEnd + 0.6) * 1e6)));
    end = Math.max(end, serEnd + 0.6);
  }
  root.endTimeUnixNano = String(t0 + BigInt(Math.round((end + 1) * 1e6)));
  return out;
}

async function send(spans) {
  const CHUNK = 10_000;
  for (let k = 0; k < spans.length; k += CHUNK) {
    const bySvc = new Map();
    for (const { service, span } of spans.slice(k, k + CHUNK)) {
      if (!bySvc.has(service)) bySvc.set(service, []);
      bySvc.get(service).push(span);
    }
    const body = {
      resourceSpans: [...bySvc].map(([service, list]) => ({
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }, { key: 'host.name', value: { stringValue: `${service}-7f9c` } }] },
        scopeSpans: [{ scope: { name: 'stitch-bench' }, spans: list }],
      })),
    };
    const r = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`OTLP export failed: ${r.status} ${await r.text()}`);
  }
}

// ----- measuring -----------------------------------------------------------------------------

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN;
};
const median = (xs) => q(xs, 0.5);
const r1 = (x) => Math.round(x * 10) / 10;

async function scroll(page, seconds) {
  return page.evaluate((secs) => new Promise((resolve) => {
    const body = document.querySelector('.wf-body');
    window.__stitchProfile = [];
    const frames = [];
    let last = performance.now();
    const stop = last + secs * 1000;
    const step = (t) => {
      frames.push(t - last);
      last = t;
      body.scrollTop += 96;
      if (body.scrollTop + body.clientHeight >= body.scrollHeight - 1) body.scrollTop = 0;
      if (t < stop) requestAnimationFrame(step);
      else resolve({ frames: frames.slice(1), render: window.__stitchProfile, rows: document.querySelector('.wf-spacer').offsetHeight / 24 });
    };
    requestAnimationFrame(step);
  }), seconds);
}

function frameStats(res) {
  return {
    rows: Math.round(res.rows),
    frames: res.frames.length,
    frameP50: r1(q(res.frames, 0.5)),
    frameP95: r1(q(res.frames, 0.95)),
    frameMax: r1(Math.max(...res.frames)),
    over20ms: res.frames.filter((f) => f > 20).length,
    renderP50: r1(q(res.render, 0.5)),
    renderP99: r1(q(res.render, 0.99)),
  };
}

// A fresh trace id per run, so that runs against the same server never mix.
const traceId = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
const t0 = BigInt(Date.now() - 60_000) * MS;
const tg = Date.now();
const spans = generate(N, traceId, t0);
await send(spans);
console.log(`sent ${spans.length} spans in ${Date.now() - tg} ms`);

const { page, close } = await launch({}, { width: 1440, height: 900 });
const runs = [];
let scrolls = null;
try {
  for (let run = 0; run < RUNS; run++) {
    await page.goto('about:blank');
    await page.goto(`${url}/trace/${traceId}`, { waitUntil: 'commit' });
    await page.waitForSelector('.trace-page[data-painted="1"]', { timeout: 120_000 });
    const painted = await page.evaluate(() => window.__stitchTiming);
    let analysis = null;
    try {
      await page.waitForSelector('.trace-page[data-analysis="1"]', { timeout: 60_000 });
      analysis = await page.evaluate(() => window.__stitchTiming.analysisAppliedAt);
    } catch {
      analysis = null;
    }
    const res = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((r) => /\/api\/v1\/traces\/[0-9a-f]+\/waterfall$/.test(r.name))
      .map((r) => ({ end: r.responseEnd, bytes: r.encodedBodySize }))[0]);
    runs.push({ paint: painted.paintedAt, received: res?.end, bytes: res?.bytes, model: painted.modelMs, analysis, rows: painted.rows });
    console.log(`run ${run + 1}: trace received ${r1(res?.end)} ms (${Math.round((res?.bytes ?? 0) / 1e6)} MB), model built in ${r1(painted.modelMs)} ms, waterfall painted at ${r1(painted.paintedAt)} ms, analysis applied at ${analysis === null ? 'n/a' : `${r1(analysis)} ms`}`);
  }
  const collapsed = frameStats(await scroll(page, 3));
  const t = Date.now();
  await page.click('button:has-text("Expand all")');
  await page.waitForFunction((n) => document.querySelector('.wf-spacer').offsetHeight / 24 >= n, N, { timeout: 60_000 });
  const expandMs = Date.now() - t;
  const expanded = frameStats(await scroll(page, 3));
  scrolls = { collapsed, expandAllMs: expandMs, expanded };
} finally {
  await close();
}
const summary = {
  spans: N,
  runs: RUNS,
  traceReceivedMs: r1(median(runs.map((r) => r.received))),
  firstPaintMs: r1(median(runs.map((r) => r.paint))),
  firstPaintMaxMs: r1(Math.max(...runs.map((r) => r.paint))),
  analysisAppliedMs: runs.every((r) => r.analysis !== null) ? r1(median(runs.map((r) => r.analysis))) : null,
  ...scrolls,
};
console.log(JSON.stringify(summary, null, 2));
