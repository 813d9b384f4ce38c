// Headless-browser check of a GraphiQL page.
//
//   node tests/browser/graphiql.mjs <page-url> <expected-text> [screenshot.png]
//
// Opens the page in Debian's chromium (via playwright-core), waits for GraphiQL to render
// with its default query (and default headers) in the editors, clicks the execute button
// and waits for the response pane to contain <expected-text>. Prints the response and
// exits 0; otherwise prints why (console errors, failed requests, ...) and exits 1.
// Requests to any host other than the page's own also fail the check.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, expected, screenshot] = process.argv.slice(2);
if (!url || !expected) {
  console.error('usage: node tests/browser/graphiql.mjs <page-url> <expected-text> [screenshot.png]');
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OVERALL_MS = 60_000;
const STEP_MS = 20_000;

const consoleErrors = [];
const failedRequests = [];
const externalRequests = [];
let context;
let page;
let userDataDir;

async function cleanup() {
  try {
    if (context) await context.close();
  } catch {}
  context = undefined;
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

async function responseText() {
  if (!page) return '';
  return page
    .evaluate(() => {
      const cm = document.querySelector('.result-window .CodeMirror');
      if (cm && cm.CodeMirror) return cm.CodeMirror.getValue();
      const pane = document.querySelector('.result-window');
      return pane ? pane.innerText : '';
    })
    .catch(() => '');
}

async function fail(reason) {
  console.error(`FAIL: ${reason}`);
  const text = await responseText();
  if (text) console.error(`response pane:\n${text}`);
  for (const e of consoleErrors) console.error(`console error: ${e}`);
  for (const r of failedRequests) console.error(`failed request: ${r}`);
  for (const r of externalRequests) console.error(`external request: ${r}`);
  if (page && screenshot) await page.screenshot({ path: screenshot, timeout: 5_000 }).catch(() => {});
  await cleanup();
  process.exit(1);
}

const overall = setTimeout(() => fail(`timed out after ${OVERALL_MS / 1000} s`), OVERALL_MS);

try {
  const pageHost = new URL(url).host;
  userDataDir = mkdtempSync(join(tmpdir(), 'stackgate-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    timeout: STEP_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_MS);

  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (/^(https?|wss?):$/.test(u.protocol) && u.host !== pageHost) externalRequests.push(req.url());
  });
  page.on('requestfailed', (req) =>
    failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
  );
  page.on('response', (res) => {
    if (res.status() >= 400) failedRequests.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
  });

  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res || !res.ok()) await fail(`GET ${url} answered ${res ? res.status() : 'nothing'}`);

  // GraphiQL has rendered and the query editor holds the default query.
  await page.waitForSelector('.graphiql-execute-button').catch(() => fail('GraphiQL did not render (no execute button)'));
  await page
    .waitForFunction(() => {
      const cm = document.querySelector('.graphiql-query-editor .CodeMirror');
      return cm && cm.CodeMirror && cm.CodeMirror.getValue().trim() !== '';
    })
    .catch(() => fail('the query editor stayed empty (no default query)'));

  await page.click('.graphiql-execute-button');
  await page
    .waitForFunction(
      (want) => {
        const cm = document.querySelector('.result-window .CodeMirror');
        const text = cm && cm.CodeMirror ? cm.CodeMirror.getValue() : '';
        return text.includes(want);
      },
      expected,
      { polling: 200 },
    )
    .catch(() => fail(`response pane did not contain ${JSON.stringify(expected)} within ${STEP_MS / 1000} s`));

  const text = await responseText();
  console.log(text);
  if (screenshot) await page.screenshot({ path: screenshot });
  if (externalRequests.length) await fail('the page made requests to other hosts');
  clearTimeout(overall);
  await cleanup();
  console.log(`OK: response contains ${JSON.stringify(expected)}`);
  process.exit(0);
} catch (err) {
  await fail(err && err.stack ? err.stack : String(err));
}
