// Emits one known trace with the OpenTelemetry JavaScript SDK and its Zipkin exporter
// (`@opentelemetry/exporter-zipkin`, Zipkin v2 JSON), then exits once it was exported.
//
//   node emit_otel_js.cjs URL TRACE_ID T0_MILLIS
//
// URL is the full span endpoint (http://HOST:PORT/api/v2/spans). TRACE_ID is 32 hex digits;
// T0_MILLIS the epoch time in milliseconds the trace starts at.
//
// The trace (service `checkout`, scope `stitch-e2e` 1.2.3):
//
//   GET /checkout   SERVER   00f067aa0ba902b7          +0 .. +250ms  ERROR "payment declined"
//   charge card     CLIENT   53995c3f42cd8ad8 (parent)  +20 .. +200ms OK
//   serialize       INTERNAL b9c7c989f97918e1 (parent charge card) +21 .. +23ms
//
// Exits 0 when the exporter reports success, 1 otherwise.

'use strict';

const api = require('@opentelemetry/api');
const {BasicTracerProvider, BatchSpanProcessor} = require('@opentelemetry/sdk-trace-base');
const {resourceFromAttributes} = require('@opentelemetry/resources');
const {ZipkinExporter} = require('@opentelemetry/exporter-zipkin');

async function main() {
  const [url, traceId, t0Text] = process.argv.slice(2);
  if (!url || !traceId || !t0Text) {
    console.error('usage: emit_otel_js.cjs URL TRACE_ID T0_MILLIS');
    process.exit(2);
  }
  const t0 = Number(t0Text);
  const at = (ms) => new Date(t0 + ms);

  const spanIds = ['00f067aa0ba902b7', '53995c3f42cd8ad8', 'b9c7c989f97918e1'];
  const idGenerator = {
    generateTraceId: () => traceId,
    generateSpanId: () => spanIds.shift(),
  };
  const results = [];
  const exporter = new ZipkinExporter({url});
  const exportSpans = exporter.export.bind(exporter);
  exporter.export = (spans, done) => exportSpans(spans, (result) => {
    results.push(result);
    done(result);
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout',
      'service.version': '2.0.1',
      'deployment.environment.name': 'e2e',
      'host.cpu.count': 8,
    }),
    idGenerator,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('stitch-e2e', '1.2.3');

  const root = tracer.startSpan('GET /checkout', {
    kind: api.SpanKind.SERVER,
    startTime: at(0),
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 500,
      'order.total': 299.97,
      'customer.premium': true,
      'order.skus': ['A-1', 'B-2'],
    },
  });
  root.addEvent('inventory_check_passed', {warehouse: 'us-east'}, at(5));
  root.setStatus({code: api.SpanStatusCode.ERROR, message: 'payment declined'});
  const rootCtx = api.trace.setSpan(api.ROOT_CONTEXT, root);

  const call = tracer.startSpan('charge card', {
    kind: api.SpanKind.CLIENT,
    startTime: at(20),
    attributes: {
      'peer.service': 'payments',
      'server.address': 'payments.internal',
      'server.port': 8443,
    },
  }, rootCtx);
  const callCtx = api.trace.setSpan(rootCtx, call);
  const inner = tracer.startSpan('serialize', {startTime: at(21)}, callCtx);
  inner.end(at(23));
  call.setStatus({code: api.SpanStatusCode.OK});
  call.end(at(200));
  root.end(at(250));

  await provider.forceFlush();
  await provider.shutdown();
  const failed = results.filter((r) => r.code !== 0);
  if (results.length === 0 || failed.length > 0) {
    console.error(`export failed: ${JSON.stringify(results.map((r) => ({
      code: r.code, error: r.error && String(r.error),
    })))}`);
    process.exit(1);
  }
  console.log(`exported ${results.length} batches`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
