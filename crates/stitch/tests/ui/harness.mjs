// A headless Chromium for the UI tests and benchmarks, and a tiny check runner.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Starts Debian's chromium with a fresh profile (and the extra arguments `fx.args`). Returns {browser, page, close, shot}; `close`
 * must be called (it also removes the profile). Page errors and console errors are printed.
 */
export async function launch(fx = {}, viewport = { width: 1440, height: 900 }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stitch-ui-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: fx.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...(fx.args ?? [])],
    viewport,
    colorScheme: 'light',
    timeout: 60_000,
  });
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('pageerror', (e) => {
    problems.push(`page error: ${e.message}`);
    console.log(`  page error: ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`  console error: ${m.text()}`);
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await browser.close();
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  };
  const shot = async (name) => {
    if (!fx.artifacts) return;
    fs.mkdirSync(fx.artifacts, { recursive: true });
    await page.screenshot({ path: path.join(fx.artifacts, name) });
  };
  return { browser, page, close, shot, problems };
}

/** Named checks with assertions; prints one line per check and a summary. */
export class Checks {
  constructor() {
    this.passed = 0;
    this.failed = 0;
    this.current = null;
  }

  async check(name, f) {
    this.current = { name, failures: [] };
    const t0 = Date.now();
    try {
      await f();
    } catch (e) {
      this.current.failures.push(e?.stack ?? String(e));
    }
    const ms = Date.now() - t0;
    if (this.current.failures.length) {
      this.failed++;
      console.log(`not ok - ${name} (${ms} ms)`);
      for (const f2 of this.current.failures) console.log(`    ${f2.split('\n').join('\n    ')}`);
    } else {
      this.passed++;
      console.log(`ok - ${name} (${ms} ms)`);
    }
  }

  fail(msg) {
    this.current.failures.push(msg);
  }

  ok(cond, msg) {
    if (!cond) this.fail(`expected: ${msg}`);
  }

  equal(actual, expected, msg) {
    if (actual !== expected) this.fail(`${msg}: expected ${util.inspect(expected)}, got ${util.inspect(actual)}`);
  }

  deepEqual(actual, expected, msg) {
    if (!util.isDeepStrictEqual(actual, expected)) {
      this.fail(`${msg}: expected ${util.inspect(expected)}, got ${util.inspect(actual)}`);
    }
  }

  done() {
    console.log(`ui: ${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed ? 1 : 0);
  }
}
