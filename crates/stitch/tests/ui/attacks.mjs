// Attacks of a hostile web page on a developer's Stitch, in headless Chromium, driven by
// crates/stitch/tests/ui.rs. STITCH_FIXTURE:
//   {chromium, query, zipkin, service, expectBlocked, marker}
// `query` and `zipkin` are host:port of a running Stitch; `service` a service it holds; `marker`
// the trace id the forged span is sent with (the test then looks whether it was stored).
// The hostile pages are served by the test itself (Playwright answers their document requests);
// `rebind.test` and `attacker.test` resolve to 127.0.0.1, as a rebinding DNS server would make
// them. With `expectBlocked` every attack must fail; without it (a Stitch told to allow these
// names) every attack must work, which shows the browser really made each request.

import { launch, Checks } from './harness.mjs';

const fx = JSON.parse(process.env.STITCH_FIXTURE ?? '{}');
const t = new Checks();
// Chromium's own Local Network Access checks refuse a page's requests to loopback when the
// page did not come from loopback; other browsers have no such checks. They are turned off so
// that what is tested is Stitch's defence, whatever browser the user runs.
const { browser, page, close } = await launch({
  ...fx,
  args: [
    '--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP attacker.test 127.0.0.1',
    '--disable-features=LocalNetworkAccessChecks',
  ],
});
const port = (hostPort) => hostPort.split(':').pop();
const hostile = '<!doctype html><title>hostile</title><p>nothing to see</p>';
await browser.route(/\/hostile\.html$/, (route) =>
  route.fulfill({ status: 200, contentType: 'text/html', body: hostile }));

try {
  await t.check('a rebound domain reads the query API as its own origin', async () => {
    // The page's domain now points at 127.0.0.1, on Stitch's port: same origin as the API.
    await page.goto(`http://rebind.test:${port(fx.query)}/hostile.html`);
    const got = await page.evaluate(async () => {
      const r = await fetch('/api/services');
      return { status: r.status, body: await r.text() };
    });
    if (fx.expectBlocked) {
      t.equal(got.status, 403, `status (${got.body})`);
      t.ok(got.body.includes('"rebind.test'), `the refusal names the host: ${got.body}`);
      t.ok(!got.body.includes(fx.service), 'no service name leaks');
    } else {
      t.equal(got.status, 200, 'status');
      t.ok(got.body.includes(fx.service), `the services are read: ${got.body}`);
    }
  });

  await t.check('a rebound domain reads a trace through Zipkin\'s query API', async () => {
    await page.goto(`http://rebind.test:${port(fx.zipkin)}/hostile.html`);
    const got = await page.evaluate(async () => {
      const r = await fetch('/api/v2/services');
      return { status: r.status, body: await r.text() };
    });
    t.equal(got.status, fx.expectBlocked ? 403 : 200, `status (${got.body})`);
    t.equal(got.body.includes(fx.service), !fx.expectBlocked, `service name in ${got.body}`);
  });

  await t.check('a page on another site writes a span with a no-cors request', async () => {
    await page.goto('http://attacker.test:8123/hostile.html');
    const now = Date.now() * 1000;
    const span = JSON.stringify([{
      traceId: fx.marker, id: '1', name: 'forged', timestamp: now, duration: 5,
      localEndpoint: { serviceName: 'forged' },
    }]);
    // A body without a type sends no Content-Type: a request any page may send anywhere
    // without asking first; its answer stays opaque to the page.
    const sent = await page.evaluate(async ({ zipkin, span }) => {
      const r = await fetch(`http://${zipkin}/api/v2/spans`, { method: 'POST', mode: 'no-cors', body: new Blob([span]) });
      return r.type;
    }, { zipkin: fx.zipkin, span });
    t.equal(sent, 'opaque', 'the request was sent');
  });
} finally {
  await close();
}
t.done();
