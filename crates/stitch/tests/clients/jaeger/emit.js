// Emits Stitch's known Jaeger trace with the real jaeger-client for Node.
//
//   node emit.js udp HOST PORT [T0_MS]    agent UDP sender (Thrift binary protocol, port 6832)
//   node emit.js http URL [T0_MS]         collector HTTP sender (POST /api/traces)
//
// UDP spans get 128-bit trace ids, HTTP spans 64-bit ones. T0_MS (Unix milliseconds, may be
// fractional) is the root's start; default now - 60 s. On success it prints one JSON line:
// {"traceId": "...", "root": "...", "child": "...", "follower": "...", "linkedTrace": "...",
//  "linkedSpan": "..."}
'use strict';

const { initTracer } = require('jaeger-client');
const opentracing = require('opentracing');

const [mode, target, third, fourth] = process.argv.slice(2);
let reporter;
let t0Arg;
if (mode === 'udp') {
  reporter = { agentHost: target, agentPort: Number(third) };
  t0Arg = fourth;
} else if (mode === 'http') {
  reporter = { collectorEndpoint: target };
  t0Arg = third;
} else {
  console.error('usage: node emit.js udp HOST PORT [T0_MS] | node emit.js http URL [T0_MS]');
  process.exit(2);
}
const T0 = t0Arg ? Number(t0Arg) : Date.now() - 60000;

const tracer = initTracer(
  {
    serviceName: 'jaeger-node-e2e',
    sampler: { type: 'const', param: 1 },
    reporter: { ...reporter, flushIntervalMs: 60000, logSpans: false },
  },
  {
    tags: {
      'deployment.environment': 'e2e',
      'host.cpu.count': 8,
      'process.debug': false,
    },
    traceId128bit: mode === 'udp',
    logger: { info() {}, error(msg) { console.error(msg); } },
  },
);

// A span of another trace, which the client span follows from (a link).
const LINKED_TRACE = '0af7651916cd43dd8448eb211c80319c';
const LINKED_SPAN = '00000000000004d2';
const linked = tracer.extract(opentracing.FORMAT_TEXT_MAP, {
  'uber-trace-id': `${LINKED_TRACE}:${LINKED_SPAN}:0:1`,
});

const root = tracer.startSpan('POST /checkout', {
  startTime: T0,
  tags: {
    'span.kind': 'server',
    'http.method': 'POST',
    'http.status_code': 500,
    'order.total': 299.97,
    'customer.premium': true,
    'payload': Buffer.from([0, 1, 254, 255]),
    'text': 'héllo, wörld',
    'error': true,
  },
});
root.log({ event: 'inventory_check', warehouse: 'us-east', items: 3 }, T0 + 1.5);
root.log({ event: 'error', 'error.kind': 'PaymentDeclined', message: 'payment declined' }, T0 + 200);

const child = tracer.startSpan('charge card', {
  startTime: T0 + 10,
  references: [
    opentracing.childOf(root.context()),
    opentracing.followsFrom(linked),
  ],
  tags: { 'span.kind': 'client', 'peer.service': 'payments' },
});
child.finish(T0 + 200.25);

const follower = tracer.startSpan('send receipt', {
  startTime: T0 + 251,
  references: [opentracing.followsFrom(root.context())],
  tags: { 'span.kind': 'producer' },
});
follower.finish(T0 + 260);
root.finish(T0 + 250);

const ids = {
  traceId: root.context().toTraceId(),
  root: root.context().toSpanId(),
  child: child.context().toSpanId(),
  follower: follower.context().toSpanId(),
  linkedTrace: LINKED_TRACE,
  linkedSpan: LINKED_SPAN,
};
tracer.close(() => {
  console.log(JSON.stringify(ids));
});
