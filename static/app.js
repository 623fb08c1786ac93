// order-service web page script (served at /assets/app.js, loaded as a module).
// Owns: the lookup form, the address (/?id=<uid>, Back/Forward), the status messages in
// #message and the rendering of one order in #order. Every value taken from an order or a
// response is written with textContent / createElement / setAttribute, never as HTML.

const ID_RULE = /^[A-Za-z0-9_-]{1,64}$/; // same rule as the server's order_uid
const TIMEOUT_MS = 15000;
const LOCALE = undefined; // format numbers and dates in the user's locale
const TITLE = 'Order lookup · order-service';

// ---- Pure helpers (no DOM), so they can be checked in node. ----------------------------
/** True when `id` is 1..=64 characters of A-Z a-z 0-9 _ -. */
const isValidId = (id) => typeof id === 'string' && ID_RULE.test(id);
const isNum = (v) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint';

/** JSON.parse that keeps integers beyond 2^53 exact (as BigInt) where the browser
 *  exposes the source text to revivers; elsewhere it is plain JSON.parse. */
const parseOrder = (text) => JSON.parse(text, (key, value, ctx) =>
  (typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(ctx?.source ?? '')
    ? BigInt(ctx.source) : value));

/** A whole amount in the currency's unit (1817 USD is "$1,817"); never divided by 100. */
function formatMoney(amount, currency, locale = LOCALE) {
  if (!isNum(amount)) return '';
  const whole = { minimumFractionDigits: 0, maximumFractionDigits: 0 };
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency, ...whole }).format(amount);
  } catch { // unknown or malformed currency code: the number, then the code
    return `${new Intl.NumberFormat(locale, whole).format(amount)} ${currency ?? ''}`.trim();
  }
}

/** A sale in percent (30 is "30%"). */
const formatPercent = (value, locale = LOCALE) => (!isNum(value) ? ''
  : new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 2 }).format(Number(value) / 100));
const validDate = (date) => (Number.isNaN(date.getTime()) ? null : date);

/** An RFC 3339 timestamp as a Date, or null. Tolerates lower-case t/z, a space separator
 *  and more than three fractional digits, which some browsers' Date parsers refuse. */
const parseRfc3339 = (value) => (typeof value !== 'string' ? null
  : validDate(new Date(value.trim().toUpperCase().replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1'))));
/** Unix seconds as a Date, or null. */
const fromUnixSeconds = (value) => (isNum(value) ? validDate(new Date(Number(value) * 1000)) : null);
/** A date and time in the user's locale, with the time zone. */
const formatDateTime = (date, locale = LOCALE) =>
  new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeStyle: 'long' }).format(date);

/** Pretty-prints valid JSON text with two-space indents, keeping every token exactly as
 *  sent (so large integers are not rounded as JSON.stringify(JSON.parse(...)) would). */
function prettyJson(text) {
  let out = '', depth = 0, inString = false, escaped = false;
  const newline = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (escaped) escaped = false; else if (c === '\\') escaped = true; else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true; out += c;
    } else if (c === '{' || c === '[') {
      let j = i + 1;
      while (/\s/.test(text[j] ?? '')) j++;
      if (text[j] === (c === '{' ? '}' : ']')) { out += c + text[j]; i = j; } // empty
      else { depth++; out += c + newline(); }
    } else if (c === '}' || c === ']') {
      depth--; out += newline() + c;
    } else if (c === ',') out += ',' + newline();
    else if (c === ':') out += ': ';
    else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/** `parse(text)`, or null when the text does not parse. */
const tryParse = (parse, text) => { try { return parse(text); } catch { return null; } };

/** Which failure an error response is: by its JSON `error` code, else by HTTP status. */
function classify(status, body) {
  const code = body && typeof body.error === 'string' ? body.error : null;
  if (['invalid_id', 'not_found', 'unavailable', 'internal'].includes(code)) return code;
  if (code) return 'unexpected';
  return { 400: 'invalid_id', 404: 'not_found', 503: 'unavailable' }[status]
    ?? (status >= 500 ? 'internal' : 'unexpected');
}

/** The text shown for a failure `kind` while looking up `id`. */
function errorText(kind, id, { status, retryAfter } = {}) {
  const wait = /^\d+$/.test(retryAfter ?? '') ? `in ${retryAfter} seconds` : 'in a moment';
  switch (kind) {
    case 'empty': return 'Enter an order ID.';
    case 'invalid_id': return 'Invalid order ID: use 1 to 64 characters, only A–Z, a–z, 0–9, “_” or “-”.';
    case 'not_found': return `No order found with ID “${id}”.`;
    case 'unavailable':
      return `The order store is unavailable (database unreachable, order not cached). Try again ${wait}.`;
    case 'internal': return 'The server hit an internal error while loading this order. Try again later.';
    case 'network': return 'Could not reach the server. Check your connection and try again.';
    case 'timeout': return `The server did not answer within ${TIMEOUT_MS / 1000} seconds. Try again.`;
    case 'bad_response': return 'The server sent an order this page could not read.';
    default: return `Unexpected response from the server${status ? ` (HTTP ${status})` : ''}.`;
  }
}

// ---- DOM helpers. Strings become text nodes; attribute names are always literals. ------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined)
    .map((c) => (typeof c === 'object' ? c : String(c))));
  return node;
}

/** A value for display: a dash for missing or empty ones. */
const show = (v) => (typeof v === 'object' && v !== null ? v
  : v === undefined || v === null || v === '' ? el('span', { class: 'empty' }, '—') : String(v));
const mono = (v) => (v === undefined || v === null || v === '' ? show(v) : el('span', { class: 'mono' }, v));
/** A <time> in the user's locale, or the raw value when it is not a valid date. */
const timeEl = (date, fallback) => (!date ? show(fallback)
  : el('time', { datetime: date.toISOString(), title: date.toISOString() }, formatDateTime(date)));

/** A <dl> of [label, value] pairs. */
const fields = (cls, pairs) => el('dl', { class: cls }, pairs.map(([label, value, rowClass]) =>
  el('div', { class: rowClass }, el('dt', {}, label), el('dd', {}, show(value)))));
/** A titled card section. */
const card = (id, title, ...body) =>
  el('section', { class: 'card', 'aria-labelledby': id }, el('h3', { id }, title), ...body);

/** The X-Cache header as a badge. */
const CACHE = { hit: 'hit · served from cache', miss: 'miss · loaded from the database' };
function cacheBadge(header) {
  const value = (header ?? '').trim().toLowerCase();
  return el('span', { class: CACHE[value] ? `badge ${value}` : 'badge' },
    CACHE[value] ?? (header ? `unknown (${header})` : 'unknown'));
}

const ITEM_COLUMNS = ['Name', 'Brand', 'Size', 'Price', 'Sale', 'Total price', 'Status', 'nm_id', 'chrt_id'];
function itemsTable(items, currency) {
  const num = (v) => el('td', { class: 'num' }, show(v));
  const rows = items.map((it) => el('tr', {},
    el('th', { scope: 'row' }, show(it.name)), el('td', {}, show(it.brand)), el('td', {}, show(it.size)),
    num(formatMoney(it.price, currency)), num(formatPercent(it.sale)), num(formatMoney(it.total_price, currency)),
    num(it.status), num(mono(it.nm_id)), num(mono(it.chrt_id))));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: ITEM_COLUMNS.length, class: 'empty' }, 'No items.')));
  return el('table', { id: 'items', 'aria-labelledby': 'items-title' },
    el('thead', {}, el('tr', {},
      ITEM_COLUMNS.map((c, i) => el('th', { scope: 'col', class: i >= 3 ? 'num' : null }, c)))),
    el('tbody', {}, rows));
}

/** The "Show raw JSON" toggle, the Copy button and the pretty-printed JSON. */
function rawJsonSection(rawText) {
  const pre = el('pre', { id: 'raw-json', hidden: true, tabindex: 0 }, prettyJson(rawText));
  const toggle = el('button',
    { type: 'button', id: 'toggle-raw', 'aria-expanded': 'false', 'aria-controls': 'raw-json' }, 'Show raw JSON');
  const copy = el('button', { type: 'button', id: 'copy-raw' }, 'Copy');
  const status = el('span', { class: 'copy-status', role: 'status' });
  const showPre = (visible) => {
    pre.hidden = !visible;
    toggle.textContent = visible ? 'Hide raw JSON' : 'Show raw JSON';
    toggle.setAttribute('aria-expanded', String(visible));
  };
  toggle.addEventListener('click', () => showPre(pre.hidden));
  copy.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(pre.textContent);
      status.textContent = 'Copied to the clipboard.';
    } catch { // no Clipboard API (plain HTTP, old browser) or permission refused
      showPre(true);
      window.getSelection()?.selectAllChildren(pre);
      status.textContent = 'Copying is not available here (it needs HTTPS or localhost). '
        + 'The JSON is selected: press Ctrl+C or ⌘C.';
    }
  });
  return el('section', { class: 'raw', 'aria-label': 'Raw JSON' },
    el('div', { class: 'toolbar' }, toggle, copy, status), pre);
}

/** Replaces the content of #order with the order. */
function renderOrder(order, rawText, cacheHeader) {
  const d = order.delivery ?? {}, p = order.payment ?? {}, cur = p.currency;
  const items = Array.isArray(order.items) ? order.items : [];
  const header = el('header', { class: 'card order-head' },
    el('h2', { id: 'order-title' }, 'Order ', el('span', { class: 'mono' }, show(order.order_uid))),
    fields('summary', [
      ['Track number', mono(order.track_number)],
      ['Created', timeEl(parseRfc3339(order.date_created), order.date_created)],
      ['Customer', order.customer_id],
      ['Delivery service', order.delivery_service],
      ['Locale', order.locale],
      ['Cache (X-Cache)', cacheBadge(cacheHeader)],
    ]));
  const delivery = card('delivery-title', 'Delivery', fields('kv', [
    ['Name', d.name], ['Phone', d.phone], ['Email', d.email], ['ZIP', d.zip],
    ['City', d.city], ['Region', d.region], ['Address', d.address],
  ]));
  const payment = card('payment-title', 'Payment', fields('kv', [
    ['Transaction', mono(p.transaction)], ['Request ID', mono(p.request_id)], ['Currency', cur],
    ['Provider', p.provider], ['Bank', p.bank], ['Paid at', timeEl(fromUnixSeconds(p.payment_dt), p.payment_dt)],
  ]), fields('kv amounts', [
    ['Goods total', formatMoney(p.goods_total, cur)], ['Delivery cost', formatMoney(p.delivery_cost, cur)],
    ['Custom fee', formatMoney(p.custom_fee, cur)], ['Amount', formatMoney(p.amount, cur), 'total'],
  ]));
  const itemsSection = el('section', { class: 'card items', 'aria-labelledby': 'items-title' },
    el('h3', { id: 'items-title' }, `Items (${items.length})`),
    el('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'items-title', tabindex: 0 },
      itemsTable(items, cur)));
  orderBox.replaceChildren(el('article', { class: 'order', 'aria-labelledby': 'order-title' },
    header, el('div', { class: 'cards' }, delivery, payment), itemsSection, rawJsonSection(rawText)));
}

// ---- State: the form, the address, the current request. --------------------------------
let input, button, message, orderBox; // elements, set by init()
let inflight = null; // AbortController of the lookup in progress

/** Shows a message (kind: 'loading' | 'error'), or clears it when text is empty. */
function say(kind, text, retryId) {
  message.className = kind ? `msg msg-${kind}` : 'msg';
  if (!text) return message.replaceChildren();
  const retry = retryId && el('button', { type: 'button', class: 'retry' }, 'Try again');
  // Focus moves to the field first: the button is about to be removed.
  retry?.addEventListener('click', () => { input.focus(); open(retryId, false); });
  message.replaceChildren(el('p', {}, text), ...(retry ? [retry] : []));
}

/** Loading state: the button is disabled and the result marked busy. */
function setBusy(busy) {
  if (busy && document.activeElement === button) input.focus(); // keep focus when disabling
  button.disabled = busy;
  orderBox.setAttribute('aria-busy', String(busy));
}

/** Stops the lookup in progress, if any. */
function cancel() {
  inflight?.abort();
  inflight = null;
  setBusy(false);
}

/** Ends a lookup with an error message; offers a retry where one may help. */
function fail(kind, id, info) {
  cancel();
  if (kind === 'invalid_id' || kind === 'empty') input.setAttribute('aria-invalid', 'true');
  const retryable = !['empty', 'invalid_id', 'not_found'].includes(kind);
  say('error', errorText(kind, id, info), retryable ? id : null);
}

/** Fetches order `id` and shows it, or the reason it cannot be shown. */
async function lookup(id) {
  const ctl = (inflight = new AbortController());
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, TIMEOUT_MS);
  setBusy(true);
  say('loading', 'Loading…');
  let res, text;
  try {
    const url = `/api/order/${encodeURIComponent(id)}`;
    res = await fetch(url, { headers: { Accept: 'application/json' }, signal: ctl.signal });
    text = await res.text();
  } catch {
    if (inflight === ctl) fail(timedOut ? 'timeout' : 'network', id);
    return; // otherwise superseded by a newer lookup: stay quiet
  } finally {
    clearTimeout(timer);
  }
  if (inflight !== ctl) return;
  if (!res.ok) { // the body is {"error", "message"}, or not JSON at all (a proxy's error page)
    const info = { status: res.status, retryAfter: res.headers.get('Retry-After') };
    return fail(classify(res.status, tryParse(JSON.parse, text)), id, info);
  }
  const order = tryParse(parseOrder, text);
  if (!order || typeof order !== 'object' || Array.isArray(order)) return fail('bad_response', id);
  cancel();
  say(null);
  renderOrder(order, text, res.headers.get('X-Cache'));
}

/** Stops any lookup; empties the result, the message and the field's error mark. */
function reset() {
  cancel();
  orderBox.replaceChildren();
  say(null);
  input.removeAttribute('aria-invalid');
  document.title = TITLE;
}

/** Opens order `id`: validates it, optionally records it in the address, fetches it. */
function open(id, push) {
  reset();
  if (id === '') return fail('empty', id);
  if (!isValidId(id)) return fail('invalid_id', id);
  // A valid id needs no URL encoding.
  if (push && new URLSearchParams(location.search).get('id') !== id) history.pushState({ id }, '', `/?id=${id}`);
  document.title = `Order ${id} · order-service`;
  lookup(id);
}

/** Shows whatever the address asks for (on load and on Back/Forward). */
function route() {
  const id = new URLSearchParams(location.search).get('id');
  input.value = (id ?? '').trim();
  if (input.value === '') reset();
  else open(input.value, false);
}

function init() {
  input = document.getElementById('order-id');
  button = document.getElementById('get-order');
  message = document.getElementById('message');
  orderBox = document.getElementById('order');
  document.getElementById('lookup').addEventListener('submit', (event) => {
    event.preventDefault(); // Enter in the field lands here too
    input.value = input.value.trim();
    open(input.value, true);
  });
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  window.addEventListener('popstate', route);
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
