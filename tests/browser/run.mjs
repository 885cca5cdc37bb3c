// kefu's browser tests: the product-page widget (on /demo) and the agent
// console (/console), in real headless Chromium driven by playwright-core.
//
// Run by `cargo test --test it browser` (tests/it/browser.rs), which starts
// `kefu serve` on the sample kb/ and passes:
//   KEFU_URL          the server, e.g. http://127.0.0.1:40123 (required)
//   KEFU_PUBLIC_KEY   a public key for the widget (optional: a server without keys)
//   KEFU_AGENT_KEY    an agent key for the console (optional)
//   KEFU_SCREENSHOTS  where screenshots go (default: target/screenshots/)
//   CHROMIUM          the browser (default: /usr/bin/chromium)
// By hand: `node tests/browser/run.mjs` against a running server.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BASE = (process.env.KEFU_URL || 'http://127.0.0.1:7700').replace(/\/+$/, '');
const PUBLIC_KEY = process.env.KEFU_PUBLIC_KEY || '';
const AGENT_KEY = process.env.KEFU_AGENT_KEY || '';
const SHOTS = resolve(ROOT, process.env.KEFU_SCREENSHOTS || 'target/screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** A shop's product page on another origin, served by this test on that
 * address; the harness lists it among the public key's allowed origins. */
const SHOP_ORIGIN = process.env.KEFU_SHOP_ORIGIN || '';
const DESKTOP = { width: 1280, height: 800 };
const MOBILE = { width: 375, height: 740 };
/** The sample kb/'s internal red line about taking buyers off the platform. */
const INTERNAL = { id: 'int-redline-offline-payment', question: '买家要求加微信、私下转账便宜点怎么回？', phrase: '不得引导或接受线下交易' };

mkdirSync(SHOTS, { recursive: true });
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
  });
});
after(async () => { await browser?.close(); });

/** A fresh page that records /v1/ requests and any page error or CSP violation. */
async function open(path, viewport = DESKTOP, options = {}, init = null) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN', ...options });
  if (init) await context.addInitScript(init.script, init.arg);
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on('request', (request) => { if (new URL(request.url()).pathname.startsWith('/v1/')) requests.push(request); });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  await page.goto(BASE + path);
  return { context, page, requests, problems };
}

const searches = (requests) => requests.filter((r) => new URL(r.url()).pathname === '/v1/search');
const isSearch = (response) => new URL(response.url()).pathname === '/v1/search';
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function shadowText(page) {
  return page.evaluate(() => document.querySelector('kefu-faq').shadowRoot.textContent);
}

async function productFaqExists() {
  const response = await fetch(`${BASE}/v1/products/SKU-1001/faq?platform=tmall${PUBLIC_KEY ? `&key=${PUBLIC_KEY}` : ''}`);
  return response.status !== 404;
}

/** The search the agent sees, straight from the API. */
async function agentSearch(q, params = '') {
  const headers = AGENT_KEY ? { Authorization: `Bearer ${AGENT_KEY}` } : {};
  const response = await fetch(`${BASE}/v1/search?q=${encodeURIComponent(q)}&limit=5${params}`, { headers });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

describe('product-page widget on /demo', () => {
  const demo = `/demo${PUBLIC_KEY ? `?key=${encodeURIComponent(PUBLIC_KEY)}` : ''}`;

  test('renders the product FAQ from the two-line embed', async (t) => {
    if (!(await productFaqExists())) {
      t.skip('GET /v1/products/{id}/faq is not on this server yet');
      return;
    }
    const { context, page, problems } = await open(demo);
    const faq = await page.waitForResponse((r) => r.url().includes('/v1/products/SKU-1001/faq'));
    assert.equal(faq.status(), 200);
    const url = new URL(faq.url());
    assert.equal(url.searchParams.get('platform'), 'tmall');
    if (PUBLIC_KEY) assert.equal(url.searchParams.get('key'), PUBLIC_KEY);
    const body = await faq.json();
    assert.ok(body.entries.length > 0, 'the sample product has FAQ entries');
    await page.locator('kefu-faq li summary').first().waitFor();
    const shown = await page.locator('kefu-faq li summary .q').allTextContents();
    assert.deepEqual(shown, body.entries.map((e) => e.question));
    assert.ok(!shown.includes(INTERNAL.question));
    assert.deepEqual(problems, []);
    await page.locator('kefu-faq').screenshot({ path: `${SHOTS}/widget-faq-desktop.png` });
    await context.close();
  });

  test('searches as you type, once, with highlights and audience=public', async () => {
    const { context, page, requests, problems } = await open(demo);
    const input = page.locator('kefu-faq input[type=search]');
    await input.click();
    const answered = page.waitForResponse(isSearch);
    await page.keyboard.type('靴子偏大还是偏小', { delay: 40 });
    const response = await answered;
    assert.equal(response.status(), 200);
    await sleep(400);
    assert.equal(searches(requests).length, 1, 'one search after the typing pauses, not one per character');
    const url = new URL(response.url());
    assert.equal(url.searchParams.get('q'), '靴子偏大还是偏小');
    assert.equal(url.searchParams.get('audience'), 'public');
    assert.equal(url.searchParams.get('source'), 'widget');
    assert.equal(url.searchParams.get('product'), 'SKU-1001');
    assert.equal(url.searchParams.get('platform'), 'tmall');
    if (PUBLIC_KEY) assert.equal(url.searchParams.get('key'), PUBLIC_KEY);
    const body = await response.json();
    assert.equal(body.hits[0].id, 'boots-1001-size');
    const first = page.locator('kefu-faq li').first();
    await first.locator('summary .q').filter({ hasText: body.hits[0].question }).waitFor();
    // The first answer is open and rendered from answer_html: its size table is there.
    assert.ok(await first.locator('details').evaluate((d) => d.open));
    assert.ok(await first.locator('.answer table').count() === 1);
    assert.ok(await page.locator('kefu-faq mark').count() > 0, 'matched words are highlighted');
    assert.match(await page.locator('kefu-faq [role=status]').textContent(), /找到/);
    assert.deepEqual(problems, []);

    await page.screenshot({ path: `${SHOTS}/widget-demo-desktop.png`, fullPage: true });
    await page.setViewportSize(MOBILE);
    await sleep(200);
    await page.screenshot({ path: `${SHOTS}/widget-demo-mobile.png`, fullPage: true });
    await first.scrollIntoViewIfNeeded();
    await page.locator('kefu-faq').screenshot({ path: `${SHOTS}/widget-mobile.png` });
    await context.close();
  });

  test('does not search while an IME is composing, and searches once after', async () => {
    const { context, page, requests } = await open(demo);
    const input = page.locator('kefu-faq input[type=search]');
    await input.click();
    const before = searches(requests).length;
    // Real IME input through the DevTools protocol: pinyin being composed...
    const cdp = await context.newCDPSession(page);
    for (const text of ['c', 'ch', 'chi', 'chim', 'chima', 'chi ma', 'chi ma zh', 'chi ma zhun']) {
      await cdp.send('Input.imeSetComposition', { text, selectionStart: text.length, selectionEnd: text.length });
      await sleep(120);
    }
    await sleep(700); // well past the 250 ms debounce
    assert.equal(await input.inputValue(), 'chi ma zhun', 'the composition reached the input');
    assert.equal(searches(requests).length, before, 'no search while composing');
    // ...then committed as 尺码准: compositionend.
    const answered = page.waitForResponse(isSearch);
    await cdp.send('Input.insertText', { text: '尺码准吗' });
    const response = await answered;
    await sleep(700);
    assert.equal(searches(requests).length, before + 1, 'exactly one search after compositionend');
    assert.equal(new URL(response.url()).searchParams.get('q'), '尺码准吗');
    await context.close();
  });

  test('never shows an internal entry, although it is the best answer', async () => {
    const agent = await agentSearch('买家要加微信私下转账');
    assert.equal(agent.hits[0].id, INTERNAL.id, 'for an agent, the internal red line is the top answer');
    const { context, page, requests } = await open(demo);
    const input = page.locator('kefu-faq input[type=search]');
    await input.click();
    const answered = page.waitForResponse(isSearch);
    await input.fill('买家要加微信私下转账');
    const body = await (await answered).json();
    await sleep(300);
    assert.ok(body.hits.every((h) => h.audience === 'public'), 'the widget asked for public entries only');
    assert.ok(searches(requests).every((r) => new URL(r.url()).searchParams.get('audience') === 'public'));
    const text = await shadowText(page);
    assert.ok(!text.includes(INTERNAL.question) && !text.includes(INTERNAL.phrase), 'no trace of the internal entry');
    const html = await page.evaluate(() => document.querySelector('kefu-faq').shadowRoot.innerHTML);
    assert.ok(!html.includes(INTERNAL.id));
    await context.close();
  });

  test('有用 posts feedback and the server accepts it', async () => {
    const { context, page } = await open(demo);
    const input = page.locator('kefu-faq input[type=search]');
    await input.click();
    const answered = page.waitForResponse(isSearch);
    await input.fill('能发顺丰吗');
    const search = await (await answered).json();
    const item = page.locator('kefu-faq li').first();
    await item.locator('summary').waitFor();
    if (!(await item.locator('details').evaluate((d) => d.open))) await item.locator('summary').click();
    const posted = page.waitForResponse((r) => r.url().endsWith('/v1/feedback'));
    await item.getByRole('button', { name: '有用' }).click();
    const response = await posted;
    assert.equal(response.status(), 202);
    const request = response.request();
    assert.equal(request.method(), 'POST');
    assert.deepEqual(JSON.parse(request.postData()), {
      query_id: search.query_id, entry_id: search.hits[0].id, helpful: true, source: 'widget',
    });
    if (PUBLIC_KEY) assert.equal(request.headers().authorization, `Bearer ${PUBLIC_KEY}`);
    await item.getByText('感谢反馈').waitFor();
    assert.equal(await item.getByRole('button', { name: '有用' }).getAttribute('aria-pressed'), 'true');
    await context.close();
  });

  test('re-sanitises answers and builds highlights from code points (defence in depth)', async () => {
    const { context, page, problems } = await open(demo);
    let alerted = false;
    page.on('dialog', async (dialog) => { alerted = true; await dialog.dismiss(); });
    // A server that went wrong: answer HTML with every trick the allow-list must stop.
    await page.route('**/v1/search?*', (route) => route.fulfill({
      json: {
        query_id: '0190a6b2-0000-7000-8000-000000000000', confidence: 'high', took_ms: 1,
        hits: [{
          id: 'evil', question: '<b>不是标签</b>', matched: '', title: '', kind: 'faq', audience: 'public', score: 1,
          snippet: '😀尺码偏大半码', highlights: [[1, 3]],
          answer_markdown: '',
          answer_html: '<p>安全<strong>文字</strong></p><script>alert(1)</script><img src=x onerror="alert(2)">'
            + '<a href="javascript:alert(3)">坏链接</a><a href="https://example.com/ok" onclick="alert(4)">好链接</a>'
            + '<iframe src="https://example.com"></iframe><style>*{display:none}</style><object data="x"></object>'
            + '<p style="color:red" onmouseover="alert(5)">样式</p><img src="data:image/png;base64,AAAA"><svg><script>alert(6)</script></svg>',
          source: { path: 'faq/x.md', line: 1 },
        }],
      },
    }));
    const input = page.locator('kefu-faq input[type=search]');
    await input.fill('尺码');
    await page.locator('kefu-faq li[data-entry="evil"] .answer').waitFor();
    const answer = await page.locator('kefu-faq li[data-entry="evil"] .answer').evaluate((el) => el.innerHTML);
    assert.equal(answer, '<p>安全<strong>文字</strong></p>坏链接'
      + '<a href="https://example.com/ok" target="_blank" rel="noopener noreferrer nofollow">好链接</a><p>样式</p>');
    assert.equal(await page.locator('kefu-faq summary .q').textContent(), '<b>不是标签</b>', 'questions are text');
    assert.equal(await page.locator('kefu-faq mark').textContent(), '尺码', 'ranges count code points, not UTF-16 units');
    await page.locator('kefu-faq summary').hover();
    await sleep(200);
    assert.ok(!alerted, 'nothing ran');
    // Parsing the answer inertly still makes Chromium check the page's CSP
    // for its handlers and style attributes: reported as blocked, never run.
    assert.deepEqual(problems.filter((p) => !/Content Security Policy.*has been blocked|blocked.*Content Security Policy/s.test(p)), []);
    await context.close();
  });

  test('is keyboard operable, and a 429 gets a gentle message', async () => {
    const { context, page } = await open(demo);
    let limited = true;
    await page.route('**/v1/search?*', (route) => (limited
      ? route.fulfill({ status: 429, headers: { 'Retry-After': '7' }, json: { error: { code: 'rate_limited', message: 'slow down' } } })
      : route.continue()));
    const input = page.locator('kefu-faq input[type=search]');
    await input.fill('能发顺丰吗');
    await page.locator('kefu-faq [role=status]').filter({ hasText: '请 7 秒后再试' }).waitFor();
    limited = false;
    const answered = page.waitForResponse(isSearch);
    await input.press('Enter'); // the same text is tried again
    await answered;
    await page.locator('kefu-faq li summary').first().waitFor();
    await input.press('ArrowDown');
    const focused = () => page.evaluate(() => {
      const active = document.querySelector('kefu-faq').shadowRoot.activeElement;
      return active ? active.textContent : null;
    });
    const firstQuestion = await page.locator('kefu-faq li summary .q').first().textContent();
    assert.ok((await focused()).includes(firstQuestion), 'ArrowDown moves into the results');
    await page.keyboard.press('ArrowDown');
    const second = page.locator('kefu-faq li').nth(1);
    assert.equal(await second.locator('details').evaluate((d) => d.open), false);
    await page.keyboard.press('Enter');
    assert.equal(await second.locator('details').evaluate((d) => d.open), true, 'Enter opens the answer');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert.equal(await page.evaluate(() => document.querySelector('kefu-faq').shadowRoot.activeElement.id), 'kefu-q');
    await page.keyboard.press('Escape');
    assert.equal(await input.inputValue(), '', 'Esc clears the search');
    await context.close();
  });

  test('works embedded in a shop on another origin, with its public key', async (t) => {
    if (!PUBLIC_KEY || !SHOP_ORIGIN) {
      t.skip('needs a public key whose origins include KEFU_SHOP_ORIGIN');
      return;
    }
    // A shop's own product page, with its own strict CSP, pasting the two lines.
    const shop = createServer((request, response) => {
      response.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': `default-src 'self'; script-src ${BASE}; connect-src ${BASE}`,
      });
      response.end(`<!doctype html><meta charset="utf-8"><title>店铺商品页</title><h1>店铺商品页</h1>
        <script src="${BASE}/widget.js" defer></script>
        <kefu-faq product="SKU-1001" platform="tmall" key="${PUBLIC_KEY}"></kefu-faq>`);
    });
    const shopUrl = new URL(SHOP_ORIGIN);
    await new Promise((done) => shop.listen(Number(shopUrl.port), shopUrl.hostname, done));
    t.after(() => new Promise((done) => shop.close(done)));
    const context = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    await page.goto(`${SHOP_ORIGIN}/item.htm`);
    const input = page.locator('kefu-faq input[type=search]');
    const answered = page.waitForResponse(isSearch);
    await input.fill('能发顺丰吗');
    const response = await answered;
    assert.equal(response.status(), 200);
    assert.equal(new URL(response.url()).origin, BASE, 'the API base comes from the script\'s own src');
    const item = page.locator('kefu-faq li').first();
    await item.locator('summary').waitFor();
    if (!(await item.locator('details').evaluate((d) => d.open))) await item.locator('summary').click();
    const posted = page.waitForResponse((r) => r.url().endsWith('/v1/feedback') && r.request().method() === 'POST');
    await item.getByRole('button', { name: '没用' }).click();
    assert.equal((await posted).status(), 202, 'the preflighted feedback POST is allowed for this origin');
    await item.getByText('感谢反馈').waitFor();
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('a question nobody answered gets a friendly message', async () => {
    const { context, page } = await open(demo);
    const input = page.locator('kefu-faq input[type=search]');
    await input.click();
    const answered = page.waitForResponse(isSearch);
    await input.fill('量子计算机');
    const body = await (await answered).json();
    assert.equal(body.confidence, 'none');
    await page.locator('kefu-faq [role=status]').filter({ hasText: '暂时没有找到答案' }).waitFor();
    assert.equal(await page.locator('kefu-faq li').count(), 0);
    await context.close();
  });
});

describe('agent console on /console', () => {
  /** Opens the console with clipboard access; with `remembered`, as an agent
   * who gave the key before (it is in localStorage). */
  async function openConsole(viewport = DESKTOP, remembered = true) {
    const init = AGENT_KEY && remembered
      ? { script: (key) => localStorage.setItem('kefu.agentKey', key), arg: AGENT_KEY }
      : null;
    const opened = await open('/console', viewport, { permissions: ['clipboard-read', 'clipboard-write'] }, init);
    await opened.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    return opened;
  }

  async function type(page, query) {
    const answered = page.waitForResponse((r) => isSearch(r) && r.status() !== 401);
    await page.locator('#q').fill(query);
    if (AGENT_KEY && !(await page.evaluate(() => localStorage.getItem('kefu.agentKey')))) {
      // First search: the server wants a key; the console asks once and keeps it.
      await page.locator('#key-dialog').waitFor();
      await page.locator('#key').fill(AGENT_KEY);
      await page.getByRole('button', { name: '保存' }).click();
    }
    return answered;
  }

  test('finds, filters by platform, marks internal red lines and copies with the keyboard', async () => {
    const { context, page, requests, problems } = await openConsole(DESKTOP, false);
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'q', '/ focuses the search box');

    let response = await type(page, '能开发票吗');
    let body = await response.json();
    assert.equal(new URL(response.url()).searchParams.get('source'), 'agent');
    assert.equal(new URL(response.url()).searchParams.get('audience'), null, 'agents see internal entries');
    await page.locator('#confidence').waitFor();
    assert.equal(await page.locator('#confidence').getAttribute('data-confidence'), body.confidence);
    assert.equal(await page.locator('[role=option]').count(), body.hits.length);

    // Platform filter: 京东 → the JD invoice rule; 天猫 → the Tmall one, and its internal red line.
    let filtered = page.waitForResponse((r) => isSearch(r) && r.url().includes('platform=jd'));
    await page.locator('#platform').selectOption('jd');
    response = await filtered;
    body = await response.json();
    assert.equal(new URL(response.url()).searchParams.get('platform'), 'jd');
    assert.equal(body.hits[0].id, 'jd-invoice');
    await page.locator('[role=option][data-entry="jd-invoice"]').first().waitFor();
    assert.equal(await page.locator('[role=option]').first().getAttribute('data-entry'), 'jd-invoice');

    filtered = page.waitForResponse((r) => isSearch(r) && r.url().includes('platform=tmall'));
    await page.locator('#platform').selectOption('tmall');
    body = await (await filtered).json();
    assert.equal(body.hits[0].id, 'tmall-invoice');
    await page.locator('[role=option][data-entry="tmall-invoice"]').first().waitFor();
    const redline = page.locator('[role=option][data-entry="tmall-invoice-redline"]');
    assert.match(await redline.textContent(), /内部/);
    assert.match(await redline.textContent(), /红线/);
    assert.ok(!(await page.locator('[role=option][data-entry="jd-invoice"]').count()), 'results changed with the filter');

    // ArrowDown selects the second answer; Enter copies it and records it as used.
    await page.locator('#q').focus();
    await page.keyboard.press('ArrowDown');
    const second = page.locator('[role=option]').nth(1);
    assert.equal(await second.getAttribute('aria-selected'), 'true');
    const secondHit = body.hits[1];
    const used = page.waitForResponse((r) => r.url().endsWith('/v1/feedback'));
    await page.keyboard.press('Enter');
    const feedback = await used;
    assert.equal(feedback.status(), 202);
    assert.deepEqual(JSON.parse(feedback.request().postData()), {
      query_id: body.query_id, entry_id: secondHit.id, helpful: true, source: 'agent',
    });
    await page.locator('#toast.show').filter({ hasText: '已复制' }).waitFor();
    await sleep(200); // the toast's fade-in
    await page.screenshot({ path: `${SHOTS}/console-desktop.png` });
    const clipboard = await page.evaluate(() => navigator.clipboard.readText());
    const expected = await page.evaluate((html) => {
      const d = new DOMParser().parseFromString(html, 'text/html');
      return d.body.textContent;
    }, secondHit.answer_html);
    assert.ok(clipboard.length > 10 && !/[<>]/.test(clipboard), `plain text, no markup: ${clipboard}`);
    const squash = (s) => s.replace(/[\s|\-]|\d+\./g, '');
    assert.equal(squash(clipboard), squash(expected), 'the clipboard holds the selected answer as text');
    assert.ok(searches(requests).every((r) => new URL(r.url()).searchParams.get('source') === 'agent'));
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('shows the internal entry the widget hides, marked internal', async () => {
    const { context, page } = await openConsole(MOBILE);
    const body = await (await type(page, '买家要加微信私下转账')).json();
    assert.equal(body.hits[0].id, INTERNAL.id);
    const first = page.locator('[role=option]').first();
    await first.waitFor();
    assert.equal(await first.getAttribute('data-entry'), INTERNAL.id);
    assert.match(await first.textContent(), /内部/);
    assert.match(await first.textContent(), /红线/);
    assert.ok((await first.textContent()).includes(INTERNAL.phrase), 'the selected answer is shown in full');
    await page.screenshot({ path: `${SHOTS}/console-mobile.png` });
    await context.close();
  });

  test('does not search while an IME is composing', async () => {
    const { context, page, requests } = await openConsole();
    await page.locator('#q').click();
    const cdp = await context.newCDPSession(page);
    for (const text of ['f', 'fa', 'fap', 'fapi', 'fapia', 'fapiao']) {
      await cdp.send('Input.imeSetComposition', { text, selectionStart: text.length, selectionEnd: text.length });
      await sleep(100);
    }
    await sleep(600);
    assert.equal(searches(requests).length, 0);
    const answered = page.waitForResponse(isSearch);
    await cdp.send('Input.insertText', { text: '发票' });
    await answered;
    await sleep(600);
    assert.equal(searches(requests).filter((r) => r.url().includes('q=')).length, 1);
    await context.close();
  });
});
