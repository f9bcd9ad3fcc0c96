// End-to-end checks of Stitch's web UI in headless Chromium, driven by crates/stitch/tests/ui.rs,
// which starts `stitch`, sends the fixture traces and passes them in STITCH_FIXTURE:
//   {url, chromium, artifacts, checkout: {traceId, spans: {key: spanId}}, failing: {...}}
// Each check asserts what a user sees; screenshots of every page go to `artifacts`.

import { launch, Checks } from './harness.mjs';

const fx = JSON.parse(process.env.STITCH_FIXTURE ?? '{}');
const { url, artifacts } = fx;
const co = fx.checkout;
const fail = fx.failing;
const t = new Checks();
const { browser, page, close, shot } = await launch(fx, { width: 1440, height: 900 });

const rowOf = (spanId) => page.locator(`.wf .row[data-span-id="${spanId}"]`);
const rows = async () => Number(await page.locator('.wf').getAttribute('data-rows'));
/** Waits for the next rendered frame (the waterfall updates its rows in animation frames). */
const frame = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
const rowText = async (loc) => (await loc.locator('.name').innerText()).replace(/\s+/g, ' ').trim();

try {
  await t.check('search lists the traces newest first, with a scatter plot and errors highlighted', async () => {
    await page.goto(`${url}/search?service=api-gateway&lookback=1h`);
    await page.locator('.result').first().waitFor();
    const ids = await page.locator('.result').evaluateAll((els) => els.map((e) => e.dataset.traceId));
    t.equal(ids.length, 6, 'six traces');
    t.equal(ids[0], fail.traceId, 'the failing checkout is the newest');
    t.ok(ids.includes(co.traceId), 'the checkout is listed');
    const checkout = page.locator(`.result[data-trace-id="${co.traceId}"]`);
    const text = await checkout.innerText();
    t.ok(text.includes('api-gateway: POST /api/checkout'), `result title: ${text}`);
    t.ok(text.includes('1.94s'), `result duration: ${text}`);
    t.ok(text.includes('18 spans'), `span count: ${text}`);
    t.equal(await page.locator('.scatter .pt').count(), 6, 'one point per trace');
    const errs = await page.locator('.scatter .pt.error').evaluateAll((els) => els.map((e) => e.dataset.traceId));
    t.deepEqual(errs, [fail.traceId], 'the failing trace is the red point');
    t.ok(await page.locator(`.result.has-errors[data-trace-id="${fail.traceId}"]`).isVisible(), 'the failing result is marked');
    await shot('search.png');
  });

  await t.check('search filters by duration and attributes, and the form keeps the query', async () => {
    await page.goto(`${url}/search?service=api-gateway&minDuration=1.9s&maxDuration=2s&lookback=1h`);
    await page.locator('.result').first().waitFor();
    const ids = await page.locator('.result').evaluateAll((els) => els.map((e) => e.dataset.traceId));
    t.deepEqual(ids, [co.traceId], 'only the 1.94 s checkout lasts 1.9 to 2 s');
    t.equal(await page.locator('input[name=minDuration]').inputValue(), '1.9s', 'the form shows the filter');
    await page.goto(`${url}/search?service=payment-service&tags=peer.service%3Dpayment-provider&lookback=1h`);
    await page.locator('.result').first().waitFor();
    t.equal(await page.locator('.result').count(), 5, 'the five checkouts call the payment provider');
    // Submitting the form changes the URL (a deep link) and the results.
    await page.fill('input[name=maxDuration]', '600ms');
    await page.click('button[type=submit]');
    await page.waitForURL(/maxDuration=600ms/);
    // The list re-renders after the new search answers; wait for it to settle before counting.
    await page
      .waitForFunction(() => document.querySelectorAll('.result').length === 1, null, { timeout: 5000 })
      .catch(() => {});
    t.equal(await page.locator('.result').count(), 1, 'one provider call is at most 600 ms long');
  });

  await t.check('the search box takes TraceQL; the form writes TraceQL; refusals point at the problem', async () => {
    const q = '{ resource.service.name = "payment-service" && .peer.service = "payment-provider" }';
    await page.goto(`${url}/search?q=${encodeURIComponent(q)}&lookback=1h`);
    await page.locator('.result').first().waitFor();
    t.equal(await page.locator('.result').count(), 5, 'five checkouts call the provider');
    t.equal(await page.locator('.traceql-form textarea').inputValue(), q, 'the box shows the query');
    t.ok((await page.locator('.result').first().innerText()).includes('1 matching'), 'each result counts its matching spans');
    t.ok((await page.locator(`.result[data-trace-id="${co.traceId}"]`).innerText()).includes('18 spans'), 'the span count of the trace');
    // A query that cannot hold: the message and a caret under the position.
    await page.goto(`${url}/search?q=${encodeURIComponent('{ status = 500 }')}&lookback=1h`);
    await page.locator('.traceql-error:not(:empty)').waitFor();
    const err = await page.locator('.traceql-error').innerText();
    t.ok(err.includes('cannot compare a status') && err.includes('{ status = 500 }\n         ^'), `refusal: ${err}`);
    // The form is the simple mode: it shows its TraceQL, and runs it on demand.
    await page.goto(`${url}/search?service=api-gateway&minDuration=1.9s&maxDuration=2s&lookback=1h`);
    await page.locator('.result').first().waitFor();
    t.equal(await page.locator('[data-testid=form-traceql]').innerText(),
      '{ resource.service.name = "api-gateway" && duration >= 1.9s && duration <= 2s }', 'the form as TraceQL');
    await page.click('text=Edit as TraceQL');
    await page.waitForURL(/[?&]q=/);
    await page.waitForFunction(() => document.querySelectorAll('.result').length === 1, null, { timeout: 5000 }).catch(() => {});
    const ids = await page.locator('.result').evaluateAll((els) => els.map((e) => e.dataset.traceId));
    t.deepEqual(ids, [co.traceId], 'the same trace through TraceQL');
    await shot('search-traceql.png');
  });

  await t.check('a result opens its trace: the waterfall shows the critical path', async () => {
    await page.goto(`${url}/search?service=api-gateway&minDuration=1.9s&maxDuration=2s&lookback=1h`);
    await page.locator(`.result[data-trace-id="${co.traceId}"] a`).click();
    await page.waitForURL(new RegExp(`/trace/${co.traceId}`));
    await page.locator('.trace-page[data-analysis="1"]').waitFor({ timeout: 15000 });
    await frame();
    t.equal(await page.locator('h1').innerText(), 'api-gateway: POST /api/checkout', 'title');
    t.equal(await page.locator('[data-testid=trace-duration]').innerText(), '1.94s', 'duration');
    t.equal(await rows(), 18, 'every span has a row (small traces open fully)');
    const critical = await page.locator('.wf .row[data-critical="1"]').evaluateAll((els) => els.map((e) => e.dataset.spanId));
    for (const key of ['gw', 'gwc', 'order', 'invc', 'q1', 'q3', 'pricec', 'payc', 'pay', 'provider', 'notify', 'events']) {
      t.ok(critical.includes(co.spans[key]), `${key} is on the critical path`);
    }
    t.ok(!critical.includes(co.spans.session), 'the concurrent session lookup is not on the critical path');
    t.ok(await rowOf(co.spans.provider).locator('.cpseg').count() > 0, 'the provider call carries the critical-path line');
    t.equal(await rowText(rowOf(co.spans.provider)), 'payment-service POST /v1/charges', 'row text');
  });

  await t.check('the 400 ms uninstrumented gap is shaded and labelled with its duration', async () => {
    const gaps = rowOf(co.spans.order).locator('.gap.self');
    const labels = await gaps.locator('span').allInnerTexts();
    t.ok(labels.includes('400ms'), `order-service POST /orders shows a 400ms gap label (labels: ${labels.join(', ')})`);
    const title = await gaps.filter({ hasText: '400ms' }).getAttribute('title');
    t.ok(/uninstrumented/.test(title), `the gap explains itself: ${title}`);
    t.ok(await rowOf(co.spans.gwc).locator('.gap.net').count() >= 1, 'the gateway → order call has client→server gaps');
    await shot('trace-checkout.png');
  });

  await t.check('findings are listed in plain words and lead to their spans', async () => {
    const titles = await page.locator('.finding-title').allInnerTexts();
    t.ok(titles.length >= 5, `several findings (${titles.length})`);
    t.ok(titles.some((x) => x.includes('400ms') && x.includes('"POST /orders"') && x.includes('no child span running')),
      `the 400 ms gap is a finding: ${titles.join(' | ')}`);
    t.ok(titles.some((x) => x.includes('POST /v1/charges')), 'the 800 ms provider call is a finding');
    t.ok(titles.some((x) => /notification/i.test(x)), 'the synchronous notification is a finding');
    const kinds = await page.locator('.findings > li').evaluateAll((els) => els.map((e) => e.dataset.kind));
    t.equal(kinds[0], 'dominantLeaf', 'the largest cost comes first');
    await page.locator('.findings > li', { hasText: '400ms' }).filter({ hasText: 'no child span running' }).locator('button').click();
    const sel = await page.locator('.wf .row.sel').getAttribute('data-span-id');
    t.equal(sel, co.spans.order, 'clicking the finding selects its span');
    t.ok(await rowOf(co.spans.order).evaluate((e) => e.classList.contains('marked')), 'and highlights it');
    t.ok(page.url().includes(`span=${co.spans.order}`), 'the URL names the span');
  });

  await t.check('a span deep link opens the span with its attributes, events and resource', async () => {
    await page.goto(`${url}/trace/${co.traceId}?span=${co.spans.provider}`);
    const detail = page.locator(`.span-detail[data-span-id="${co.spans.provider}"]`);
    await detail.locator('.attrs').first().waitFor();
    await frame();
    const text = await detail.innerText();
    for (const want of ['payment-service', 'POST /v1/charges', 'peer.service', 'payment-provider', 'api.stripe.com', 'resource', 'host.name', '800ms']) {
      t.ok(text.toLowerCase().includes(want.toLowerCase()), `the detail shows ${want}`);
    }
    t.equal(await page.locator('.wf .row.sel').getAttribute('data-span-id'), co.spans.provider, 'the span is selected');
    await page.goto(`${url}/trace/${co.traceId}?span=${co.spans.order}`);
    const orderText = await page.locator(`.span-detail[data-span-id="${co.spans.order}"]`).innerText();
    t.ok(orderText.includes('inventory check complete') && orderText.includes('payment initiated'), 'events are listed');
    await shot('trace-span-detail.png');
    const link = page.locator('.span-links a', { hasText: 'order-service service' });
    t.equal(await link.getAttribute('href'), '/services/order-service', 'a span links to its service');
  });

  await t.check('keyboard: j/k move, Enter collapses and expands, / finds spans', async () => {
    await page.goto(`${url}/trace/${co.traceId}`);
    await page.locator('.trace-page[data-analysis="1"]').waitFor();
    await frame();
    await page.locator('.wf-body').focus();
    await page.keyboard.press('j');
    await frame();
    t.equal(await page.locator('.wf .row.sel').getAttribute('data-span-id'), co.spans.gw, 'j selects the first row');
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('k');
    await frame();
    t.equal(await page.locator('.wf .row.sel').getAttribute('data-span-id'), co.spans.gwc, 'j j k lands on the second row');
    await page.keyboard.press('Enter');
    await frame();
    await page.waitForFunction(() => document.querySelector('.wf').dataset.rows !== '18');
    t.equal(await rows(), 3, 'Enter collapses the gateway call');
    await page.keyboard.press('Enter');
    await frame();
    await page.waitForFunction(() => document.querySelector('.wf').dataset.rows === '18');
    await page.keyboard.press('/');
    t.ok(await page.locator('input.find').evaluate((e) => e === document.activeElement), '/ focuses the finder');
    await page.keyboard.type('reservation');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('.find-count')?.textContent.startsWith('1 of'));
    await frame();
    t.equal(await page.locator('.wf .row.sel').getAttribute('data-span-id'), co.spans.q3, 'Enter goes to the match');
  });

  await t.check('statistics show self time per service and operation', async () => {
    await page.locator('.tab[data-tab=stats]').click();
    const text = await page.locator('.stats-wrap').innerText();
    t.ok(/by service/i.test(text) && text.includes('order-service') && text.includes('payment-service'), 'service rows');
    t.ok(text.includes('api-gateway: GET session'), 'operation rows');
  });

  await t.check('errors are red and clock-skew adjustments are marked', async () => {
    await page.goto(`${url}/trace/${fail.traceId}`);
    await page.locator('.trace-page[data-analysis="1"]').waitFor();
    await frame();
    t.equal(await page.locator('.wf .row.err:visible').count(), 5, 'every failed span is red');
    const skewed = await page.locator('.wf .row .badge.skew').count();
    t.ok(skewed >= 1, `skew-adjusted spans are marked (${skewed})`);
    const origins = await page.locator('.finding[data-kind=errorOrigin] .finding-title').allInnerTexts();
    t.ok(origins.some((x) => x.includes('payment-service')), `the error origin is named: ${origins.join(' | ')}`);
    await shot('trace-errors.png');
  });

  await t.check('the services page draws the dependency graph with call counts and errors', async () => {
    await page.goto(`${url}/services`);
    await page.locator('.dep-graph').waitFor();
    const edges = await page.locator('.dep-graph .edge').evaluateAll((els) => els.map((e) => ({
      parent: e.dataset.parent, child: e.dataset.child, calls: Number(e.dataset.calls), errors: Number(e.dataset.errors),
    })));
    const edge = (p, c) => edges.find((e) => e.parent === p && e.child === c);
    t.deepEqual(edge('api-gateway', 'order-service'), { parent: 'api-gateway', child: 'order-service', calls: 6, errors: 1 }, 'gateway → order: 6 calls, 1 error');
    t.equal(edge('order-service', 'inventory-service')?.calls, 5, 'order → inventory: 5 calls');
    t.equal(edge('payment-service', 'payment-provider')?.calls, 5, 'payment → provider (inferred): 5 calls');
    t.equal(edge('api-gateway', 'redis')?.calls, 5, 'gateway → redis (inferred)');
    t.equal(edge('inventory-service', 'postgresql')?.calls, 15, 'inventory → postgresql: 15 queries');
    const label = await page.locator('.dep-graph .edge-label[data-parent="api-gateway"][data-child="order-service"]').textContent();
    t.ok(label.includes('6 calls') && label.includes('17% err'), `edge label: ${label}`);
    t.ok(await page.locator('.dep-graph .node.inferred[data-service="payment-provider"]').count() === 1, 'the provider is an inferred node');
    await shot('services.png');
    await page.locator('.dep-graph a.node[data-service="order-service"]').click();
    await page.waitForURL(/\/services\/order-service/);
  });

  await t.check('a service page shows RED charts over time and its operations', async () => {
    await page.locator('.service-page .charts svg').first().waitFor();
    t.equal(await page.locator('.service-page .charts svg').count(), 3, 'rate, errors and duration charts');
    const tiles = await page.locator('.tiles').innerText();
    t.ok(/Requests\s*6\b/i.test(tiles), `six requests: ${tiles}`);
    const ops = await page.locator('.red-table').last().innerText();
    t.ok(ops.includes('POST /orders') && ops.includes('GET /prices'), 'operations are listed');
    t.ok((await page.locator('.two-col').innerText()).includes('api-gateway'), 'callers are listed');
    await shot('service-order.png');
    await page.locator('.red-table').last().locator('a', { hasText: 'GET /prices' }).click();
    await page.waitForURL(/operation=GET/);
    t.ok((await page.locator('.service-page h2').first().innerText()).includes('GET /prices'), 'an operation can be charted alone');
  });

  await t.check('dark theme, wide and narrow widths', async () => {
    await page.goto(`${url}/trace/${co.traceId}`);
    await page.locator('.trace-page[data-analysis="1"]').waitFor();
    await frame();
    await page.click('.theme-toggle');
    t.equal(await page.evaluate(() => document.documentElement.dataset.resolvedTheme), 'dark', 'the toggle switches to dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    t.ok(bg !== 'rgb(244, 245, 247)', `the background follows (${bg})`);
    await shot('trace-dark.png');
    await page.setViewportSize({ width: 1920, height: 1080 });
    await shot('trace-wide.png');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${url}/services`);
    await page.locator('.dep-graph').waitFor();
    await shot('services-dark-laptop.png');
    await page.click('.theme-toggle');
    t.equal(await page.evaluate(() => document.documentElement.dataset.resolvedTheme), 'light', 'and back');
  });

  await t.check('an unknown trace says so', async () => {
    await page.goto(`${url}/trace/00000000000000000000000000abcdef`);
    await page.locator('.message.error').waitFor();
    t.ok((await page.locator('.message.error').innerText()).includes('was not found'), 'not found message');
  });

  await t.check('assets are embedded and cached by version', async () => {
    const html = await (await fetch(`${url}/`)).text();
    const m = /\/ui\/([0-9a-f]+)\/app\.js/.exec(html);
    t.ok(m, 'the shell links the versioned entry point');
    const r = await fetch(`${url}/ui/${m[1]}/app.js`);
    t.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8', 'JavaScript content type');
    t.ok(r.headers.get('cache-control').includes('immutable'), 'versioned assets are immutable');
    const css = await fetch(`${url}/ui/style.css`);
    t.equal(css.headers.get('cache-control'), 'no-cache', 'unversioned assets are revalidated');
    const again = await fetch(`${url}/ui/style.css`, { headers: { 'if-none-match': css.headers.get('etag') } });
    t.equal(again.status, 304, 'ETag revalidation');
    const api = await fetch(`${url}/api/services`);
    t.ok((await api.json()).data.includes('order-service'), 'the API is not shadowed');
  });
} finally {
  await close();
}
t.done();
