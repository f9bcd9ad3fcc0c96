// Small SVG charts that size themselves to their container: a time-series line chart and a
// scatter plot. No library: a few scales and paths.

import { h, s, niceTicks, fmtClock, navigate } from './lib.js';

const M = { top: 10, right: 14, bottom: 24, left: 58 };

/** A chart container that redraws at its width. `draw(width)` returns an SVG element. */
function responsive(cls, height, draw) {
  const box = h('div', { class: `chart ${cls}`, style: `height:${height}px` });
  let lastW = 0;
  const ro = new ResizeObserver((entries) => {
    const w = Math.floor(entries[0].contentRect.width);
    if (w > 0 && w !== lastW) {
      lastW = w;
      box.querySelector('svg')?.remove();
      box.prepend(draw(w, height));
    }
  });
  ro.observe(box);
  return box;
}

/** Time ticks for a [lo, hi] window of Unix ms. */
function timeTicks(lo, hi, count) {
  const steps = [1e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3];
  const want = (hi - lo) / Math.max(1, count);
  const step = steps.find((st) => st >= want) ?? Math.ceil(want / 86400e3) * 86400e3;
  const tz = new Date(lo).getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((lo - tz) / step) * step + tz; t <= hi; t += step) out.push(t);
  return out;
}

function axes(svg, { W, H, xs, ys, xScale, yScale, xFmt, yFmt }) {
  const g = s('g', { class: 'axes' });
  for (const y of ys) {
    const py = yScale(y);
    g.append(s('line', { x1: M.left, x2: W - M.right, y1: py, y2: py, class: 'grid' }),
      s('text', { x: M.left - 6, y: py + 4, 'text-anchor': 'end' }, yFmt(y)));
  }
  for (const x of xs) {
    const px = xScale(x);
    g.append(s('line', { x1: px, x2: px, y1: H - M.bottom, y2: H - M.bottom + 4, class: 'tickmark' }),
      s('text', { x: px, y: H - 6, 'text-anchor': 'middle' }, xFmt(x)));
  }
  g.append(s('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'baseline' }));
  svg.append(g);
}

/**
 * A line chart over time.
 * @param {object} o {xs: Unix ms[], series: [{label, values: (number|null)[], cls}], yFmt, height,
 *   stepMs (width of a point), ariaLabel}
 */
export function lineChart(o) {
  const height = o.height ?? 170;
  const box = responsive('line-chart', height, (W, H) => {
    const xs = o.xs;
    const lo = xs[0] ?? 0;
    const hi = (xs[xs.length - 1] ?? 1) + (o.stepMs ?? 0);
    let yMax = 0;
    for (const se of o.series) for (const v of se.values) if (v !== null && v > yMax) yMax = v;
    if (yMax <= 0) yMax = o.yMinMax ?? 1;
    const yt = niceTicks(0, yMax, 4);
    const top = Math.max(yMax, yt[yt.length - 1]);
    const xScale = (t) => M.left + ((t - lo) / Math.max(hi - lo, 1)) * (W - M.left - M.right);
    const yScale = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);
    const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': o.ariaLabel ?? '' });
    axes(svg, { W, H, xs: timeTicks(lo, hi, Math.floor(W / 90)), ys: yt, xScale, yScale, xFmt: fmtClock, yFmt: o.yFmt });
    const mid = (o.stepMs ?? 0) / 2;
    for (const se of o.series) {
      let d = '';
      let pen = false;
      se.values.forEach((v, k) => {
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        const px = xScale(xs[k] + mid).toFixed(1);
        const py = yScale(v).toFixed(1);
        d += `${pen ? 'L' : 'M'}${px},${py}`;
        pen = true;
      });
      if (se.area) {
        const first = se.values.findIndex((v) => v !== null);
        if (first >= 0) {
          let a = `M${xScale(xs[first] + mid)},${yScale(0)}`;
          se.values.forEach((v, k) => { a += `L${xScale(xs[k] + mid)},${yScale(v ?? 0)}`; });
          a += `L${xScale(xs[xs.length - 1] + mid)},${yScale(0)}Z`;
          svg.append(s('path', { d: a, class: `area ${se.cls ?? ''}` }));
        }
      }
      svg.append(s('path', { d, class: `line ${se.cls ?? ''}` }));
      // Lone points (no neighbours) would be invisible as paths.
      se.values.forEach((v, k) => {
        const prev = se.values[k - 1];
        const next = se.values[k + 1];
        if (v !== null && v !== undefined && (prev === null || prev === undefined) && (next === null || next === undefined)) {
          svg.append(s('circle', { cx: xScale(xs[k] + mid), cy: yScale(v), r: 2.5, class: `dot ${se.cls ?? ''}` }));
        }
      });
    }
    // Hover: a cursor line and the values of the nearest point.
    const cursor = s('line', { class: 'cursor', y1: M.top, y2: H - M.bottom, visibility: 'hidden' });
    svg.append(cursor);
    const overlay = s('rect', { x: M.left, y: M.top, width: Math.max(0, W - M.left - M.right), height: Math.max(0, H - M.top - M.bottom), class: 'overlay' });
    svg.append(overlay);
    overlay.addEventListener('pointermove', (e) => {
      const r = svg.getBoundingClientRect();
      const x = e.clientX - r.left;
      let best = 0;
      let bestD = Infinity;
      xs.forEach((t, k) => {
        const dd = Math.abs(xScale(t + mid) - x);
        if (dd < bestD) { bestD = dd; best = k; }
      });
      const px = xScale(xs[best] + mid);
      cursor.setAttribute('x1', px);
      cursor.setAttribute('x2', px);
      cursor.setAttribute('visibility', 'visible');
      tip.hidden = false;
      tip.replaceChildren(h('div', { class: 'tip-time' }, fmtClock(xs[best])),
        ...o.series.map((se) => h('div', null, h('i', { class: `sw ${se.cls ?? ''}` }), `${se.label}: `,
          h('b', null, se.values[best] === null || se.values[best] === undefined ? '–' : o.yFmt(se.values[best])))));
      tip.style.left = `${Math.min(px + 10, W - 150)}px`;
    });
    overlay.addEventListener('pointerleave', () => {
      cursor.setAttribute('visibility', 'hidden');
      tip.hidden = true;
    });
    return svg;
  });
  const tip = h('div', { class: 'tip', hidden: true });
  box.append(tip);
  if (o.series.length > 1) {
    box.append(h('div', { class: 'chart-legend' }, o.series.map((se) => h('span', null, h('i', { class: `sw ${se.cls ?? ''}` }), se.label))));
  }
  return box;
}

/**
 * A scatter plot of traces: x = start (Unix ms), y = duration (ns).
 * @param {object} o {points: [{x, y, r, error, href, label}], yFmt, height}
 */
export function scatterPlot(o) {
  const height = o.height ?? 200;
  return responsive('scatter', height, (W, H) => {
    const pts = o.points;
    let lo = Math.min(...pts.map((p) => p.x));
    let hi = Math.max(...pts.map((p) => p.x));
    if (hi - lo < 1000) {
      lo -= 30e3;
      hi += 30e3;
    }
    const pad = (hi - lo) * 0.03;
    lo -= pad;
    hi += pad;
    const yMax = Math.max(1, ...pts.map((p) => p.y));
    const yt = niceTicks(0, yMax * 1.08, 4);
    const top = Math.max(yMax * 1.08, yt[yt.length - 1]);
    const xScale = (t) => M.left + ((t - lo) / (hi - lo)) * (W - M.left - M.right);
    const yScale = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);
    const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Trace durations over time' });
    axes(svg, { W, H, xs: timeTicks(lo, hi, Math.floor(W / 90)), ys: yt, xScale, yScale, xFmt: fmtClock, yFmt: o.yFmt });
    const g = s('g', { class: 'points' });
    // Errors last, so they are drawn on top.
    const ordered = [...pts].sort((a, b) => Number(a.error) - Number(b.error));
    for (const p of ordered) {
      const a = s('a', { href: p.href, class: `pt${p.error ? ' error' : ''}`, 'data-trace-id': p.id },
        s('title', null, p.label),
        s('circle', { cx: xScale(p.x).toFixed(1), cy: yScale(p.y).toFixed(1), r: p.r }));
      a.addEventListener('click', (e) => {
        e.preventDefault();
        navigate(p.href);
      });
      g.append(a);
    }
    svg.append(g);
    return svg;
  });
}
