/*!
 * kefu 商品问答 widget: <kefu-faq>, a product page's questions and answers.
 *
 * Embed with two lines (no build step, no dependencies):
 *
 *   <script src="https://HOST/widget.js" defer></script>
 *   <kefu-faq product="SKU-1001" platform="tmall" key="pk_..."></kefu-faq>
 *
 * Attributes
 *   product   the product id in the knowledge base (SKU-1001)
 *   platform  taobao | tmall | jd | pdd (optional: platform-specific rules)
 *   key       the shop's public key (sent as ?key= and, on feedback, as a Bearer token)
 *   api       the kefu server (default: where this script was loaded from)
 *   heading   the title shown (default 商品问答)
 *
 * Theming: CSS custom properties, set on kefu-faq or any ancestor.
 *   --kefu-accent           buttons, focus ring, links              #ff5000
 *   --kefu-accent-contrast  text on the accent colour               #ffffff
 *   --kefu-font             font stack                              system UI + PingFang SC / Microsoft YaHei
 *   --kefu-font-size        base font size                          14px
 *   --kefu-radius           corner radius                           10px
 *   --kefu-bg               background                              #ffffff
 *   --kefu-fg               text                                    #1f2329
 *   --kefu-muted            secondary text                          #6b7280
 *   --kefu-border           borders and separators                  #ebedf0
 *   --kefu-mark             background of matched words             #fff0e0
 *
 * Behaviour: lists the product's public FAQ (most asked first); searches as
 * you type (250 ms after the last keystroke, never while an IME is composing:
 * the search waits for compositionend); answers are the server's sanitised
 * HTML, sanitised again here against an allow-list; 有用/没用 are sent as
 * feedback. Only public entries are ever requested (audience=public).
 */
(() => {
  'use strict';

  if (window.customElements === undefined || customElements.get('kefu-faq')) return;

  // Captured now: document.currentScript is only set while this file runs.
  const SCRIPT_SRC = document.currentScript ? document.currentScript.src : '';
  const DEBOUNCE_MS = 250;
  const MAX_QUERY = 2000;
  const TEXT = {
    heading: '商品问答',
    sub: '大家都在问 · 输入问题马上找答案',
    label: '搜索商品问答',
    placeholder: '输入您的问题，如：偏大还是偏小？',
    clear: '清除搜索内容',
    loading: '正在加载常见问题…',
    searching: '正在搜索…',
    faqEmpty: '还没有常见问题，试试直接输入您的问题',
    faqCount: (n) => `共 ${n} 个常见问题`,
    found: (n) => `为您找到 ${n} 个相关回答`,
    unsure: (n) => `找到 ${n} 个可能相关的回答`,
    none: '暂时没有找到答案，已记录您的问题，客服会尽快补充',
    busy: (s) => `提问有点频繁，请 ${s} 秒后再试`,
    offline: '网络开小差了，请稍后再试',
    unavailable: '问答服务暂时不可用，请联系在线客服',
    asked: (n) => `${n} 人问过`,
    helpfulQ: '这个回答有帮助吗？',
    helpful: '有用',
    unhelpful: '没用',
    thanks: '感谢反馈！',
    thanksNo: '感谢反馈，我们会改进这个回答',
    footer: '答案来自店铺知识库，仍有疑问请咨询在线客服',
  };

  const CSS = `
:host {
  --_accent: var(--kefu-accent, #ff5000);
  --_on-accent: var(--kefu-accent-contrast, #ffffff);
  --_font: var(--kefu-font, -apple-system, BlinkMacSystemFont, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "Helvetica Neue", Arial, sans-serif);
  --_radius: var(--kefu-radius, 10px);
  --_bg: var(--kefu-bg, #ffffff);
  --_fg: var(--kefu-fg, #1f2329);
  --_muted: var(--kefu-muted, #6b7280);
  --_border: var(--kefu-border, #ebedf0);
  --_mark: var(--kefu-mark, #fff0e0);
  display: block;
  min-width: 0;
  color: var(--_fg);
  font: var(--kefu-font-size, 14px)/1.6 var(--_font);
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.box { background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--_radius); padding: 16px; }
header { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; margin-bottom: 12px; }
h2 { margin: 0; font-size: 1.15em; font-weight: 600; }
header p { margin: 0; color: var(--_muted); font-size: .9em; }
form { margin: 0; }
.field { position: relative; display: flex; align-items: center; }
.field svg { position: absolute; left: 12px; width: 16px; height: 16px; color: var(--_muted); pointer-events: none; }
input { width: 100%; min-height: 42px; padding: 9px 40px 9px 36px; font: inherit; color: inherit; background: var(--_bg);
  border: 1px solid var(--_border); border-radius: calc(var(--_radius) * 2); outline: none; -webkit-appearance: none; appearance: none; }
input::-webkit-search-cancel-button { display: none; }
input:focus-visible, input:focus { border-color: var(--_accent); box-shadow: 0 0 0 3px color-mix(in srgb, var(--_accent) 22%, transparent); }
.clear { position: absolute; right: 6px; width: 30px; height: 30px; border: 0; border-radius: 50%; background: transparent; color: var(--_muted);
  font-size: 18px; line-height: 1; cursor: pointer; }
.clear[hidden] { display: none; }
.clear:hover { background: color-mix(in srgb, var(--_fg) 6%, transparent); }
.status { margin: 10px 2px 6px; min-height: 1.6em; color: var(--_muted); font-size: .9em; }
.status.none { color: var(--_fg); background: color-mix(in srgb, var(--_accent) 7%, var(--_bg)); border-radius: var(--_radius); padding: 10px 12px; }
ul { list-style: none; margin: 0; padding: 0; }
li + li { border-top: 1px solid var(--_border); }
details > summary { list-style: none; display: flex; gap: 10px; align-items: flex-start; padding: 12px 4px; cursor: pointer; border-radius: 6px; }
details > summary::-webkit-details-marker { display: none; }
summary .q-icon { flex: none; width: 20px; height: 20px; margin-top: 1px; border-radius: 5px; background: var(--_accent); color: var(--_on-accent);
  font-size: 12px; font-weight: 700; line-height: 20px; text-align: center; }
summary .text { flex: 1; min-width: 0; }
summary .q { display: block; font-weight: 500; overflow-wrap: anywhere; }
summary .snip { display: block; margin-top: 2px; color: var(--_muted); font-size: .92em; overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
details[open] summary .snip { display: none; }
summary .meta { flex: none; color: var(--_muted); font-size: .85em; white-space: nowrap; }
summary .chev { flex: none; width: 16px; height: 16px; margin-top: 3px; color: var(--_muted); transition: transform .15s; }
details[open] summary .chev { transform: rotate(180deg); }
summary:hover .q { color: var(--_accent); }
summary:focus-visible, button:focus-visible, a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
mark { background: var(--_mark); color: inherit; padding: 0 1px; border-radius: 2px; font-weight: 600; }
.answer { margin: 0 4px 12px 34px; overflow-wrap: anywhere; }
.answer > :first-child { margin-top: 0; }
.answer p, .answer ul, .answer ol, .answer table, .answer blockquote, .answer pre { margin: 0 0 8px; }
.answer ul, .answer ol { padding-left: 1.4em; }
.answer ul { list-style: disc; }
.answer a { color: var(--_accent); }
.answer table { display: block; max-width: 100%; overflow-x: auto; border-collapse: collapse; font-size: .92em; }
.answer th, .answer td { border: 1px solid var(--_border); padding: 4px 8px; white-space: nowrap; }
.answer th { background: color-mix(in srgb, var(--_fg) 4%, var(--_bg)); font-weight: 600; }
.answer blockquote { border-left: 3px solid var(--_border); padding-left: 10px; color: var(--_muted); }
.answer img { max-width: 100%; height: auto; }
.feedback { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; margin: 0 4px 14px 34px; color: var(--_muted); font-size: .9em; }
.feedback button { min-height: 32px; padding: 4px 14px; font: inherit; color: var(--_fg); background: var(--_bg); border: 1px solid var(--_border);
  border-radius: 999px; cursor: pointer; }
.feedback button:hover { border-color: var(--_accent); color: var(--_accent); }
.feedback button[aria-pressed="true"] { background: var(--_accent); border-color: var(--_accent); color: var(--_on-accent); }
.feedback button:disabled { cursor: default; }
footer { margin-top: 10px; padding-top: 10px; border-top: 1px dashed var(--_border); color: var(--_muted); font-size: .82em; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  .box { padding: 12px; border-radius: 0; border-left: 0; border-right: 0; }
  .answer, .feedback { margin-left: 4px; }
  summary .meta { display: none; }
}
@media (prefers-reduced-motion: reduce) { summary .chev { transition: none; } }
`;

  const ICON_SEARCH = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5"/></svg>';
  const ICON_CHEVRON = '<svg class="chev" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="m6 9 6 6 6-6"/></svg>';

  // The shell holds no data: it is static markup, the only HTML string used.
  const SHELL = `
<section class="box" aria-labelledby="kefu-heading">
  <header><h2 id="kefu-heading"></h2><p></p></header>
  <form role="search" novalidate>
    <label class="vh" for="kefu-q"></label>
    <div class="field">${ICON_SEARCH}<input id="kefu-q" type="search" autocomplete="off" enterkeyhint="search" maxlength="${MAX_QUERY}" aria-controls="kefu-list" aria-describedby="kefu-status"><button type="button" class="clear" hidden>×</button></div>
  </form>
  <p id="kefu-status" class="status" role="status" aria-live="polite"></p>
  <ul id="kefu-list" role="list" aria-labelledby="kefu-heading"></ul>
  <footer></footer>
</section>`;

  // ---- Defensive sanitising (the server already sanitised answer_html) ----

  /** Tags kept, with the attributes each may keep. Others are unwrapped. */
  const ALLOWED = {
    P: [], BR: [], STRONG: [], B: [], EM: [], I: [], U: [], S: [], DEL: [], INS: [], SUP: [], SUB: [], SMALL: [],
    CODE: [], PRE: [], KBD: [], UL: [], OL: ['start'], LI: [], BLOCKQUOTE: [], HR: [], SPAN: [], DIV: [],
    H1: [], H2: [], H3: [], H4: [], H5: [], H6: [], DL: [], DT: [], DD: [],
    TABLE: [], THEAD: [], TBODY: [], TFOOT: [], TR: [], CAPTION: [],
    TH: ['align', 'colspan', 'rowspan'], TD: ['align', 'colspan', 'rowspan'],
    A: ['href', 'title'], IMG: ['src', 'alt', 'title', 'width', 'height'],
  };
  /** Tags dropped with everything inside them. */
  const DROPPED = new Set(['SCRIPT', 'STYLE', 'IFRAME', 'FRAME', 'FRAMESET', 'OBJECT', 'EMBED', 'APPLET', 'TEMPLATE',
    'NOSCRIPT', 'SVG', 'MATH', 'FORM', 'INPUT', 'BUTTON', 'TEXTAREA', 'SELECT', 'OPTION', 'LINK', 'META', 'BASE',
    'TITLE', 'HEAD', 'AUDIO', 'VIDEO', 'SOURCE', 'TRACK', 'CANVAS', 'PORTAL', 'DIALOG']);

  function safeUrl(value, forImage) {
    // Browsers ignore control characters and spaces in schemes ("java\tscript:").
    const compact = value.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
    if (!/^[a-z][a-z0-9+.-]*:/i.test(compact)) return null; // relative and #fragment links point at the shop's page
    let url;
    try { url = new URL(compact); } catch (_) { return null; }
    const allowed = forImage ? ['https:', 'http:'] : ['https:', 'http:', 'mailto:', 'tel:'];
    return allowed.includes(url.protocol) ? url.href : null;
  }

  function copyInto(from, to, doc) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        to.appendChild(doc.createTextNode(node.data));
        continue;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) continue; // comments, processing instructions
      const tag = node.tagName.toUpperCase();
      if (DROPPED.has(tag)) continue;
      const attributes = ALLOWED[tag];
      if (!attributes) { copyInto(node, to, doc); continue; }
      if (tag === 'IMG' && !safeUrl(node.getAttribute('src') || '', true)) continue;
      if (tag === 'A' && !safeUrl(node.getAttribute('href') || '', false)) { copyInto(node, to, doc); continue; }
      const element = doc.createElement(tag.toLowerCase());
      for (const name of attributes) {
        const value = node.getAttribute(name);
        if (value === null) continue;
        if (name === 'href' || name === 'src') element.setAttribute(name, safeUrl(value, name === 'src'));
        else element.setAttribute(name, value);
      }
      if (tag === 'A') { element.target = '_blank'; element.rel = 'noopener noreferrer nofollow'; }
      if (tag === 'IMG') { element.loading = 'lazy'; element.referrerPolicy = 'no-referrer'; }
      copyInto(node, element, doc);
      to.appendChild(element);
    }
  }

  /** Rebuilds `html` from an allow-list into fresh nodes of `doc`. */
  function sanitize(html, doc) {
    // DOMParser documents are inert: nothing in them loads or runs.
    const parsed = new DOMParser().parseFromString(`<!doctype html><body>${html}`, 'text/html');
    const fragment = doc.createDocumentFragment();
    copyInto(parsed.body, fragment, doc);
    return fragment;
  }

  /** Text nodes and <mark>s for `text` with [start, end) code-point ranges. */
  function highlighted(text, ranges, doc) {
    const chars = Array.from(text); // code points, as the server counts them
    const fragment = doc.createDocumentFragment();
    let at = 0;
    const sorted = (Array.isArray(ranges) ? ranges : [])
      .filter((r) => Array.isArray(r) && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] < r[1])
      .sort((a, b) => a[0] - b[0]);
    for (const [start, end] of sorted) {
      const s = Math.max(start, at);
      const e = Math.min(end, chars.length);
      if (s >= e) continue;
      if (s > at) fragment.appendChild(doc.createTextNode(chars.slice(at, s).join('')));
      const mark = doc.createElement('mark');
      mark.textContent = chars.slice(s, e).join('');
      fragment.appendChild(mark);
      at = e;
    }
    if (at < chars.length) fragment.appendChild(doc.createTextNode(chars.slice(at).join('')));
    return fragment;
  }

  function defaultApi() {
    try { return new URL('.', SCRIPT_SRC || location.href).href; } catch (_) { return '/'; }
  }

  let instances = 0;

  class KefuFaq extends HTMLElement {
    static get observedAttributes() { return ['product', 'platform', 'key', 'api', 'heading']; }

    constructor() {
      super();
      this._id = ++instances;
      this._timer = 0;
      this._composing = false;
      this._seq = 0;
      this._labels = 0;
      this._controller = null;
      this._lastQuery = null;
      this._faq = null;
      const root = this.attachShadow({ mode: 'open' });
      if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
        // A constructed sheet is not an inline style: it works under the
        // host page's Content-Security-Policy.
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } else {
        const style = document.createElement('style');
        style.textContent = CSS;
        root.appendChild(style);
      }
      const shell = document.createElement('div');
      shell.innerHTML = SHELL;
      root.appendChild(shell.firstElementChild);
      this._input = root.getElementById('kefu-q');
      this._clear = root.querySelector('.clear');
      this._status = root.getElementById('kefu-status');
      this._list = root.getElementById('kefu-list');
      root.querySelector('header p').textContent = TEXT.sub;
      root.querySelector('label').textContent = TEXT.label;
      root.querySelector('form').setAttribute('aria-label', TEXT.label);
      root.querySelector('footer').textContent = TEXT.footer;
      this._input.placeholder = TEXT.placeholder;
      this._clear.setAttribute('aria-label', TEXT.clear);
      this._bind(root);
    }

    connectedCallback() {
      this._renderHeading();
      this._connected = true;
      this._loadFaq();
    }

    disconnectedCallback() {
      this._connected = false;
      clearTimeout(this._timer);
      if (this._controller) this._controller.abort();
    }

    attributeChangedCallback(name, before, after) {
      if (before === after || !this._connected) return;
      if (name === 'heading') { this._renderHeading(); return; }
      this._faq = null;
      this._lastQuery = null;
      const query = this._input.value.trim();
      if (query) this._search(query); else this._loadFaq();
    }

    get _api() { return (this.getAttribute('api') || defaultApi()).replace(/\/+$/, ''); }
    get _key() { return (this.getAttribute('key') || '').trim(); }
    get _product() { return (this.getAttribute('product') || '').trim(); }
    get _platform() { return (this.getAttribute('platform') || '').trim().toLowerCase(); }

    _renderHeading() {
      this.shadowRoot.getElementById('kefu-heading').textContent = this.getAttribute('heading') || TEXT.heading;
    }

    _bind(root) {
      const input = this._input;
      input.addEventListener('compositionstart', () => {
        this._composing = true;
        clearTimeout(this._timer);
      });
      input.addEventListener('compositionend', () => {
        this._composing = false;
        this._schedule();
      });
      input.addEventListener('input', (event) => {
        this._clear.hidden = input.value === '';
        // While an IME is composing, the text is pinyin, not the question.
        if (event.isComposing || this._composing) return;
        this._schedule();
      });
      input.addEventListener('keydown', (event) => {
        if (event.isComposing || this._composing || event.keyCode === 229) return;
        if (event.key === 'Escape' && input.value) { event.preventDefault(); this._reset(); }
        else if (event.key === 'ArrowDown') { event.preventDefault(); this._focusItem(0); }
      });
      root.querySelector('form').addEventListener('submit', (event) => {
        event.preventDefault();
        if (this._composing) return;
        clearTimeout(this._timer);
        this._lastQuery = null;
        this._run();
      });
      this._clear.addEventListener('click', () => { this._reset(); input.focus(); });
      this._list.addEventListener('keydown', (event) => {
        const summaries = this._summaries();
        const index = summaries.indexOf(root.activeElement);
        if (index < 0) return;
        if (event.key === 'ArrowDown') { event.preventDefault(); this._focusItem(index + 1); }
        else if (event.key === 'ArrowUp') {
          event.preventDefault();
          if (index === 0) input.focus(); else this._focusItem(index - 1);
        } else if (event.key === 'Home') { event.preventDefault(); this._focusItem(0); }
        else if (event.key === 'End') { event.preventDefault(); this._focusItem(summaries.length - 1); }
      });
    }

    _summaries() { return Array.from(this._list.querySelectorAll('summary')); }

    _focusItem(index) {
      const summaries = this._summaries();
      if (summaries.length) summaries[Math.min(index, summaries.length - 1)].focus();
    }

    _reset() {
      this._input.value = '';
      this._clear.hidden = true;
      clearTimeout(this._timer);
      this._run();
    }

    _schedule() {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._run(), DEBOUNCE_MS);
    }

    _run() {
      const query = this._input.value.trim().slice(0, MAX_QUERY);
      if (query === this._lastQuery) return;
      this._lastQuery = query;
      if (query) this._search(query); else this._loadFaq();
    }

    _url(path, params) {
      const url = new URL(this._api + path);
      for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
      if (this._key) url.searchParams.set('key', this._key);
      return url.href;
    }

    /** GETs JSON; resolves to {ok, status, body, retryAfter} or null if superseded. */
    async _get(url) {
      if (this._controller) this._controller.abort();
      const controller = new AbortController();
      this._controller = controller;
      const seq = ++this._seq;
      let response;
      try {
        response = await fetch(url, { signal: controller.signal, headers: { Accept: 'application/json' }, credentials: 'omit' });
      } catch (error) {
        if (seq !== this._seq) return null;
        return { ok: false, status: 0 };
      }
      let body = null;
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      if (seq !== this._seq) return null;
      return { ok: response.ok, status: response.status, body, retryAfter: response.headers.get('Retry-After') };
    }

    /** Forgets any request in flight: its answer is no longer wanted. */
    _cancel() {
      if (this._controller) this._controller.abort();
      this._controller = null;
      this._seq += 1;
    }

    async _loadFaq() {
      this._lastQuery = '';
      if (this._faq) { this._cancel(); this._renderFaq(this._faq); return; }
      const product = this._product;
      if (!product) { this._cancel(); this._renderFaq({ entries: [] }); return; }
      this._setStatus(TEXT.loading);
      const result = await this._get(this._url(`/v1/products/${encodeURIComponent(product)}/faq`, { platform: this._platform }));
      if (!result) return;
      if (!result.ok || !result.body || !Array.isArray(result.body.entries)) {
        // The search box still works without the list.
        this._list.replaceChildren();
        this._setStatus(result.status === 0 ? TEXT.offline : TEXT.faqEmpty);
        return;
      }
      this._faq = result.body;
      this._renderFaq(this._faq);
    }

    _renderFaq(faq) {
      const entries = faq.entries || [];
      this._setStatus(entries.length ? TEXT.faqCount(entries.length) : TEXT.faqEmpty);
      const queryId = typeof faq.query_id === 'string' ? faq.query_id : null;
      this._list.replaceChildren(...entries.map((entry) => this._item(entry, { queryId, asked: entry.asked })));
    }

    async _search(query) {
      this._setStatus(TEXT.searching);
      const result = await this._get(this._url('/v1/search', {
        q: query, product: this._product, platform: this._platform,
        audience: 'public', source: 'widget', limit: '5',
      }));
      if (!result) return;
      if (!result.ok) {
        this._lastQuery = null; // the same text may be tried again
        this._list.replaceChildren();
        if (result.status === 429) {
          const seconds = Math.max(1, parseInt(result.retryAfter, 10) || 3);
          this._setStatus(TEXT.busy(seconds));
        } else if (result.status === 0) this._setStatus(TEXT.offline);
        else this._setStatus(TEXT.unavailable);
        return;
      }
      const body = result.body || {};
      // Defence in depth: the request asked for public entries only.
      const hits = (Array.isArray(body.hits) ? body.hits : []).filter((hit) => !hit.audience || hit.audience === 'public');
      if (body.confidence === 'none' || hits.length === 0) {
        this._list.replaceChildren();
        this._setStatus(TEXT.none, 'none');
        return;
      }
      this._setStatus(body.confidence === 'high' ? TEXT.found(hits.length) : TEXT.unsure(hits.length));
      const queryId = typeof body.query_id === 'string' ? body.query_id : null;
      this._list.replaceChildren(...hits.map((hit, i) => this._item(hit, { queryId, open: i === 0 && body.confidence === 'high' })));
    }

    _setStatus(text, kind) {
      this._status.textContent = text;
      this._status.className = kind ? `status ${kind}` : 'status';
    }

    /** One question: a <details> whose summary is the question. */
    _item(entry, { queryId, asked, open }) {
      const doc = document;
      const li = doc.createElement('li');
      li.dataset.entry = String(entry.id || '');
      const details = doc.createElement('details');
      if (open) details.open = true;
      const summary = doc.createElement('summary');
      const icon = doc.createElement('span');
      icon.className = 'q-icon';
      icon.setAttribute('aria-hidden', 'true');
      icon.textContent = '问';
      const text = doc.createElement('span');
      text.className = 'text';
      const question = doc.createElement('span');
      question.className = 'q';
      question.textContent = String(entry.question || entry.title || '');
      text.appendChild(question);
      if (typeof entry.snippet === 'string' && entry.snippet) {
        const snippet = doc.createElement('span');
        snippet.className = 'snip';
        snippet.appendChild(highlighted(entry.snippet, entry.highlights, doc));
        text.appendChild(snippet);
      }
      summary.append(icon, text);
      if (Number.isInteger(asked) && asked > 0) {
        const meta = doc.createElement('span');
        meta.className = 'meta';
        meta.textContent = TEXT.asked(asked);
        summary.appendChild(meta);
      }
      const chevron = doc.createElement('span');
      chevron.innerHTML = ICON_CHEVRON; // static icon, no data
      summary.appendChild(chevron.firstElementChild);
      details.appendChild(summary);
      const answer = doc.createElement('div');
      answer.className = 'answer';
      answer.appendChild(sanitize(String(entry.answer_html || ''), doc));
      details.appendChild(answer);
      if (queryId && entry.id) details.appendChild(this._feedback(queryId, String(entry.id)));
      li.appendChild(details);
      return li;
    }

    _feedback(queryId, entryId) {
      const doc = document;
      const group = doc.createElement('div');
      group.className = 'feedback';
      group.setAttribute('role', 'group');
      const label = doc.createElement('span');
      label.textContent = TEXT.helpfulQ;
      label.id = `kefu-fb-${this._id}-${++this._labels}`;
      group.setAttribute('aria-labelledby', label.id);
      const yes = doc.createElement('button');
      const no = doc.createElement('button');
      for (const [button, text, helpful] of [[yes, TEXT.helpful, true], [no, TEXT.unhelpful, false]]) {
        button.type = 'button';
        button.textContent = text;
        button.dataset.helpful = String(helpful);
        button.setAttribute('aria-pressed', 'false');
        button.addEventListener('click', async () => {
          yes.disabled = true;
          no.disabled = true;
          button.setAttribute('aria-pressed', 'true');
          const sent = await this._sendFeedback(queryId, entryId, helpful);
          label.textContent = sent ? (helpful ? TEXT.thanks : TEXT.thanksNo) : TEXT.offline;
          if (!sent) { yes.disabled = false; no.disabled = false; button.setAttribute('aria-pressed', 'false'); }
        });
      }
      group.append(label, yes, no);
      return group;
    }

    async _sendFeedback(queryId, entryId, helpful) {
      const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
      if (this._key) headers.Authorization = `Bearer ${this._key}`;
      try {
        const response = await fetch(`${this._api}/v1/feedback`, {
          method: 'POST', headers, credentials: 'omit',
          body: JSON.stringify({ query_id: queryId, entry_id: entryId, helpful, source: 'widget' }),
        });
        return response.ok;
      } catch (_) {
        return false;
      }
    }
  }

  customElements.define('kefu-faq', KefuFaq);
})();
