// Shared helpers for the Node end-to-end clients: a cookie jar, a tolerant
// HTML form reader, and the headless browser leg of the OAuth flow
// (gateway /oauth/authorize → hosted UI login → gateway consent → redirect to
// the client's redirect URI, which is captured, not followed).
//
// Forms are found by what they contain, not by the gateway's exact markup:
// the login form has a password field; the consent form has `decision` buttons.

import { createHash, randomBytes } from 'node:crypto';

const MAX_STEPS = 20;

// Headless Chromium on a machine with no outside network: background
// connections off, so start-up does not wait on lookups that cannot succeed.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** A cookie jar that behaves like a browser's for what these flows need:
 *  host-only cookies, Path prefix matching, Max-Age/Expires removal, and
 *  `Secure` cookies never sent over plain http. */
export class CookieJar {
  constructor() {
    this.cookies = []; // {host, name, value, path, secure, expires}
  }

  store(url, response) {
    const host = new URL(url).hostname;
    const lines = response.headers.getSetCookie ? response.headers.getSetCookie() : [];
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie = { host, name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/', secure: false, expires: null };
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) cookie.path = v;
        else if (key === 'secure') cookie.secure = true;
        else if (key === 'max-age') cookie.expires = Date.now() + Number(v) * 1000;
        else if (key === 'expires' && cookie.expires === null) cookie.expires = Date.parse(v);
      }
      this.cookies = this.cookies.filter((c) => !(c.host === host && c.name === cookie.name && c.path === cookie.path));
      if (cookie.expires === null || cookie.expires > Date.now()) this.cookies.push(cookie);
    }
  }

  header(url) {
    const u = new URL(url);
    const pairs = this.cookies
      .filter((c) => c.host === u.hostname)
      .filter((c) => u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .filter((c) => !c.secure || u.protocol === 'https:')
      .filter((c) => c.expires === null || c.expires > Date.now())
      .map((c) => `${c.name}=${c.value}`);
    return pairs.length ? pairs.join('; ') : null;
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#34': '"' };

function decode(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    const k = e.toLowerCase();
    if (ENTITIES[k] !== undefined) return ENTITIES[k];
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return m;
  });
}

function attributes(tag) {
  const out = {};
  const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const body = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(body))) out[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  return out;
}

/** The forms of a page: action, method, fields (name → value), buttons [name, value]. */
export function readForms(html) {
  const forms = [];
  const formRe = /<form\b[^>]*>([\s\S]*?)<\/form>/gi;
  let f;
  while ((f = formRe.exec(html))) {
    const open = f[0].match(/<form\b[^>]*>/i)[0];
    const a = attributes(open);
    const form = { action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), fields: {}, buttons: [], password: null, username: null };
    const controlRe = /<(input|button)\b[^>]*>/gi;
    let c;
    while ((c = controlRe.exec(f[1]))) {
      const ca = attributes(c[0]);
      const type = (ca.type ?? (c[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
      if (!ca.name) continue;
      if (['submit', 'button', 'image'].includes(type)) form.buttons.push([ca.name, ca.value ?? '']);
      else {
        if (type === 'password') form.password = ca.name;
        else if (['text', 'email'].includes(type) && form.username === null) form.username = ca.name;
        if (!['checkbox', 'radio'].includes(type) || 'checked' in ca) form.fields[ca.name] = ca.value ?? '';
      }
    }
    forms.push(form);
  }
  return forms;
}

export function pageText(html) {
  return decode(html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();
}

function isRedirectTarget(location, redirectUri) {
  const a = new URL(location);
  const b = new URL(redirectUri);
  return a.protocol === b.protocol && a.host === b.host && a.pathname === b.pathname;
}

/**
 * Walk the browser leg from `authorizeUrl` until the redirect to `redirectUri`.
 * decision: 'approve' | 'deny' | 'stop' (return the consent page itself).
 * Returns {kind: 'redirect'|'page', url, status, params, text, steps, consentText}.
 */
export async function walk(authorizeUrl, { redirectUri, username, password, decision = 'approve', jar = new CookieJar() }) {
  const steps = [];
  let consentText = '';
  let method = 'GET';
  let url = authorizeUrl;
  let body;
  for (let i = 0; i < MAX_STEPS; i++) {
    steps.push(`${method} ${url.split('?')[0]}`);
    const headers = {};
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    jar.store(url, res);
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = new URL(res.headers.get('location'), url).toString();
      if (isRedirectTarget(location, redirectUri)) {
        const params = Object.fromEntries(new URL(location).searchParams);
        return { kind: 'redirect', url: location, status: res.status, params, text: '', steps, consentText };
      }
      method = 'GET';
      url = location;
      body = undefined;
      continue;
    }
    const html = await res.text();
    const text = pageText(html);
    const forms = readForms(html);
    const login = forms.find((f) => f.password);
    const consent = forms.find((f) => f.buttons.some(([n]) => n === 'decision'));
    if (res.status === 200 && login) {
      if (body && /Incorrect username or password/.test(text)) {
        return { kind: 'page', url, status: res.status, params: {}, text, steps, consentText };
      }
      const fields = { ...login.fields, [login.username ?? 'username']: username, [login.password]: password };
      method = login.method.toUpperCase();
      url = new URL(login.action || url, url).toString();
      body = new URLSearchParams(fields).toString();
      continue;
    }
    if (res.status === 200 && consent) {
      consentText = text;
      if (decision === 'stop') return { kind: 'page', url, status: res.status, params: {}, text, steps, consentText };
      const values = consent.buttons.filter(([n]) => n === 'decision').map(([, v]) => v);
      if (!values.includes(decision)) throw new Error(`consent form has no decision=${decision} button: ${values}`);
      method = consent.method.toUpperCase();
      url = new URL(consent.action || url, url).toString();
      body = new URLSearchParams({ ...consent.fields, decision }).toString();
      continue;
    }
    return { kind: 'page', url, status: res.status, params: {}, text: text.slice(0, 2000), steps, consentText };
  }
  throw new Error(`no redirect to ${redirectUri} after ${MAX_STEPS} steps: ${steps.join(' → ')}`);
}

export function pkce() {
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** Register a public client at the gateway and build an authorize URL for `route`. */
export async function prepareAuthorization({ gateway, route, redirectUri, clientName }) {
  const base = gateway.replace(/\/$/, '');
  const meta = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
  const reg = await fetch(meta.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  if (!reg.ok) throw new Error(`registration failed: ${reg.status} ${await reg.text()}`);
  const client = await reg.json();
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: `${base}${route}`,
  }).toString();
  return { meta, client, verifier, state, authorizeUrl: url.toString(), resource: `${base}${route}` };
}

export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = argv[i].match(/^--([a-z-]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[key] = m[2] ?? argv[++i];
  }
  return out;
}
