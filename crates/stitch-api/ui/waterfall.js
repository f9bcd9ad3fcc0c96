// The waterfall: a virtualised list of span rows (only the rows in view exist in the DOM), a time
// axis, and a minimap of the whole trace with the critical path drawn as a strip.

import { esc, fmtDur, fmtInt, niceTicks, serviceHue, serviceColor, isDark } from './lib.js';
import { KIND_NAMES } from './model.js';

export const ROW_H = 24;
const OVERSCAN = 8;
const INDENT = 14;
const MAX_INDENT_DEPTH = 24;

export class Waterfall {
  /**
   * @param {HTMLElement} root where to build
   * @param {object} model the trace model
   * @param {object} opts {onSelect(rowIndex), onToggle(rowIndex), onOpen(rowIndex)}
   */
  constructor(root, model, opts) {
    this.model = model;
    this.opts = opts;
    this.rows = [];
    this.lo = model.start;
    this.hi = Math.max(model.end, model.start + 1);
    this.selected = -1; // row index
    this.marked = new Set(); // span indices highlighted (finding, search)
    this.version = 0;
    this.live = new Map(); // row index -> element
    this.free = [];
    this.tlWidth = 600;
    this.frame = 0;

    root.classList.add('wf');
    root.innerHTML = `
      <div class="wf-head">
        <div class="wf-head-name">Service &amp; operation</div>
        <div class="wf-splitter" title="Drag to resize"></div>
        <div class="wf-axis" aria-hidden="true"></div>
      </div>
      <div class="wf-viewport">
        <div class="wf-gridlines" aria-hidden="true"></div>
        <div class="wf-body" tabindex="0" role="tree" aria-label="Spans of the trace">
          <div class="wf-spacer"></div>
        </div>
      </div>`;
    this.root = root;
    this.axis = root.querySelector('.wf-axis');
    this.gridlines = root.querySelector('.wf-gridlines');
    this.body = root.querySelector('.wf-body');
    this.spacer = root.querySelector('.wf-spacer');

    this.body.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.body.addEventListener('click', (e) => this.onClick(e));
    this.body.addEventListener('dblclick', (e) => {
      const el = e.target.closest('.row');
      if (el && !e.target.closest('.tog')) this.opts.onToggle?.(Number(el.dataset.row));
    });
    this.resizeObserver = new ResizeObserver(() => this.measure());
    this.resizeObserver.observe(this.body);
    this.initSplitter(root.querySelector('.wf-splitter'));
    this.measure(false);
  }

  destroy() {
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
  }

  initSplitter(el) {
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      el.setPointerCapture(e.pointerId);
      const rect = this.root.getBoundingClientRect();
      const move = (ev) => {
        const frac = Math.min(0.7, Math.max(0.15, (ev.clientX - rect.left) / rect.width));
        this.root.style.setProperty('--name-w', `${(frac * 100).toFixed(1)}%`);
        this.measure();
      };
      const up = () => {
        el.removeEventListener('pointermove', move);
        el.removeEventListener('pointerup', up);
      };
      el.addEventListener('pointermove', move);
      el.addEventListener('pointerup', up);
    });
  }

  measure(render = true) {
    const sbw = this.body.offsetWidth - this.body.clientWidth;
    this.root.style.setProperty('--sbw', `${Math.max(0, sbw)}px`);
    const w = this.axis.getBoundingClientRect().width;
    if (w > 0) this.tlWidth = w;
    if (render) this.invalidate();
  }

  setRows(rows) {
    this.rows = rows;
    this.root.dataset.rows = String(rows.length);
    this.spacer.style.height = `${rows.length * ROW_H}px`;
    this.invalidate();
  }

  setRange(lo, hi) {
    this.lo = lo;
    this.hi = Math.max(hi, lo + 1);
    this.invalidate();
  }

  setSelected(rowIndex) {
    this.selected = rowIndex;
    this.invalidate();
  }

  setMarked(spanSet) {
    this.marked = spanSet;
    this.invalidate();
  }

  invalidate() {
    this.version++;
    this.drawAxis();
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Scrolls row `k` into view (centred when far). */
  scrollToRow(k, center = false) {
    const top = k * ROW_H;
    const view = this.body.clientHeight;
    const st = this.body.scrollTop;
    if (center || top < st || top + ROW_H > st + view) {
      this.body.scrollTop = center ? Math.max(0, top - view / 2 + ROW_H / 2)
        : top < st ? top : top + ROW_H - view;
    }
    this.schedule();
  }

  visibleRange() {
    const st = this.body.scrollTop;
    const vh = this.body.clientHeight || 600;
    const first = Math.max(0, Math.floor(st / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length - 1, Math.ceil((st + vh) / ROW_H) + OVERSCAN);
    return [first, last];
  }

  /** Renders the rows in view, reusing row elements. */
  render() {
    const t0 = window.__stitchProfile ? performance.now() : 0;
    this.renderRows();
    if (t0) window.__stitchProfile.push(performance.now() - t0);
  }

  renderRows() {
    const [first, last] = this.visibleRange();
    for (const [k, el] of this.live) {
      if (k < first || k > last) {
        this.live.delete(k);
        el.style.display = 'none';
        // A pooled element is no row: it must not match `.row` selectors while hidden.
        el.className = '';
        delete el.dataset.spanId;
        delete el.dataset.critical;
        this.free.push(el);
      }
    }
    for (let k = first; k <= last; k++) {
      let el = this.live.get(k);
      if (!el) {
        el = this.free.pop();
        if (!el) {
          el = document.createElement('div');
          this.spacer.appendChild(el);
        }
        el.style.display = '';
        el._v = -1;
        this.live.set(k, el);
      }
      if (el._v !== this.version || el._k !== k) {
        this.renderRow(el, k);
        el._v = this.version;
        el._k = k;
      }
    }
  }

  pct(t) {
    return ((t - this.lo) / (this.hi - this.lo)) * 100;
  }

  px(d) {
    return (d / (this.hi - this.lo)) * this.tlWidth;
  }

  renderRow(el, k) {
    const row = this.rows[k];
    el.style.transform = `translateY(${k * ROW_H}px)`;
    el.dataset.row = k;
    if (row.group) this.renderGroup(el, k, row);
    else this.renderSpan(el, k, row);
  }

  renderSpan(el, k, row) {
    const m = this.model;
    const sp = m.spans[row.span];
    const hue = serviceHue(sp.service);
    const cls = ['row'];
    if (k === this.selected) cls.push('sel');
    if (sp.cp > 0) cls.push('cp');
    if (sp.error) cls.push('err');
    if (this.marked.has(sp.i)) cls.push('marked');
    el.className = cls.join(' ');
    el.dataset.spanId = sp.id;
    el.dataset.critical = sp.cp > 0 ? '1' : '0';
    el.setAttribute('role', 'treeitem');
    el.setAttribute('aria-level', String(row.depth + 1));
    el.setAttribute('aria-selected', k === this.selected ? 'true' : 'false');
    const hasKids = sp.children && sp.children.length;
    const open = hasKids && this.opts.isExpanded(sp.i);
    if (hasKids) el.setAttribute('aria-expanded', open ? 'true' : 'false');
    else el.removeAttribute('aria-expanded');
    const indent = Math.min(row.depth, MAX_INDENT_DEPTH) * INDENT;
    const dur = sp.end - sp.start;
    const a = this.pct(sp.start);
    const w = Math.max(this.pct(sp.end) - a, 0);
    const skew = sp.shift
      ? `<span class="badge skew" title="Clock skew adjusted: moved ${sp.shift > 0 ? 'later' : 'earlier'} by ${fmtDur(Math.abs(sp.shift))}${sp.skewInherited ? ' with its parent' : ''}">⇄ ${sp.shift > 0 ? '+' : '−'}${fmtDur(Math.abs(sp.shift))}</span>`
      : '';
    const err = sp.error ? '<span class="badge errb" title="Error status">!</span>' : '';
    const tog = hasKids
      ? `<button class="tog" tabindex="-1" aria-label="${open ? 'Collapse' : 'Expand'}">${open ? '▾' : '▸'}</button>`
      : '<span class="tog none"></span>';
    const kids = hasKids && !open ? `<span class="kids" title="${sp.children.length} child spans hidden">${fmtInt(sp.children.length)}</span>` : '';
    let tl = `<div class="bar" style="left:${a}%;width:${w}%;--h:${hue}"></div>`;
    if (sp.sections) {
      for (const [s0, s1] of sp.sections) {
        const sa = this.pct(s0);
        tl += `<div class="cpseg" style="left:${sa}%;width:${Math.max(this.pct(s1) - sa, 0)}%"></div>`;
      }
    }
    const gaps = m.gapsBySpan?.get(sp.i);
    if (gaps) {
      for (const g of gaps) {
        const ga = this.pct(g.start);
        const gw = this.pct(g.end) - ga;
        const gpx = this.px(g.end - g.start);
        if (gpx < 1) continue;
        const what = g.type === 'net' ? 'outside the called service: network, queueing, connection setup' : 'no child span running: uninstrumented work';
        const label = gpx >= 34 ? `<span>${fmtDur(g.end - g.start)}</span>` : '';
        tl += `<div class="gap ${g.type}${g.finding >= 0 ? ' finding' : ''}" style="left:${ga}%;width:${gw}%" title="${fmtDur(g.end - g.start)} ${what}">${label}</div>`;
      }
    }
    const events = sp.events;
    if (events && events.length <= 50) {
      for (const [t0, name] of events) {
        const t = t0 + sp.shift;
        tl += `<div class="evt" style="left:${this.pct(t)}%" title="${esc(name || 'event')} at +${fmtDur(t - sp.start)}"></div>`;
      }
    }
    tl += durLabel(a, a + w, fmtDur(dur));
    el.innerHTML = `<div class="name" style="padding-left:${indent + 4}px" title="${esc(sp.service)}: ${esc(sp.name)} (${KIND_NAMES[sp.kind]})">${tog}<span class="svc" style="--h:${hue}">${esc(sp.service)}</span><span class="op">${esc(sp.name)}</span>${err}${skew}${kids}</div><div class="tl">${tl}</div>`;
  }

  renderGroup(el, k, row) {
    const g = row.group;
    const hue = serviceHue(g.service);
    const open = this.opts.isGroupOpen(g.id);
    el.className = `row group${k === this.selected ? ' sel' : ''}${g.errors ? ' err' : ''}`;
    el.dataset.spanId = '';
    el.dataset.critical = '0';
    el.setAttribute('role', 'treeitem');
    el.setAttribute('aria-level', String(row.depth + 1));
    el.setAttribute('aria-expanded', open ? 'true' : 'false');
    const indent = Math.min(row.depth, MAX_INDENT_DEPTH) * INDENT;
    const a = this.pct(g.start);
    const w = Math.max(this.pct(g.end) - a, 0);
    const stats = `×${fmtInt(g.count)} · p50 ${fmtDur(g.p50)} · p99 ${fmtDur(g.p99)}${g.errors ? ` · ${fmtInt(g.errors)} errors` : ''}`;
    el.innerHTML = `<div class="name" style="padding-left:${indent + 4}px" title="${fmtInt(g.count)} calls of ${esc(g.service)}: ${esc(g.name)} (not on the critical path); Enter to ${open ? 'collapse' : 'expand'}"><button class="tog" tabindex="-1" aria-label="${open ? 'Collapse group' : 'Expand group'}">${open ? '▾' : '▸'}</button><span class="count">×${fmtInt(g.count)}</span><span class="svc" style="--h:${hue}">${esc(g.service)}</span><span class="op">${esc(g.name)}</span></div><div class="tl"><div class="bar grp" style="left:${a}%;width:${w}%;--h:${hue}"></div>${durLabel(a, a + w, stats)}</div>`;
  }

  drawAxis() {
    const span = this.hi - this.lo;
    const base = this.model.start;
    const ticks = niceTicks(this.lo - base, this.hi - base, Math.max(2, Math.floor(this.tlWidth / 110)));
    let axis = '';
    let lines = '';
    for (const t of ticks) {
      const p = ((t + base - this.lo) / span) * 100;
      if (p < -0.01 || p > 100.01) continue;
      axis += `<span class="tick" style="left:${p}%">${fmtDur(t)}</span>`;
      lines += `<span style="left:${p}%"></span>`;
    }
    this.axis.innerHTML = axis;
    this.gridlines.innerHTML = `<div class="gl-inner">${lines}</div>`;
  }

  onClick(e) {
    const el = e.target.closest('.row');
    if (!el) return;
    const k = Number(el.dataset.row);
    if (e.target.closest('.tog')) {
      this.opts.onToggle?.(k);
      return;
    }
    this.opts.onSelect?.(k);
  }
}

function durLabel(a, b, text) {
  if (b < 78) return `<span class="dur" style="left:calc(${b}% + 4px)">${esc(text)}</span>`;
  if (a > 22) return `<span class="dur before" style="right:calc(${100 - a}% + 4px)">${esc(text)}</span>`;
  return `<span class="dur inside" style="right:calc(${Math.max(0, 100 - b)}% + 4px)">${esc(text)}</span>`;
}

/**
 * The minimap: every span of the trace in pre-order as a thin line, the critical path as a
 * strip on top, and the zoomed time range as a window. Drag to zoom, double-click to reset.
 */
export class Minimap {
  constructor(root, model, { onRange }) {
    this.model = model;
    this.onRange = onRange;
    this.lo = model.start;
    this.hi = model.end;
    root.classList.add('minimap');
    root.innerHTML = `<canvas class="mm-canvas" aria-label="Minimap of the whole trace; drag to zoom"></canvas><div class="mm-window"></div><div class="mm-drag"></div>`;
    this.root = root;
    this.canvas = root.querySelector('canvas');
    this.win = root.querySelector('.mm-window');
    this.drag = root.querySelector('.mm-drag');
    // Drawn first by the page once the waterfall has painted; then on every resize.
    this.ready = false;
    this.resizeObserver = new ResizeObserver(() => this.ready && this.draw());
    this.resizeObserver.observe(root);
    root.addEventListener('pointerdown', (e) => this.onDown(e));
    root.addEventListener('dblclick', () => this.onRange(model.start, model.end));
    this.onTheme = () => this.draw();
    window.addEventListener('stitch-theme', this.onTheme);
  }

  destroy() {
    this.resizeObserver.disconnect();
    window.removeEventListener('stitch-theme', this.onTheme);
  }

  setRange(lo, hi) {
    this.lo = lo;
    this.hi = hi;
    this.placeWindow();
  }

  placeWindow() {
    const m = this.model;
    const span = Math.max(m.end - m.start, 1);
    const a = ((this.lo - m.start) / span) * 100;
    const b = ((this.hi - m.start) / span) * 100;
    const full = a <= 0.01 && b >= 99.99;
    this.win.style.display = full ? 'none' : '';
    this.win.style.left = `${a}%`;
    this.win.style.width = `${b - a}%`;
  }

  draw() {
    this.ready = true;
    const m = this.model;
    const rect = this.root.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(1, Math.floor(rect.width));
    const H = Math.max(1, Math.floor(rect.height));
    this.canvas.width = W * dpr;
    this.canvas.height = H * dpr;
    this.canvas.style.width = `${W}px`;
    this.canvas.style.height = `${H}px`;
    const ctx = this.canvas.getContext('2d');
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, W, H);
    const dark = isDark();
    const span = Math.max(m.end - m.start, 1);
    const x = (t) => ((t - m.start) / span) * W;
    const STRIP = 10;
    const top = STRIP + 3;
    const n = m.order.length;
    const rowH = Math.min(4, (H - top) / Math.max(n, 1));
    // Batch rectangles by colour: one fillStyle per service, errors last.
    const byColor = new Map();
    const errs = [];
    for (let k = 0; k < n; k++) {
      const sp = m.spans[m.order[k]];
      if (sp.error) {
        errs.push(k);
        continue;
      }
      let list = byColor.get(sp.service);
      if (!list) byColor.set(sp.service, (list = []));
      list.push(k);
    }
    const h = Math.max(rowH, 0.6);
    const drawList = (list) => {
      for (const k of list) {
        const sp = m.spans[m.order[k]];
        const x0 = x(sp.start);
        ctx.fillRect(x0, top + k * rowH, Math.max(x(sp.end) - x0, 0.8), h);
      }
    };
    ctx.globalAlpha = 0.85;
    for (const [service, list] of byColor) {
      ctx.fillStyle = serviceColor(service, dark);
      drawList(list);
    }
    ctx.fillStyle = dark ? '#ff6b6b' : '#d62828';
    drawList(errs);
    ctx.globalAlpha = 1;
    // The critical path strip: whose time the request waited on, moment by moment.
    ctx.fillStyle = dark ? '#2a2f3a' : '#e7e9ee';
    ctx.fillRect(0, 0, W, STRIP);
    for (const sp of m.spans) {
      if (!sp.sections) continue;
      ctx.fillStyle = sp.error ? (dark ? '#ff6b6b' : '#d62828') : serviceColor(sp.service, dark);
      for (const [a, b] of sp.sections) ctx.fillRect(x(a), 0, Math.max(x(b) - x(a), 0.5), STRIP);
    }
    this.placeWindow();
  }

  onDown(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    const m = this.model;
    const rect = this.root.getBoundingClientRect();
    const span = Math.max(m.end - m.start, 1);
    const toT = (cx) => m.start + Math.min(1, Math.max(0, (cx - rect.left) / rect.width)) * span;
    const x0 = e.clientX;
    this.root.setPointerCapture(e.pointerId);
    const move = (ev) => {
      const a = Math.min(x0, ev.clientX) - rect.left;
      const b = Math.max(x0, ev.clientX) - rect.left;
      this.drag.style.display = 'block';
      this.drag.style.left = `${Math.max(0, a)}px`;
      this.drag.style.width = `${Math.min(rect.width, b) - Math.max(0, a)}px`;
    };
    const up = (ev) => {
      this.root.removeEventListener('pointermove', move);
      this.root.removeEventListener('pointerup', up);
      this.drag.style.display = 'none';
      if (Math.abs(ev.clientX - x0) < 4) {
        // A click: centre the current zoom window there.
        const width = this.hi - this.lo;
        if (width < span) {
          const c = toT(ev.clientX);
          const lo = Math.min(Math.max(m.start, c - width / 2), m.end - width);
          this.onRange(lo, lo + width);
        }
        return;
      }
      const a = toT(Math.min(x0, ev.clientX));
      const b = toT(Math.max(x0, ev.clientX));
      this.onRange(a, b);
    };
    this.root.addEventListener('pointermove', move);
    this.root.addEventListener('pointerup', up);
  }
}
