// Emits one known trace with the real Zipkin JavaScript tracer (`zipkin`) and its HTTP
// transport (`zipkin-transport-http`), then exits once the collector has answered.
//
//   node emit_zipkin_js.cjs URL v2|v1 TRACE_ID T0_MICROS
//
// URL is the full span endpoint (http://HOST:PORT/api/v2/spans or /api/v1/spans); v2 or v1
// picks the JSON encoder. TRACE_ID is 16 or 32 hex digits. T0_MICROS is the epoch time (in
// microseconds) the trace starts at; every timestamp is an offset from it.
//
// The trace (service names and span names are lower case: zipkin-js lower-cases them):
//
//   frontend  get /checkout   SERVER  a1b2c3d4e5f60718                  +0 .. +250ms
//   frontend  post /charge    CLIENT  53995c3f42cd8ad8 (parent a1b2..)   +20 .. +200ms   error
//   backend   post /charge    SERVER  53995c3f42cd8ad8 shared            +30 .. +190ms   error
//   backend   db.query        (none)  c0ffee0000000001 (parent 5399..)   +40 .. +90ms    debug
//   backend   publish order   PRODUCER d00d000000000002 (parent 5399..)  +100 .. +110ms
//
// On success it prints each request body it sent, one per line, prefixed with "sent ", and
// exits 0. Any answer other than 202 (or a network error) is printed and the exit code is 1.

'use strict';

const {
  Tracer,
  BatchRecorder,
  ExplicitContext,
  TraceId,
  Annotation,
  InetAddress,
  option: {Some, None},
  jsonEncoder: {JSON_V1, JSON_V2},
} = require('zipkin');
const {HttpLogger} = require('zipkin-transport-http');

async function main() {
  const [url, encoding, traceId, t0Text] = process.argv.slice(2);
  if (!url || !['v1', 'v2'].includes(encoding) || !traceId || !t0Text) {
    console.error('usage: emit_zipkin_js.cjs URL v2|v1 TRACE_ID T0_MICROS');
    process.exit(2);
  }
  const t0 = Number(t0Text);
  const at = (ms) => t0 + ms * 1000;

  const pending = [];
  const failures = [];
  const sent = [];
  // Global fetch, tracked so the script can wait for every answer before exiting.
  const fetchImplementation = (endpoint, options) => {
    sent.push(options.body);
    const request = fetch(endpoint, {
      method: options.method,
      body: options.body,
      headers: options.headers,
    }).then(async (response) => {
      if (response.status !== 202) {
        failures.push(`status ${response.status}: ${await response.text()}`);
      }
      return response;
    }, (error) => {
      failures.push(`request failed: ${error}`);
      throw error;
    });
    pending.push(request.catch(() => {}));
    return request;
  };
  const logger = new HttpLogger({
    endpoint: url,
    jsonEncoder: encoding === 'v1' ? JSON_V1 : JSON_V2,
    httpInterval: 60 * 60 * 1000, // flushed by hand below
    fetchImplementation,
  });
  logger.on('error', (e) => failures.push(e.message));
  const recorder = new BatchRecorder({logger});
  const ctxImpl = new ExplicitContext();
  const frontend = new Tracer({ctxImpl, recorder, localServiceName: 'frontend'});
  const backend = new Tracer({ctxImpl, recorder, localServiceName: 'backend'});
  const sampled = new Some(true);

  // 1. frontend receives GET /checkout.
  const rootId = new TraceId({traceId, parentId: None, spanId: 'a1b2c3d4e5f60718', sampled});
  frontend.letId(rootId, () => {
    frontend.recordServiceName('frontend');
    frontend.recordRpc('GET /checkout');
    frontend.recordLocalAddr({host: new InetAddress('10.0.0.1'), port: 8080});
    frontend.recordAnnotation(new Annotation.ServerRecv(), at(0));
    frontend.recordAnnotation(
      new Annotation.ClientAddr({host: new InetAddress('192.0.2.7'), port: 51234}), at(0));
    frontend.recordBinary('http.method', 'GET');
    frontend.recordBinary('http.path', '/checkout');
    frontend.recordAnnotation(new Annotation.Message('cache.miss'), at(5));
  });

  // 2. frontend calls backend: POST /charge (client side).
  const callId = new TraceId({
    traceId, parentId: new Some('a1b2c3d4e5f60718'), spanId: '53995c3f42cd8ad8', sampled,
  });
  frontend.letId(callId, () => {
    frontend.recordServiceName('frontend');
    frontend.recordRpc('POST /charge');
    frontend.recordAnnotation(new Annotation.ClientSend(), at(20));
    frontend.recordAnnotation(new Annotation.ServerAddr({
      serviceName: 'backend', host: new InetAddress('10.0.0.2'), port: 9000,
    }), at(20));
    frontend.recordBinary('http.method', 'POST');
    frontend.recordBinary('http.status_code', '502');
    frontend.recordBinary('error', 'payment declined');
  });

  // 3. backend joins the same span id (B3 single-span model): the server side, shared.
  const joined = backend.join(new TraceId({
    traceId, parentId: new Some('a1b2c3d4e5f60718'), spanId: '53995c3f42cd8ad8', sampled,
  }));
  backend.letId(joined, () => {
    backend.recordServiceName('backend');
    backend.recordRpc('POST /charge');
    backend.recordLocalAddr({host: new InetAddress('10.0.0.2'), port: 9000});
    backend.recordAnnotation(new Annotation.ServerRecv(), at(30));
    backend.recordAnnotation(new Annotation.ClientAddr({
      serviceName: 'frontend', host: new InetAddress('10.0.0.1'), port: 40000,
    }), at(30));
    backend.recordBinary('charge.amount', '42.50');
    backend.recordBinary('error', 'card declined');
    backend.recordAnnotation(new Annotation.Message('card.authorized'), at(35));
  });

  // 4. backend queries its database: a local span, reported with the debug flag.
  const dbId = new TraceId({
    traceId, parentId: new Some('53995c3f42cd8ad8'), spanId: 'c0ffee0000000001', sampled,
    debug: true,
  });
  backend.letId(dbId, () => {
    backend.recordServiceName('backend');
    backend.recordAnnotation(new Annotation.LocalOperationStart('db.query'), at(40));
    backend.recordBinary('db.statement', 'SELECT balance FROM accounts WHERE id = ?');
    backend.recordAnnotation(new Annotation.LocalOperationStop(), at(90));
  });

  // 5. backend publishes a message to Kafka.
  const publishId = new TraceId({
    traceId, parentId: new Some('53995c3f42cd8ad8'), spanId: 'd00d000000000002', sampled,
  });
  backend.letId(publishId, () => {
    backend.recordServiceName('backend');
    backend.recordRpc('publish order');
    backend.recordAnnotation(new Annotation.ProducerStart(), at(100));
    backend.recordAnnotation(new Annotation.MessageAddr({
      serviceName: 'kafka', host: new InetAddress('10.0.0.9'), port: 9092,
    }), at(100));
    backend.recordAnnotation(new Annotation.ProducerStop(), at(110));
  });

  // Finish the remaining spans in the order they end, then send.
  backend.letId(joined, () => backend.recordAnnotation(new Annotation.ServerSend(), at(190)));
  frontend.letId(callId, () => frontend.recordAnnotation(new Annotation.ClientRecv(), at(200)));
  frontend.letId(rootId, () => frontend.recordAnnotation(new Annotation.ServerSend(), at(250)));
  recorder.flush();
  logger.processQueue(fetchImplementation);
  await Promise.all(pending);

  if (sent.length === 0) failures.push('nothing was sent');
  if (failures.length > 0) {
    for (const f of failures) console.error(f);
    process.exit(1);
  }
  for (const body of sent) console.log(`sent ${body}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
