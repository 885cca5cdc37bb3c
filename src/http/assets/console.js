// kefu agent console (/console): search as you type, filters, one-key copy.
//
// Keys: `/` focuses the search box, ↑/↓ move the selection, Enter copies the
// selected answer as plain text (and records it as used), Esc clears.
// Searches never fire while an IME is composing (they wait for
// compositionend). If the server answers 401, a key prompt asks for the
// agent key, kept in localStorage and sent as `Authorization: Bearer`.
(() => {
  'use strict';

  const DEBOUNCE_MS = 250;
  const KEY_STORE = 'kefu.agentKey';
  const PRODUCTS_STORE = 'kefu.products';
  const PLATFORMS = { taobao: '淘宝', tmall: '天猫', jd: '京东', pdd: '拼多多' };
  const KINDS = { product: '商品', rule: '规则', faq: '常见问题' };
  const CONFIDENCE = { high: '高置信', low: '低置信', none: '无可靠答案' };

  const $ = (id) => document.getElementById(id);
  const form = $('search');
  const input = $('q');
  const platform = $('platform');
  const product = $('product');
  const productList = $('products');
  const status = $('status');
  const results = $('results');
  const toast = $('toast');
  const dialog = $('key-dialog');
  const keyInput = $('key');

  const state = { hits: [], queryId: null, selected: -1, composing: false, timer: 0, pending: false, seq: 0, controller: null, lastRequest: null };

  // ---------- storage ----------
  function stored(name) { try { return localStorage.getItem(name) || ''; } catch (_) { return ''; } }
  function store(name, value) { try { if (value) localStorage.setItem(name, value); else localStorage.removeItem(name); } catch (_) { /* private mode */ } }

  const knownProducts = new Set(stored(PRODUCTS_STORE).split(',').filter(Boolean));
  function rememberProducts(hits) {
    let added = false;
    for (const hit of hits) for (const id of hit.products || []) if (!knownProducts.has(id)) { knownProducts.add(id); added = true; }
    if (!added) return;
    productList.replaceChildren(...[...knownProducts].sort().map((id) => { const o = document.createElement('option'); o.value = id; return o; }));
    store(PRODUCTS_STORE, [...knownProducts].slice(0, 200).join(','));
  }
  productList.replaceChildren(...[...knownProducts].sort().map((id) => { const o = document.createElement('option'); o.value = id; return o; }));

  // ---------- requests ----------
  function authHeaders() {
    const key = stored(KEY_STORE);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async function search(force) {
    const q = input.value.trim();
    const params = new URLSearchParams();
    if (q) params.set('q', q.slice(0, 2000));
    if (platform.value) params.set('platform', platform.value);
    if (product.value.trim()) params.set('product', product.value.trim());
    params.set('source', 'agent');
    params.set('limit', '10');
    const request = params.toString();
    if (!q) {
      if (state.controller) state.controller.abort();
      state.seq += 1; // an answer still on its way is no longer wanted
      state.lastRequest = null;
      render({ empty: true });
      return;
    }
    if (!force && request === state.lastRequest) return;
    state.lastRequest = request;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.seq;
    setStatus('正在搜索…');
    let response;
    let body = null;
    try {
      response = await fetch(`/v1/search?${request}`, { signal: controller.signal, headers: { Accept: 'application/json', ...authHeaders() } });
      body = await response.json().catch(() => null);
    } catch (_) {
      if (seq === state.seq) { state.lastRequest = null; setStatus('网络异常，请检查连接后重试', true); }
      return;
    }
    if (seq !== state.seq) return;
    if (response.status === 401 || response.status === 403) {
      state.lastRequest = null;
      askForKey(response.status === 401 ? '服务器要求客服密钥。' : '这个密钥没有客服权限，请换一个。');
      setStatus('需要客服密钥', true);
      return;
    }
    if (!response.ok) {
      state.lastRequest = null;
      const message = body && body.error && body.error.message ? body.error.message : `HTTP ${response.status}`;
      if (response.status === 429) setStatus(`请求太频繁，${response.headers.get('Retry-After') || '几'} 秒后再试`, true);
      else setStatus(`搜索失败：${message}`, true);
      return;
    }
    state.queryId = body.query_id;
    state.hits = Array.isArray(body.hits) ? body.hits : [];
    rememberProducts(state.hits);
    render({ confidence: body.confidence, took: body.took_ms });
  }

  function schedule() {
    clearTimeout(state.timer);
    state.pending = true;
    state.timer = setTimeout(() => { state.pending = false; search(false); }, DEBOUNCE_MS);
  }

  async function markUsed(hit) {
    if (!state.queryId) return;
    try {
      await fetch('/v1/feedback', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
        body: JSON.stringify({ query_id: state.queryId, entry_id: hit.id, helpful: true, source: 'agent' }),
      });
    } catch (_) { /* copying matters more than the record */ }
  }

  // ---------- plain text of an answer, ready for a chat window ----------
  const BLOCKS = new Set(['P', 'DIV', 'UL', 'OL', 'TABLE', 'BLOCKQUOTE', 'PRE', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'HR', 'DL']);
  function plainText(html) {
    const doc = new DOMParser().parseFromString(`<!doctype html><body>${html}`, 'text/html');
    const out = [];
    const walk = (node, listPrefix) => {
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) { out.push(child.data.replace(/\s*\n\s*/g, ' ')); continue; }
        if (child.nodeType !== Node.ELEMENT_NODE) continue;
        const tag = child.tagName;
        if (tag === 'SCRIPT' || tag === 'STYLE') continue;
        if (tag === 'BR') { out.push('\n'); continue; }
        if (tag === 'LI') {
          const parent = child.parentElement;
          const n = parent && parent.tagName === 'OL' ? `${[...parent.children].indexOf(child) + (parseInt(parent.getAttribute('start'), 10) || 1)}. ` : '- ';
          out.push(`\n${listPrefix}${n}`);
          walk(child, `${listPrefix}  `);
          continue;
        }
        if (tag === 'TR') {
          out.push('\n');
          out.push([...child.children].map((cell) => cell.textContent.trim()).join(' | '));
          continue;
        }
        if (BLOCKS.has(tag)) { out.push('\n'); walk(child, listPrefix); out.push('\n'); continue; }
        walk(child, listPrefix);
      }
    };
    walk(doc.body, '');
    return out.join('').replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
  }

  function answerText(hit) {
    if (hit.answer_html) return plainText(hit.answer_html);
    return String(hit.answer_markdown || '').replace(/[*_`>#]/g, '').trim();
  }

  /** A red line: an entry that says what agents must never do. Hits carry no
   * tags, so this reads the id (`…-redline-…`) and the answer (「红线」). */
  function isRedLine(hit) {
    return /redline|red-line/i.test(hit.id || '') || /红线/.test(`${hit.question || ''}${hit.answer_markdown || ''}`) ||
      (hit.audience === 'internal' && /禁止|不得/.test(hit.answer_markdown || ''));
  }

  // ---------- rendering ----------
  function badge(text, cls) {
    const b = document.createElement('span');
    b.className = `badge ${cls}`;
    b.textContent = text;
    return b;
  }

  function highlighted(text, ranges) {
    const chars = Array.from(text);
    const frag = document.createDocumentFragment();
    let at = 0;
    for (const [start, end] of (ranges || []).slice().sort((a, b) => a[0] - b[0])) {
      const s = Math.max(start, at);
      const e = Math.min(end, chars.length);
      if (s >= e) continue;
      if (s > at) frag.append(chars.slice(at, s).join(''));
      const mark = document.createElement('mark');
      mark.textContent = chars.slice(s, e).join('');
      frag.append(mark);
      at = e;
    }
    if (at < chars.length) frag.append(chars.slice(at).join(''));
    return frag;
  }

  function setStatus(text, error) {
    status.replaceChildren(text);
    status.classList.toggle('error', Boolean(error));
  }

  function render({ empty, confidence, took }) {
    state.selected = -1;
    results.replaceChildren();
    input.removeAttribute('aria-activedescendant');
    if (empty) {
      state.hits = [];
      input.setAttribute('aria-expanded', 'false');
      setStatus('输入买家的问题开始搜索');
      return;
    }
    const conf = badge(CONFIDENCE[confidence] || confidence, `conf-${confidence}`);
    conf.id = 'confidence';
    conf.dataset.confidence = confidence;
    const line = document.createElement('span');
    line.textContent = ` ${state.hits.length} 条结果 · ${took} ms`;
    status.replaceChildren(conf, line);
    status.classList.remove('error');
    input.setAttribute('aria-expanded', String(state.hits.length > 0));
    if (!state.hits.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      const strong = document.createElement('strong');
      strong.textContent = '知识库里没有找到答案';
      li.append(strong, '已记入缺口报告，文案同学会补充；可以换个说法再搜。');
      results.append(li);
      return;
    }
    state.hits.forEach((hit, i) => results.append(option(hit, i)));
    select(0, false);
  }

  function option(hit, i) {
    const li = document.createElement('li');
    li.id = `hit-${i}`;
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', 'false');
    li.dataset.entry = hit.id;
    const internal = hit.audience === 'internal';
    const red = isRedLine(hit);
    if (internal) li.classList.add('internal');
    if (red) li.classList.add('redline');

    const head = document.createElement('div');
    head.className = 'head';
    const title = document.createElement('div');
    title.className = 'title';
    const q = document.createElement('div');
    q.className = 'q';
    q.textContent = hit.question;
    title.append(q);
    if (hit.matched && hit.matched !== hit.question) {
      const m = document.createElement('div');
      m.className = 'matched';
      m.textContent = `匹配：${hit.matched}`;
      title.append(m);
    }
    const badges = document.createElement('div');
    badges.className = 'badges';
    if (red) badges.append(badge('红线', 'b-red'));
    if (internal) badges.append(badge('内部 · 勿发买家', 'b-internal'));
    badges.append(badge(KINDS[hit.kind] || hit.kind, 'b-kind'));
    for (const p of hit.platforms || []) badges.append(badge(PLATFORMS[p] || p, 'b-meta'));
    for (const p of hit.products || []) badges.append(badge(p, 'b-meta'));
    title.append(badges);
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'copy';
    copy.tabIndex = -1;
    copy.textContent = '复制';
    copy.setAttribute('aria-label', `复制回答：${hit.question}`);
    copy.addEventListener('click', (event) => { event.stopPropagation(); select(i, false); copySelected(); });
    head.append(title, copy);

    const snip = document.createElement('div');
    snip.className = 'snip';
    snip.append(highlighted(hit.snippet || '', hit.highlights));
    const answer = document.createElement('div');
    answer.className = 'answer';
    answer.textContent = answerText(hit);
    const source = document.createElement('div');
    source.className = 'source';
    source.textContent = hit.source ? `${hit.source.path}:${hit.source.line} · ${hit.id}` : hit.id;
    li.append(head, snip, answer, source);
    li.addEventListener('click', () => select(i, false));
    li.addEventListener('dblclick', () => { select(i, false); copySelected(); });
    return li;
  }

  function select(i, scroll) {
    if (!state.hits.length) return;
    const next = Math.max(0, Math.min(i, state.hits.length - 1));
    const previous = $(`hit-${state.selected}`);
    if (previous) previous.setAttribute('aria-selected', 'false');
    state.selected = next;
    const li = $(`hit-${next}`);
    li.setAttribute('aria-selected', 'true');
    li.querySelector('.snip').hidden = true;
    if (previous && previous !== li) previous.querySelector('.snip').hidden = false;
    input.setAttribute('aria-activedescendant', li.id);
    if (scroll) li.scrollIntoView({ block: 'nearest' });
  }

  // ---------- copy ----------
  async function writeClipboard(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
    } catch (_) { /* fall back below */ }
    // Plain-HTTP deployments have no async clipboard.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'vh';
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    area.remove();
    input.focus();
    return ok;
  }

  let toastTimer = 0;
  function showToast(text) {
    toast.textContent = text;
    toast.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.classList.remove('show'), 1600);
  }

  async function copySelected() {
    const hit = state.hits[state.selected];
    if (!hit) return;
    const ok = await writeClipboard(answerText(hit));
    if (!ok) { showToast('复制失败，请手动选择文字复制'); return; }
    const button = $(`hit-${state.selected}`).querySelector('.copy');
    button.textContent = '已复制';
    button.classList.add('done');
    setTimeout(() => { button.textContent = '复制'; button.classList.remove('done'); }, 1600);
    showToast(hit.audience === 'internal' ? '已复制（内部内容，请勿原样发给买家）' : '已复制');
    markUsed(hit);
  }

  // ---------- key prompt ----------
  function askForKey(reason) {
    if (dialog.open) return;
    $('key-reason').textContent = `${reason}密钥只保存在本浏览器（localStorage）。`;
    keyInput.value = stored(KEY_STORE);
    dialog.showModal();
    keyInput.focus();
  }
  dialog.querySelector('form').addEventListener('submit', (event) => {
    event.preventDefault();
    const save = event.submitter && event.submitter.value === 'save';
    dialog.close();
    if (save) { store(KEY_STORE, keyInput.value.trim()); search(true); }
    input.focus();
  });
  $('key-button').addEventListener('click', () => askForKey(stored(KEY_STORE) ? '更换客服密钥。' : '设置客服密钥。'));

  // ---------- events ----------
  form.addEventListener('submit', (event) => event.preventDefault());
  input.addEventListener('compositionstart', () => { state.composing = true; state.pending = false; clearTimeout(state.timer); });
  input.addEventListener('compositionend', () => { state.composing = false; schedule(); });
  input.addEventListener('input', (event) => { if (!event.isComposing && !state.composing) schedule(); });
  platform.addEventListener('change', () => { clearTimeout(state.timer); search(false); });
  product.addEventListener('input', () => schedule());

  document.addEventListener('keydown', (event) => {
    if (event.isComposing || state.composing || event.keyCode === 229 || dialog.open) return;
    const typing = event.target instanceof HTMLElement && event.target.matches('input, select, textarea');
    if (event.key === '/' && !typing) { event.preventDefault(); input.focus(); input.select(); return; }
    if (event.target === platform) return; // arrows choose the platform there
    if (event.key === 'ArrowDown' && state.hits.length) { event.preventDefault(); select(state.selected + 1, true); }
    else if (event.key === 'ArrowUp' && state.hits.length) { event.preventDefault(); select(state.selected - 1, true); }
    else if (event.key === 'Enter' && state.pending && event.target !== platform) {
      // Typed faster than the debounce: search now, copy on the next Enter.
      event.preventDefault();
      clearTimeout(state.timer);
      state.pending = false;
      search(false);
    } else if (event.key === 'Enter' && state.selected >= 0 && (event.target === input || !typing)) {
      event.preventDefault();
      copySelected();
    } else if (event.key === 'Escape' && event.target === input && input.value) {
      event.preventDefault();
      input.value = '';
      search(false);
    }
  });

  input.focus();
})();
