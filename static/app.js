// order-service web page script (served at /assets/app.js, loaded as a module).
// Owns: the lookup form, the address (/?id=<uid>, Back/Forward), the status messages in
// #message, the rendering of one order in #order, the recent-orders list (GET /api/orders,
// live from the SSE stream GET /api/orders/stream), the rejected panel (GET /api/rejected),
// the operator sign-in those three need (the token kept in the operator_token cookie, which
// the browser sends with every request of the page, the event stream's included; a link
// may carry it as #token=..., which is taken and removed from the address at once) and the
// English / Russian texts (choice kept in localStorage). Every value taken from an
// order or a response is written with textContent / createElement / setAttribute, never as
// HTML, so a value such as <img src=x onerror=...> shows as text and runs nothing.

const ID_RULE = /^[A-Za-z0-9_-]{1,64}$/; // same rule as the server's order_uid
const TIMEOUT_MS = 15000;
const TOKEN_RULE = /^[A-Za-z0-9._~+\/=-]{16,256}$/; // same rule as the server's OPERATOR_TOKEN
const TOKEN_COOKIE = 'operator_token';

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
function formatMoney(amount, currency, loc = locale()) {
  if (!isNum(amount)) return '';
  const whole = { minimumFractionDigits: 0, maximumFractionDigits: 0 };
  try {
    return new Intl.NumberFormat(loc, { style: 'currency', currency, ...whole }).format(amount);
  } catch { // unknown or malformed currency code: the number, then the code
    return `${new Intl.NumberFormat(loc, whole).format(amount)} ${currency ?? ''}`.trim();
  }
}

/** A sale in percent (30 is "30%"). */
const formatPercent = (value, loc = locale()) => (!isNum(value) ? ''
  : new Intl.NumberFormat(loc, { style: 'percent', maximumFractionDigits: 2 }).format(Number(value) / 100));
const validDate = (date) => (Number.isNaN(date.getTime()) ? null : date);

/** An RFC 3339 timestamp as a Date, or null. Tolerates lower-case t/z, a space separator
 *  and more than three fractional digits, which some browsers' Date parsers refuse. */
const parseRfc3339 = (value) => (typeof value !== 'string' ? null
  : validDate(new Date(value.trim().toUpperCase().replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1'))));
/** Unix seconds as a Date, or null. */
const fromUnixSeconds = (value) => (isNum(value) ? validDate(new Date(Number(value) * 1000)) : null);
/** A date and time in the user's locale, with the time zone. */
const formatDateTime = (date, style = { dateStyle: 'long', timeStyle: 'long' }) =>
  new Intl.DateTimeFormat(locale(), style).format(date);
/** A short date and time for lists: the time alone when it is today. */
function formatTime(date) {
  const today = new Date().toDateString() === date.toDateString();
  return new Intl.DateTimeFormat(locale(), today ? { timeStyle: 'medium' } : { dateStyle: 'short', timeStyle: 'short' })
    .format(date);
}

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


// ---- Texts. Every string the page shows, in English and Russian. -------------------------
const TEXTS = {
  en: {
    title: 'Orders', tagline: 'Received from Kafka, stored by order-service.',
    skip: 'Skip to the search', idLabel: 'Order ID', get: 'Get order', placeholder: 'e.g. b563feb7b2b84b6test',
    hint: '1 to 64 characters: letters A–Z or a–z, digits, “_” or “-”.',
    recent: 'Recent orders', rejected: 'Rejected messages', refresh: 'Refresh',
    docTitle: 'Orders · order-service', docOrder: (id) => `Order ${id} · order-service`,
    live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Live updates off',
    welcomeTitle: 'Find an order',
    welcome: 'Type an order ID and press Enter, or pick one from the recent orders. The address keeps the ID, so a link opens the same order and Back works.',
    loading: 'Loading…', tryAgain: 'Try again',
    empty: 'Enter an order ID.',
    invalid_id: 'Invalid order ID: use 1 to 64 characters, only A–Z, a–z, 0–9, “_” or “-”.',
    not_found: (id) => `No order found with ID “${id}”.`,
    unavailable: (wait) => `The order store is unavailable (database unreachable, order not cached). Try again ${wait}.`,
    inSeconds: (n) => `in ${n} seconds`, inAMoment: 'in a moment',
    internal: 'The server hit an internal error. Try again later.',
    network: 'Could not reach the server. Check your connection and try again.',
    timeout: (s) => `The server did not answer within ${s} seconds. Try again.`,
    bad_response: 'The server sent an answer this page could not read.',
    unexpected: (status) => `Unexpected response from the server${status ? ` (HTTP ${status})` : ''}.`,
    order: 'Order', track: 'Track number', created: 'Created', customer: 'Customer',
    service: 'Delivery service', locale: 'Locale', cache: 'Cache',
    cacheHit: 'hit · from memory', cacheMiss: 'miss · from the database', cacheUnknown: 'unknown',
    delivery: 'Delivery', name: 'Name', phone: 'Phone', email: 'Email', zip: 'ZIP', city: 'City',
    region: 'Region', address: 'Address',
    payment: 'Payment', transaction: 'Transaction', requestId: 'Request ID', currency: 'Currency',
    provider: 'Provider', bank: 'Bank', paidAt: 'Paid at',
    goodsTotal: 'Goods total', deliveryCost: 'Delivery cost', customFee: 'Custom fee', amount: 'Amount',
    items: (n) => `Items (${n})`, noItems: 'No items.',
    cols: ['Name', 'Brand', 'Size', 'Price', 'Sale', 'Total', 'Status'],
    showRaw: 'Show raw JSON', hideRaw: 'Hide raw JSON', copy: 'Copy JSON',
    copied: 'Copied to the clipboard.',
    noClipboard: 'Copying is not available here (it needs HTTPS or localhost). The JSON is selected: press Ctrl+C or ⌘C.',
    itemCount: (n) => (n === 1 ? '1 item' : `${n} items`),
    recentEmpty: 'No orders yet. Produce some with make send; they appear here as they arrive.',
    rejectedEmpty: 'No rejected messages: everything that arrived was a valid order.',
    listFailed: (why) => `Could not load the list: ${why}`,
    listUnavailable: 'the service is unavailable.',
    partition: 'partition', offset: 'offset', bytes: (n) => `${n} bytes`, tombstone: 'empty message (tombstone)',
    truncated: '(cut)', payload: 'Payload preview', opened: 'open',
    signinTitle: 'Operator sign-in',
    signinWhy: 'The lists show customers’ personal data: they need the operator token (OPERATOR_TOKEN of the service).',
    tokenLabel: 'Operator token', signIn: 'Sign in', signOut: 'Sign out',
    tokenInvalid: 'A token is 16 to 256 characters: letters, digits and - . _ ~ + / =.',
    tokenRefused: 'The service refused this token.',
    listLocked: 'Sign in as the operator to see this list.',
    unauthorized: 'This service shows orders only to the operator: sign in with the operator token.',
  },
  ru: {
    title: 'Заказы', tagline: 'Получены из Kafka, сохранены order-service.',
    skip: 'Перейти к поиску', idLabel: 'ID заказа', get: 'Найти заказ', placeholder: 'например, b563feb7b2b84b6test',
    hint: 'От 1 до 64 символов: буквы A–Z или a–z, цифры, «_» или «-».',
    recent: 'Последние заказы', rejected: 'Отклонённые сообщения', refresh: 'Обновить',
    docTitle: 'Заказы · order-service', docOrder: (id) => `Заказ ${id} · order-service`,
    live: 'В эфире', connecting: 'Подключение…', reconnecting: 'Переподключение…', offline: 'Обновления выключены',
    welcomeTitle: 'Найдите заказ',
    welcome: 'Введите ID заказа и нажмите Enter или выберите заказ из последних. ID сохраняется в адресе: ссылка откроет тот же заказ, кнопка «Назад» работает.',
    loading: 'Загрузка…', tryAgain: 'Повторить',
    empty: 'Введите ID заказа.',
    invalid_id: 'Неверный ID заказа: от 1 до 64 символов, только A–Z, a–z, 0–9, «_» или «-».',
    not_found: (id) => `Заказ с ID «${id}» не найден.`,
    unavailable: (wait) => `Хранилище заказов недоступно (база данных не отвечает, заказа нет в кэше). Повторите ${wait}.`,
    inSeconds: (n) => `через ${n} с`, inAMoment: 'чуть позже',
    internal: 'Внутренняя ошибка сервера. Повторите позже.',
    network: 'Сервер недоступен. Проверьте подключение и повторите.',
    timeout: (s) => `Сервер не ответил за ${s} секунд. Повторите.`,
    bad_response: 'Сервер прислал ответ, который страница не смогла прочитать.',
    unexpected: (status) => `Неожиданный ответ сервера${status ? ` (HTTP ${status})` : ''}.`,
    order: 'Заказ', track: 'Трек-номер', created: 'Создан', customer: 'Покупатель',
    service: 'Служба доставки', locale: 'Язык', cache: 'Кэш',
    cacheHit: 'попадание · из памяти', cacheMiss: 'промах · из базы данных', cacheUnknown: 'неизвестно',
    delivery: 'Доставка', name: 'Имя', phone: 'Телефон', email: 'Эл. почта', zip: 'Индекс', city: 'Город',
    region: 'Регион', address: 'Адрес',
    payment: 'Оплата', transaction: 'Транзакция', requestId: 'ID запроса', currency: 'Валюта',
    provider: 'Провайдер', bank: 'Банк', paidAt: 'Оплачен',
    goodsTotal: 'Товары', deliveryCost: 'Доставка', customFee: 'Пошлина', amount: 'Итого',
    items: (n) => `Товары (${n})`, noItems: 'Нет товаров.',
    cols: ['Название', 'Бренд', 'Размер', 'Цена', 'Скидка', 'Сумма', 'Статус'],
    showRaw: 'Показать JSON', hideRaw: 'Скрыть JSON', copy: 'Копировать JSON',
    copied: 'Скопировано в буфер обмена.',
    noClipboard: 'Копирование здесь недоступно (нужен HTTPS или localhost). JSON выделен: нажмите Ctrl+C или ⌘C.',
    itemCount: (n) => {
      const m10 = n % 10, m100 = n % 100;
      const word = m10 === 1 && m100 !== 11 ? 'товар'
        : m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14) ? 'товара' : 'товаров';
      return `${n} ${word}`;
    },
    recentEmpty: 'Заказов пока нет. Отправьте несколько командой make send — они появятся здесь сразу.',
    rejectedEmpty: 'Отклонённых сообщений нет: всё, что пришло, — корректные заказы.',
    listFailed: (why) => `Не удалось загрузить список: ${why}`,
    listUnavailable: 'сервис недоступен.',
    partition: 'партиция', offset: 'смещение', bytes: (n) => `${n} байт`, tombstone: 'пустое сообщение (tombstone)',
    truncated: '(обрезано)', payload: 'Начало сообщения', opened: 'открыт',
    signinTitle: 'Вход оператора',
    signinWhy: 'В списках персональные данные покупателей: нужен токен оператора (OPERATOR_TOKEN сервиса).',
    tokenLabel: 'Токен оператора', signIn: 'Войти', signOut: 'Выйти',
    tokenInvalid: 'Токен — от 16 до 256 символов: буквы, цифры и - . _ ~ + / =.',
    tokenRefused: 'Сервис не принял этот токен.',
    listLocked: 'Войдите как оператор, чтобы увидеть этот список.',
    unauthorized: 'Сервис показывает заказы только оператору: войдите с токеном оператора.',
  },
};
const LANGS = Object.keys(TEXTS);
const LANG_KEY = 'order-service.lang';
let lang = 'en';
/** The text `key` in the current language; functions are called with `args`. */
function t(key, ...args) {
  const value = TEXTS[lang][key] ?? TEXTS.en[key];
  return typeof value === 'function' ? value(...args) : value;
}
/** The locale numbers and dates are formatted in: the page's language. */
const locale = () => (lang === 'ru' ? 'ru-RU' : 'en-US');
/** The language kept from last time, else the browser's if it is Russian, else English. */
function initialLang() {
  let saved = null;
  try { saved = localStorage.getItem(LANG_KEY); } catch { /* storage blocked */ }
  if (LANGS.includes(saved)) return saved;
  return (navigator.language ?? '').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

/** Which failure an error response is: by its JSON `error` code, else by HTTP status. */
function classify(status, body) {
  const code = body && typeof body.error === 'string' ? body.error : null;
  if (['invalid_id', 'not_found', 'unavailable', 'internal', 'unauthorized'].includes(code)) return code;
  if (code === 'timeout' || code === 'overloaded') return 'unavailable';
  if (code) return 'unexpected';
  return { 400: 'invalid_id', 401: 'unauthorized', 404: 'not_found', 503: 'unavailable' }[status]
    ?? (status >= 500 ? 'internal' : 'unexpected');
}

/** The text shown for a failure `kind` while looking up `id`. */
function errorText(kind, id, { status, retryAfter } = {}) {
  switch (kind) {
    case 'not_found': return t('not_found', id);
    case 'unavailable':
      return t('unavailable', /^\d+$/.test(retryAfter ?? '') ? t('inSeconds', retryAfter) : t('inAMoment'));
    case 'timeout': return t('timeout', TIMEOUT_MS / 1000);
    case 'unexpected': return t('unexpected', status);
    case 'empty': case 'invalid_id': case 'internal': case 'network': case 'bad_response': case 'unauthorized':
      return t(kind);
    default: return t('unexpected', status);
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
/** A <time> in the page's language, or the raw value when it is not a valid date. */
const timeEl = (date, fallback, style) => (!date ? show(fallback)
  : el('time', { datetime: date.toISOString(), title: date.toISOString() }, formatDateTime(date, style)));

/** A <dl> of [label, value] pairs. */
const fields = (cls, pairs) => el('dl', { class: cls }, pairs.map(([label, value, rowClass]) =>
  el('div', { class: rowClass }, el('dt', {}, label), el('dd', {}, show(value)))));
/** A titled card section. */
const card = (id, title, ...body) =>
  el('section', { class: 'card', 'aria-labelledby': id }, el('h3', { id }, title), ...body);

/** The X-Cache header as a badge. */
function cacheBadge(header) {
  const value = (header ?? '').trim().toLowerCase();
  const text = { hit: t('cacheHit'), miss: t('cacheMiss') }[value];
  return el('span', { class: text ? `badge ${value}` : 'badge' }, text ?? t('cacheUnknown'));
}

function itemsTable(items, currency) {
  const cols = t('cols');
  const num = (v) => el('td', { class: 'num' }, show(v));
  const rows = items.map((it) => el('tr', {},
    el('th', { scope: 'row' }, show(it.name)), el('td', {}, show(it.brand)), el('td', {}, show(it.size)),
    num(formatMoney(it.price, currency)), num(it.sale ? formatPercent(it.sale) : show('')),
    num(formatMoney(it.total_price, currency)), num(mono(it.status))));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: cols.length, class: 'empty' }, t('noItems'))));
  return el('table', { id: 'items' },
    el('thead', {}, el('tr', {}, cols.map((c, i) => el('th', { scope: 'col', class: i >= 3 ? 'num' : null }, c)))),
    el('tbody', {}, rows));
}

/** The raw JSON toggle, the Copy button and the pretty-printed JSON. */
function rawJsonSection(rawText, open) {
  const pre = el('pre', { id: 'raw-json', hidden: !open, tabindex: 0 }, prettyJson(rawText));
  const toggle = el('button',
    { type: 'button', id: 'toggle-raw', 'aria-expanded': String(open), 'aria-controls': 'raw-json' },
    open ? t('hideRaw') : t('showRaw'));
  const copy = el('button', { type: 'button', id: 'copy-raw' }, t('copy'));
  const status = el('span', { class: 'copy-status', role: 'status' });
  const showPre = (visible) => {
    pre.hidden = !visible;
    rawOpen = visible;
    toggle.textContent = visible ? t('hideRaw') : t('showRaw');
    toggle.setAttribute('aria-expanded', String(visible));
  };
  toggle.addEventListener('click', () => showPre(pre.hidden));
  copy.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(pre.textContent);
      status.textContent = t('copied');
    } catch { // no Clipboard API (plain HTTP, old browser) or permission refused
      showPre(true);
      window.getSelection()?.selectAllChildren(pre);
      status.textContent = t('noClipboard');
    }
  });
  return el('section', { class: 'raw', 'aria-label': 'JSON' },
    el('div', { class: 'toolbar' }, toggle, copy, status), pre);
}

/** Replaces the content of #order with the order. */
function renderOrder({ order, text, cache }) {
  const d = order.delivery ?? {}, p = order.payment ?? {}, cur = p.currency;
  const items = Array.isArray(order.items) ? order.items : [];
  const header = el('header', { class: 'card order-head' },
    el('div', { class: 'order-title' },
      el('h2', { id: 'order-title' }, el('span', { class: 'eyebrow' }, t('order')), ' ',
        el('span', { class: 'mono', id: 'order-uid' }, show(order.order_uid))),
      el('p', { class: 'big-amount', id: 'order-amount' }, formatMoney(p.amount, cur))),
    fields('summary', [
      [t('track'), mono(order.track_number)],
      [t('created'), timeEl(parseRfc3339(order.date_created), order.date_created)],
      [t('customer'), order.customer_id],
      [t('service'), order.delivery_service],
      [t('locale'), order.locale],
      [t('cache'), cacheBadge(cache)],
    ]));
  const delivery = card('delivery-title', t('delivery'), fields('kv', [
    [t('name'), d.name], [t('phone'), d.phone], [t('email'), d.email], [t('zip'), d.zip],
    [t('city'), d.city], [t('region'), d.region], [t('address'), d.address],
  ]));
  const payment = card('payment-title', t('payment'), fields('kv', [
    [t('transaction'), mono(p.transaction)], [t('requestId'), mono(p.request_id)], [t('currency'), cur],
    [t('provider'), p.provider], [t('bank'), p.bank],
    [t('paidAt'), timeEl(fromUnixSeconds(p.payment_dt), p.payment_dt)],
  ]), fields('kv amounts', [
    [t('goodsTotal'), formatMoney(p.goods_total, cur)], [t('deliveryCost'), formatMoney(p.delivery_cost, cur)],
    [t('customFee'), formatMoney(p.custom_fee, cur)], [t('amount'), formatMoney(p.amount, cur), 'total'],
  ]));
  const itemsSection = el('section', { class: 'card items', 'aria-labelledby': 'items-title' },
    el('h3', { id: 'items-title' }, t('items', items.length)),
    el('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'items-title', tabindex: 0 },
      itemsTable(items, cur)));
  orderBox.replaceChildren(el('article', { class: 'order', 'aria-labelledby': 'order-title' },
    header, el('div', { class: 'cards' }, delivery, payment), itemsSection, rawJsonSection(text, rawOpen)));
}

/** The text shown before any lookup. */
function renderWelcome() {
  orderBox.replaceChildren(el('section', { class: 'welcome card', id: 'welcome' },
    el('h2', {}, t('welcomeTitle')), el('p', {}, t('welcome'))));
}

// ---- State: the form, the address, the current request. --------------------------------
let input, button, message, orderBox; // elements, set by init()
let inflight = null; // AbortController of the lookup in progress
let shown = null; // { order, text, cache } of the order on screen, re-rendered on a language change
let said = null; // [kind, textFn, retryId] of the message on screen, likewise
let rawOpen = false; // whether the raw JSON is unfolded (kept across orders and languages)

/** Shows a message (kind: 'loading' | 'error'), or clears it when `text` is null. `text` is
 *  a function so the message can be re-rendered in another language. */
function say(kind, text, retryId) {
  said = text ? [kind, text, retryId] : null;
  message.className = kind ? `msg msg-${kind}` : 'msg';
  if (!text) return message.replaceChildren();
  const retry = retryId && el('button', { type: 'button', class: 'retry' }, t('tryAgain'));
  // Focus moves to the field first: the button is about to be removed.
  retry?.addEventListener('click', () => { input.focus(); open(retryId, false); });
  message.replaceChildren(el('p', {}, text()), ...(retry ? [retry] : []));
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
  say('error', () => errorText(kind, id, info), retryable ? id : null);
  message.dataset.kind = kind;
}

/** Fetches order `id` and shows it, or the reason it cannot be shown. */
async function lookup(id) {
  const ctl = (inflight = new AbortController());
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, TIMEOUT_MS);
  setBusy(true);
  say('loading', () => t('loading'));
  let res, text;
  try {
    res = await fetch(`/api/order/${encodeURIComponent(id)}`, { headers: { Accept: 'application/json' }, signal: ctl.signal });
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
  shown = { order, text, cache: res.headers.get('X-Cache') };
  renderOrder(shown);
  markCurrent();
}

/** Stops any lookup; empties the result, the message and the field's error mark. */
function reset() {
  cancel();
  shown = null;
  orderBox.replaceChildren();
  say(null);
  delete message.dataset.kind;
  input.removeAttribute('aria-invalid');
  document.title = t('docTitle');
}

/** The id the address asks for: `?id=...`, else `#...`. */
function addressId() {
  const query = new URLSearchParams(location.search).get('id');
  if (query !== null) return query.trim();
  const hash = location.hash.slice(1);
  if (!hash || document.getElementById(hash)) return ''; // an in-page link such as the skip link
  try { return decodeURIComponent(hash).trim(); } catch { return hash.trim(); }
}

/** Opens order `id`: validates it, optionally records it in the address, fetches it. */
function open(id, push) {
  reset();
  if (push && addressId() !== id) history.pushState({ id }, '', `/?id=${encodeURIComponent(id)}`);
  routed = location.href;
  markCurrent(id);
  if (id === '') { renderWelcome(); return fail('empty', id); }
  if (!isValidId(id)) { renderWelcome(); return fail('invalid_id', id); }
  document.title = t('docOrder', id);
  lookup(id);
}

/** Shows whatever the address asks for (on load and on Back/Forward). A hash change fires
 *  both popstate and hashchange: the second is skipped. */
let routed = null; // the address last shown
function route() {
  if (location.href === routed) return;
  routed = location.href;
  input.value = addressId();
  if (input.value === '') { reset(); renderWelcome(); markCurrent(''); } else open(input.value, false);
}

// ---- Recent orders: a list from GET /api/orders, kept current by the SSE stream. -------
const LIST_LIMIT = 20;
let recent = null; // summaries shown, newest first (null until loaded)
let recentError = null; // failure kind of the last load, if it failed
let rejected = null, rejectedError = null;
const freshIds = new Set(); // ids that arrived live, highlighted once (at the next render)
// Ids that arrived live since the last successful load: a list that was requested before they
// were stored lacks them, so loadRecent keeps them on top. Only ids still in `recent` matter.
const liveIds = new Set();

/** GETs a JSON list; resolves to [list, null] or [null, failure kind]. */
async function fetchList(url) {
  try {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    const body = tryParse(JSON.parse, await res.text());
    if (!res.ok) {
      const kind = classify(res.status, body);
      if (kind === 'unauthorized') showSignIn(true);
      return [null, kind];
    }
    return Array.isArray(body) ? [body, null] : [null, 'bad_response'];
  } catch {
    return [null, 'network'];
  }
}

/** Fills a list's status line: loading, failed (with a retry) or empty. */
function listState(box, items, error, emptyText, retry) {
  box.className = 'list-state';
  if (error === 'unauthorized') {
    box.classList.add('is-locked');
    return box.replaceChildren(el('p', {}, t('listLocked')));
  }
  if (error) {
    const why = error === 'unavailable' ? t('listUnavailable') : errorText(error, '', {});
    const again = el('button', { type: 'button', class: 'small' }, t('tryAgain'));
    again.addEventListener('click', retry);
    box.classList.add('is-error');
    return box.replaceChildren(el('p', {}, t('listFailed', why)), again);
  }
  if (items === null) { box.classList.add('is-loading'); return box.replaceChildren(el('p', {}, t('loading'))); }
  if (!items.length) { box.classList.add('is-empty'); return box.replaceChildren(el('p', {}, emptyText)); }
  box.replaceChildren();
}

async function loadRecent() {
  const [list, error] = await fetchList(`/api/orders?limit=${LIST_LIMIT}`);
  if (list) {
    // Orders that arrived live while the list loaded are kept on top.
    const ids = new Set(list.map((s) => s.order_uid));
    recent = [...(recent ?? []).filter((s) => liveIds.has(s.order_uid) && !ids.has(s.order_uid)), ...list]
      .slice(0, LIST_LIMIT);
    liveIds.clear();
  }
  recentError = error;
  renderRecent();
}

/** Adds a summary that arrived on the stream to the top of the list. */
function addLive(summary) {
  if (!summary || typeof summary.order_uid !== 'string') return;
  freshIds.add(summary.order_uid);
  liveIds.add(summary.order_uid);
  recent = [summary, ...(recent ?? []).filter((s) => s.order_uid !== summary.order_uid)].slice(0, LIST_LIMIT);
  if (liveIds.size > LIST_LIMIT) { // forget the ones pushed off the list
    const shown = new Set(recent.map((s) => s.order_uid));
    for (const id of liveIds) if (!shown.has(id)) liveIds.delete(id);
  }
  recentError = null;
  renderRecent();
}

function renderRecent() {
  const box = document.getElementById('recent');
  listState(document.getElementById('recent-state'), recent, recentError && !recent?.length ? recentError : null,
    t('recentEmpty'), loadRecent);
  box.replaceChildren(...(recent ?? []).map((s) => {
    const stored = parseRfc3339(s.stored_at);
    const link = el('a', { href: `/?id=${encodeURIComponent(s.order_uid)}`, class: 'entry', 'data-id': s.order_uid },
      el('span', { class: 'entry-top' },
        el('span', { class: 'mono uid' }, s.order_uid),
        el('span', { class: 'amount' }, formatMoney(s.amount, s.currency))),
      el('span', { class: 'entry-sub' },
        el('span', { class: 'who' }, [s.delivery_name, s.delivery_city].filter(Boolean).join(' · ')),
        el('span', { class: 'meta' }, t('itemCount', Number(s.item_count ?? 0)),
          stored ? [' · ', el('time', { datetime: stored.toISOString(), title: stored.toISOString() },
            formatTime(stored))] : [])));
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault(); // same page: no reload, but a history entry
      input.value = s.order_uid;
      open(s.order_uid, true);
    });
    const item = el('li', { class: freshIds.has(s.order_uid) ? 'fresh' : null }, link);
    return item;
  }));
  freshIds.clear();
  markCurrent();
}

/** Marks the entry of the order on screen with aria-current. */
function markCurrent(id = input?.value) {
  for (const a of document.querySelectorAll('#recent a.entry')) {
    if (a.dataset.id === id && id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

// ---- Live: the SSE stream of new orders. -------------------------------------------------
let stream = null;
let hadError = false;
function setLive(state) {
  const live = document.getElementById('live');
  live.dataset.state = state;
  document.getElementById('live-text').textContent = t(state);
}
function connect() {
  if (typeof EventSource !== 'function') return setLive('offline');
  stream?.close();
  stream = new EventSource('/api/orders/stream');
  setLive('connecting');
  stream.addEventListener('open', () => {
    setLive('live');
    if (hadError) loadRecent(); // fill what was missed while disconnected
    hadError = false;
  });
  stream.addEventListener('order', (event) => addLive(tryParse(JSON.parse, event.data)));
  stream.addEventListener('lagged', () => loadRecent());
  stream.addEventListener('error', () => {
    hadError = true;
    // The browser reconnects by itself unless the stream is closed for good.
    setLive(stream.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting');
  });
}

// ---- Rejected messages: GET /api/rejected. ----------------------------------------------
async function loadRejected() {
  if (rejected === null) renderRejected();
  const [list, error] = await fetchList(`/api/rejected?limit=${LIST_LIMIT}`);
  if (list) rejected = list;
  rejectedError = error;
  renderRejected();
}

function renderRejected() {
  const box = document.getElementById('rejected');
  listState(document.getElementById('rejected-state'), rejected, rejectedError, t('rejectedEmpty'), loadRejected);
  box.replaceChildren(...(rejected ?? []).map((r) => {
    const seen = parseRfc3339(r.seen_at);
    const size = r.payload_bytes === null || r.payload_bytes === undefined ? t('tombstone') : t('bytes', r.payload_bytes);
    return el('li', { class: 'reject' },
      el('div', { class: 'entry-top' },
        el('span', { class: 'code' }, show(r.reason_code)),
        seen ? el('time', { datetime: seen.toISOString(), title: seen.toISOString() }, formatTime(seen)) : null),
      el('p', { class: 'reason' }, show(r.reason)),
      el('p', { class: 'meta' }, `${t('partition')} ${r.partition} · ${t('offset')} ${r.offset} · ${size}`),
      r.payload_preview ? el('pre', { class: 'preview', 'aria-label': t('payload') },
        r.payload_preview, r.truncated ? el('span', { class: 'cut' }, ` … ${t('truncated')}`) : null) : null);
  }));
}

// ---- Operator sign-in: the token in a cookie the browser sends with each request. ------
const secure = () => (location.protocol === 'https:' ? '; Secure' : '');
/** Keeps `token` for this browser session (no expiry), for this site's requests only. */
const keepToken = (token) => { document.cookie = `${TOKEN_COOKIE}=${token}; Path=/; SameSite=Strict${secure()}`; };
const dropToken = () => { document.cookie = `${TOKEN_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict${secure()}`; };
const hasToken = () => document.cookie.split(';').some((c) => c.trim().startsWith(`${TOKEN_COOKIE}=`));

/** Shows the sign-in panel (and hides Sign out) when `locked`, else the reverse. */
function showSignIn(locked) {
  document.getElementById('signin-panel').hidden = !locked;
  document.getElementById('sign-out').hidden = locked || !hasToken();
}

/** Loads everything the token opens. */
function loadOperatorViews() {
  loadRecent();
  loadRejected();
  connect();
}

/** A token from a link (#token=...): kept, and removed from the address and history. */
function takeTokenFromAddress() {
  if (!location.hash.startsWith('#token=')) return;
  const token = location.hash.slice('#token='.length);
  if (TOKEN_RULE.test(token)) keepToken(token);
  history.replaceState(history.state, '', location.pathname + location.search);
}

async function signIn(event) {
  event.preventDefault();
  const field = document.getElementById('operator-token');
  const error = document.getElementById('signin-error');
  const token = field.value.trim();
  if (!TOKEN_RULE.test(token)) { error.textContent = t('tokenInvalid'); field.setAttribute('aria-invalid', 'true'); return; }
  keepToken(token);
  let res = null;
  try { res = await fetch('/api/orders?limit=1', { headers: { Accept: 'application/json' } }); } catch { /* below */ }
  if (!res || res.status === 401) {
    dropToken();
    error.textContent = res ? t('tokenRefused') : t('network');
    field.setAttribute('aria-invalid', 'true');
    return;
  }
  field.value = '';
  field.removeAttribute('aria-invalid');
  error.textContent = '';
  showSignIn(false);
  loadOperatorViews();
}

function signOut() {
  dropToken();
  stream?.close();
  setLive('offline');
  recent = null; rejected = null;
  loadRecent();
  loadRejected();
}

// ---- Language. ---------------------------------------------------------------------------
function applyLang(next, remember) {
  lang = LANGS.includes(next) ? next : 'en';
  if (remember) { try { localStorage.setItem(LANG_KEY, lang); } catch { /* storage blocked */ } }
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  input.placeholder = t('placeholder');
  for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
  // Re-render what is on screen in the new language.
  const live = document.getElementById('live');
  setLive(live.dataset.state);
  if (said) say(...said);
  if (shown) { renderOrder(shown); document.title = t('docOrder', shown.order.order_uid); }
  else if (document.getElementById('welcome')) renderWelcome();
  if (!shown && !said) document.title = t('docTitle');
  renderRecent();
  renderRejected();
}

function init() {
  input = document.getElementById('order-id');
  button = document.getElementById('get-order');
  message = document.getElementById('message');
  orderBox = document.getElementById('order');
  applyLang(initialLang(), false);
  document.getElementById('lookup').addEventListener('submit', (event) => {
    event.preventDefault(); // Enter in the field lands here too
    input.value = input.value.trim();
    open(input.value, true);
  });
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  for (const b of document.querySelectorAll('.lang button')) b.addEventListener('click', () => applyLang(b.dataset.lang, true));
  document.getElementById('recent-refresh').addEventListener('click', loadRecent);
  document.getElementById('rejected-refresh').addEventListener('click', loadRejected);
  window.addEventListener('popstate', route);
  // The skip link moves focus without touching the address (which holds the order).
  document.querySelector('.skip').addEventListener('click', (event) => { event.preventDefault(); input.focus(); });
  window.addEventListener('hashchange', route);
  document.getElementById('signin').addEventListener('submit', signIn);
  document.getElementById('sign-out').addEventListener('click', signOut);
  document.getElementById('operator-token').addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
  takeTokenFromAddress();
  showSignIn(false);
  route();
  loadOperatorViews();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
