// The service dependency graph drawn as a layered graph (left to right, callers before callees):
// cycles broken by a depth-first search, layers by longest path, long edges routed through
// dummy points, crossings reduced by barycentre sweeps. Edges carry call counts, error rates and
// latency.

import { s, h, fmtInt, fmtPct, fmtRate, fmtDur, navigate, serviceHue } from './lib.js';

const NODE_W = 176;
const NODE_H = 46;
const GAP_X = 190;
const GAP_Y = 30;
const DUMMY_H = 18;
const PAD = 16;

/** Computes the layout: {nodes: [{name, layer, x, y, ...}], edges: [{..., points, reversed}], width, height}. */
export function layout(nodeList, edgeList) {
  const names = nodeList.map((n) => n.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const N = names.length;
  const out = Array.from({ length: N }, () => []);
  const inDeg = new Array(N).fill(0);
  const edges = [];
  for (const e of edgeList) {
    const a = index.get(e.parent);
    const b = index.get(e.child);
    if (a === undefined || b === undefined) continue;
    const edge = { ...e, a, b, self: a === b, reversed: false };
    edges.push(edge);
    if (a !== b) {
      out[a].push(edge);
      inDeg[b]++;
    }
  }
  // Break cycles: edges to a node on the DFS stack are reversed.
  const color = new Uint8Array(N); // 0 new, 1 on stack, 2 done
  const starts = [...Array(N).keys()].sort((x, y) => (inDeg[x] === 0 ? 0 : 1) - (inDeg[y] === 0 ? 0 : 1) || names[x].localeCompare(names[y]));
  const discovery = [];
  for (const s0 of starts) {
    if (color[s0]) continue;
    const stack = [[s0, 0]];
    color[s0] = 1;
    discovery.push(s0);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, k] = top;
      if (k < out[v].length) {
        top[1]++;
        const e = out[v][k];
        if (color[e.b] === 1) e.reversed = true;
        else if (color[e.b] === 0) {
          color[e.b] = 1;
          discovery.push(e.b);
          stack.push([e.b, 0]);
        }
      } else {
        color[v] = 2;
        stack.pop();
      }
    }
  }
  // Layers: longest path over the acyclic edges, in topological order.
  const dag = edges.filter((e) => !e.self).map((e) => (e.reversed ? [e.b, e.a] : [e.a, e.b]));
  const succ = Array.from({ length: N }, () => []);
  const indeg = new Array(N).fill(0);
  for (const [a, b] of dag) {
    succ[a].push(b);
    indeg[b]++;
  }
  const layer = new Array(N).fill(0);
  const queue = [...Array(N).keys()].filter((v) => indeg[v] === 0);
  while (queue.length) {
    const v = queue.shift();
    for (const w of succ[v]) {
      layer[w] = Math.max(layer[w], layer[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  // Vertices: real nodes, then dummies for edges longer than one layer.
  const verts = names.map((name, i) => ({ id: i, name, layer: layer[i], dummy: false, node: nodeList[i] }));
  const vPred = Array.from({ length: N }, () => []);
  const vSucc = Array.from({ length: N }, () => []);
  for (const e of edges) {
    if (e.self) continue;
    const [from, to] = e.reversed ? [e.b, e.a] : [e.a, e.b];
    const chain = [from];
    for (let l = layer[from] + 1; l < layer[to]; l++) {
      const d = { id: verts.length, layer: l, dummy: true };
      verts.push(d);
      vPred.push([]);
      vSucc.push([]);
      chain.push(d.id);
    }
    chain.push(to);
    for (let k = 0; k + 1 < chain.length; k++) {
      vSucc[chain[k]].push(chain[k + 1]);
      vPred[chain[k + 1]].push(chain[k]);
    }
    e.chain = chain;
  }
  const nLayers = Math.max(0, ...verts.map((v) => v.layer)) + 1;
  const layers = Array.from({ length: nLayers }, () => []);
  const rank = new Map(discovery.map((v, k) => [v, k]));
  for (const v of verts) layers[v.layer].push(v.id);
  for (const l of layers) l.sort((x, y) => (rank.get(x) ?? x) - (rank.get(y) ?? y));
  const pos = new Float64Array(verts.length);
  const setPos = () => layers.forEach((l) => l.forEach((v, k) => { pos[v] = k; }));
  setPos();
  const bary = (v, nbrs) => (nbrs.length ? nbrs.reduce((acc, w) => acc + pos[w], 0) / nbrs.length : pos[v]);
  for (let sweep = 0; sweep < 8; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.keys() : [...layers.keys()].reverse();
    for (const li of order) {
      const l = layers[li];
      const key = new Map(l.map((v) => [v, bary(v, down ? vPred[v] : vSucc[v])]));
      l.sort((x, y) => key.get(x) - key.get(y) || pos[x] - pos[y]);
      l.forEach((v, k) => { pos[v] = k; });
    }
  }
  // Coordinates: columns per layer, each column centred vertically.
  const colH = layers.map((l) => l.reduce((acc, v) => acc + (verts[v].dummy ? DUMMY_H : NODE_H) + GAP_Y, -GAP_Y));
  const height = Math.max(NODE_H, ...colH) + 2 * PAD + 20;
  layers.forEach((l, li) => {
    let y = PAD + (height - 2 * PAD - colH[li]) / 2;
    for (const v of l) {
      const vt = verts[v];
      const hgt = vt.dummy ? DUMMY_H : NODE_H;
      vt.x = PAD + li * (NODE_W + GAP_X);
      vt.y = y;
      vt.cy = y + hgt / 2;
      y += hgt + GAP_Y;
    }
  });
  const width = PAD * 2 + nLayers * NODE_W + (nLayers - 1) * GAP_X;
  for (const e of edges) {
    if (e.self) continue;
    const pts = e.chain.map((v, k) => {
      const vt = verts[v];
      if (vt.dummy) return [vt.x + NODE_W / 2, vt.cy];
      return k === 0 ? [vt.x + NODE_W, vt.cy] : [vt.x, vt.cy];
    });
    e.points = pts;
  }
  return { verts, nodes: verts.filter((v) => !v.dummy), edges, width, height };
}

function pathOf(pts) {
  let d = `M${pts[0][0].toFixed(1)},${pts[0][1].toFixed(1)}`;
  for (let k = 1; k < pts.length; k++) {
    const [x0, y0] = pts[k - 1];
    const [x1, y1] = pts[k];
    const mx = (x0 + x1) / 2;
    d += ` C${mx.toFixed(1)},${y0.toFixed(1)} ${mx.toFixed(1)},${y1.toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`;
  }
  return d;
}

/** The point at `t` of the horizontal-tangent cubic from p0 to p1 drawn by pathOf. */
function cubicPoint([x0, y0], [x1, y1], t) {
  const u = 1 - t;
  const mx = (x0 + x1) / 2;
  const x = u * u * u * x0 + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * x1;
  const y = u * u * u * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y1 + t * t * t * y1;
  return [x, y];
}

function shorten(name, max = 22) {
  return name.length > max ? `${name.slice(0, max - 1)}…` : name;
}

/**
 * Draws the graph as an SVG element.
 * @param {object} data {services: [{name, inferred}], edges: [...], serviceStats: [RedRow]}
 */
export function dependencyGraph(data, { highlight } = {}) {
  const stats = new Map((data.serviceStats ?? []).map((r) => [r.service, r]));
  const nodes = data.services.map((sv) => ({ ...sv, stats: stats.get(sv.name) }));
  const L = layout(nodes, data.edges);
  const svg = s('svg', {
    class: 'dep-graph', width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`,
    role: 'img', 'aria-label': `Service dependency graph: ${L.nodes.length} services, ${L.edges.length} edges`,
  });
  svg.append(s('defs', null,
    s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' })),
    s('marker', { id: 'arrow-err', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead err' }))));
  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'edge-labels' });
  const maxCalls = Math.max(1, ...L.edges.map((e) => e.callCount));
  const outDeg = new Map();
  const inDeg = new Map();
  for (const e of L.edges) {
    if (e.self) continue;
    outDeg.set(e.parent, (outDeg.get(e.parent) ?? 0) + 1);
    inDeg.set(e.child, (inDeg.get(e.child) ?? 0) + 1);
  }
  for (const e of L.edges) {
    const err = e.errorCount > 0;
    const hi = highlight && (e.parent === highlight || e.child === highlight);
    const g = s('g', {
      class: `edge${err ? ' err' : ''}${hi ? ' hi' : ''}${highlight && !hi ? ' dim' : ''}`,
      'data-parent': e.parent, 'data-child': e.child, 'data-calls': Math.round(e.callCount), 'data-errors': Math.round(e.errorCount),
    });
    const label = `${fmtInt(e.callCount)} call${Math.round(e.callCount) === 1 ? '' : 's'}${err ? ` · ${fmtPct(e.errorRate)} err` : ''}`;
    const title = `${e.parent} → ${e.child}\n${fmtInt(e.callCount)} calls, ${fmtInt(e.errorCount)} errors (${fmtPct(e.errorRate)})\nlatency p50 ${fmtDur(e.p50Nanos)}, p95 ${fmtDur(e.p95Nanos)}, p99 ${fmtDur(e.p99Nanos)}`;
    g.append(s('title', null, title));
    const width = 1.2 + 3 * Math.log10(1 + (9 * e.callCount) / maxCalls);
    let mid;
    if (e.self) {
      const v = L.verts[e.a];
      const x = v.x + NODE_W - 30;
      const y = v.y;
      g.append(s('path', { d: `M${x},${y} C${x - 10},${y - 40} ${x + 40},${y - 40} ${x + 20},${y}`, class: 'edge-line', 'stroke-width': width, 'marker-end': `url(#${err ? 'arrow-err' : 'arrow'})` }));
      mid = [x + 15, y - 34];
    } else {
      const pts = e.reversed ? [...e.points].reverse() : e.points;
      g.append(s('path', { d: pathOf(pts), class: `edge-line${e.reversed ? ' back' : ''}`, 'stroke-width': width, 'marker-end': `url(#${err ? 'arrow-err' : 'arrow'})` }));
      // On a fan-out, labels sit nearer the callees (which are spread out), on a fan-in nearer
      // the callers, so that labels of neighbouring edges do not pile up.
      const toward = (outDeg.get(e.parent) ?? 0) >= (inDeg.get(e.child) ?? 0) ? 0.6 : 0.4;
      const k = e.reversed ? pts.length - 2 - Math.floor((pts.length - 1) / 2) : Math.floor((pts.length - 1) / 2);
      const seg = Math.min(Math.max(k, 0), pts.length - 2);
      mid = cubicPoint(pts[seg], pts[seg + 1], pts.length === 2 ? (e.reversed ? 1 - toward : toward) : 0.5);
    }
    edgeLayer.append(g);
    const lg = s('g', { class: `edge-label${err ? ' err' : ''}${highlight && !hi ? ' dim' : ''}`, transform: `translate(${mid[0].toFixed(1)},${mid[1].toFixed(1)})`, 'data-parent': e.parent, 'data-child': e.child },
      s('title', null, title),
      s('rect', { x: -58, y: -17, width: 116, height: 30, rx: 5 }),
      s('text', { y: -4, 'text-anchor': 'middle', class: 'calls' }, label),
      s('text', { y: 9, 'text-anchor': 'middle', class: 'lat' }, `p99 ${fmtDur(e.p99Nanos)}`));
    labelLayer.append(lg);
  }
  svg.append(edgeLayer);
  const nodeLayer = s('g', { class: 'nodes' });
  for (const v of L.nodes) {
    const n = v.node;
    const st = n.stats;
    const sub = n.inferred ? 'not instrumented'
      : st ? `${fmtRate(st.ratePerSecond)} · ${fmtPct(st.errorRate)} err · p99 ${fmtDur(st.p99Nanos)}` : 'no requests served';
    const cls = `node${n.inferred ? ' inferred' : ''}${st?.errors ? ' has-errors' : ''}${highlight === n.name ? ' hi' : ''}`;
    const inner = [
      s('title', null, n.inferred ? `${n.name}: known only from its callers' spans` : `${n.name}: open its RED charts`),
      s('rect', { width: NODE_W, height: NODE_H, rx: 8, class: 'node-box' }),
      s('rect', { width: 5, height: NODE_H - 12, x: 6, y: 6, rx: 2, class: 'node-stripe', style: `--h:${serviceHue(n.name)}` }),
      s('text', { x: 18, y: 19, class: 'node-name' }, shorten(n.name)),
      s('text', { x: 18, y: 35, class: 'node-sub' }, sub),
    ];
    const g = n.inferred
      ? s('g', { class: cls, transform: `translate(${v.x},${v.y})`, 'data-service': n.name }, ...inner)
      : s('a', { class: cls, href: `/services/${encodeURIComponent(n.name)}`, transform: `translate(${v.x},${v.y})`, 'data-service': n.name }, ...inner);
    if (!n.inferred) {
      g.addEventListener('click', (ev) => {
        ev.preventDefault();
        navigate(`/services/${encodeURIComponent(n.name)}${location.search}`);
      });
    }
    nodeLayer.append(g);
  }
  svg.append(nodeLayer, labelLayer);
  return h('div', { class: 'graph-scroll' }, svg);
}
