#!/usr/bin/env node
// The consent page in a real browser: headless Chromium (Debian `chromium`)
// driven by playwright-core.
//
// Registers a public client at the gateway (or takes --authorize-url), opens
// the authorize URL, signs in on the hosted UI's login form, checks that the
// consent page names the client, the route and the user, keeps a screenshot,
// then clicks Approve or Deny. The redirect to the client's redirect URI is
// intercepted in the browser (that is what a native client's loopback listener
// would receive) and reported.
//
//   node consent.mjs --gateway http://localhost:PORT --route /mcp/echo \
//     --username U --password P --expect-user alice@example.com \
//     --decisions approve,deny [--screenshot ../artifacts/consent.png] \
//     [--wrong-password X --login-screenshot ../artifacts/login-error.png]
//     [--expect refusal]
//
// With --expect refusal the user is one the route turns away after sign-in
// (outside its allowedGroups): instead of a consent page the run reports the
// page the browser shows (`refusal`: status, text, url, whether any decision
// button is there) and screenshots it; no decision is clicked.
//
// With --wrong-password the first run signs in with it first and reports
// whether the login page showed its error (`login_error`), then signs in right.
//
// One browser, one run per decision (each with its own client registration and
// browser context; the screenshot is taken in the first run). Prints one JSON
// line: {runs: [{decision, checks, screenshot, redirect: {code, state, error, iss}, token}]}.
// Exits non-zero when the page misses something it must show.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, parseArgs, prepareAuthorization } from './lib.mjs';

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    route: '/mcp/echo',
    decisions: 'approve',
    redirectUri: 'http://127.0.0.1:33422/callback',
    clientName: 'cognigate e2e browser client',
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    timeoutMs: '20000',
  });
  for (const required of ['gateway', 'username', 'password']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  const decisions = (args.decision ?? args.decisions).split(',');
  if (!decisions.every((d) => ['approve', 'deny'].includes(d))) throw new Error('decisions are approve or deny');
  const timeout = Number(args.timeoutMs);

  const browser = await chromium.launch({ executablePath: args.executablePath, args: CHROMIUM_ARGS, timeout });
  const runs = [];
  try {
    for (const decision of decisions) {
      // A fresh client registration and a fresh browser context (no cookies) per run.
      runs.push(await consentRun(browser, args, decision, timeout, runs.length === 0 ? args.screenshot : undefined));
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ runs }));
}

async function consentRun(browser, args, decision, timeout, screenshot) {
  const prepared = await prepareAuthorization({
    gateway: args.gateway,
    route: args.route,
    redirectUri: args.redirectUri,
    clientName: args.clientName,
  });
  const authorizeUrl = args.authorizeUrl ?? prepared.authorizeUrl;
  const out = { decision, checks: {}, screenshot: null, redirect: null };
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);

    // The redirect back to the client: captured in the browser, answered with a tiny page.
    let redirected = null;
    const redirect = new URL(args.redirectUri);
    await page.route(`${redirect.origin}${redirect.pathname}**`, async (route) => {
      redirected = route.request().url();
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<p id="done">You can close this window.</p>' });
    });

    // The consent page's own response headers (it must refuse to be framed).
    const documents = [];
    page.on('response', (res) => {
      if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) documents.push(res);
    });

    await page.goto(authorizeUrl);

    // Hosted UI: the login form is the one with a password field.
    const password = page.locator('input[type=password]');
    await password.waitFor();
    const loginForm = page.locator('form', { has: password });
    const usernameField = loginForm.locator('input[type=text], input[type=email], input:not([type])').first();
    if (args.wrongPassword && screenshot) {
      await usernameField.fill(args.username);
      await password.fill(args.wrongPassword);
      await Promise.all([page.waitForLoadState('load'), loginForm.locator('[type=submit]').first().click()]);
      const error = page.locator('[role=alert], .error').first();
      await error.waitFor();
      out.login_error = { text: (await error.innerText()).trim(), url: page.url(), title: await page.title() };
      if (args.loginScreenshot) {
        const path = resolve(args.loginScreenshot);
        mkdirSync(dirname(path), { recursive: true });
        await page.screenshot({ path, fullPage: true });
        out.login_error.screenshot = path;
      }
    }
    await usernameField.fill(args.username);
    await password.fill(args.password);
    await Promise.all([
      page.waitForURL((url) => !url.toString().includes('/oauth2/authorize') && !url.pathname.endsWith('/login')),
      loginForm.locator('[type=submit]').first().click(),
    ]);

    if (args.expect === 'refusal') {
      out.refusal = await refusal(page, documents, screenshot);
      out.screenshot = out.refusal.screenshot;
      return out;
    }

    // The gateway's consent page.
    const approve = page.locator('button[name=decision][value=approve], input[name=decision][value=approve]');
    const deny = page.locator('button[name=decision][value=deny], input[name=decision][value=deny]');
    try {
      await approve.waitFor();
    } catch (err) {
      out.final_url = page.url();
      out.final_text = (await page.locator('body').innerText()).slice(0, 1000);
      throw new Error(`no consent page (${err.message}): ${JSON.stringify(out)}`);
    }
    const body = await page.locator('body').innerText();
    const consentDoc = documents.filter((r) => r.status() === 200).at(-1);
    const headers = consentDoc ? await consentDoc.allHeaders() : {};
    const csp = headers['content-security-policy'] ?? '';
    out.consent_headers = {
      x_frame_options: headers['x-frame-options'] ?? null,
      content_security_policy: csp || null,
      cache_control: headers['cache-control'] ?? null,
    };
    const routeUrl = `${args.gateway.replace(/\/$/, '')}${args.route}`;
    out.checks = {
      url_is_gateway: page.url().startsWith(args.gateway.replace(/\/$/, '')),
      shows_client_name: body.includes(args.clientName),
      shows_route: body.includes(args.route) || body.includes(routeUrl),
      shows_user: args.expectUser ? body.includes(args.expectUser) : null,
      shows_redirect_host: body.includes(redirect.hostname),
      has_deny: (await deny.count()) > 0,
      csrf_field: (await page.locator('input[type=hidden][name=csrf_token]').count()) > 0,
      not_frameable:
        /frame-ancestors\s+'none'/.test(csp) || (headers['x-frame-options'] ?? '').toUpperCase() === 'DENY',
    };
    out.title = await page.title();
    if (screenshot) {
      const path = resolve(screenshot);
      mkdirSync(dirname(path), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      out.screenshot = path;
    }

    await (decision === 'approve' ? approve : deny).first().click();
    await page.waitForFunction(() => document.getElementById('done') !== null, null, { timeout }).catch(() => {});
    if (!redirected) {
      out.final_url = page.url();
      out.final_text = (await page.locator('body').innerText()).slice(0, 1000);
      throw new Error(`no redirect to ${args.redirectUri}: ${JSON.stringify(out)}`);
    }
    const params = new URL(redirected).searchParams;
    out.redirect = {
      code: params.get('code'),
      state: params.get('state'),
      error: params.get('error'),
      iss: params.get('iss'),
      state_matches: params.get('state') === prepared.state,
    };
    if (out.redirect.code && !args.authorizeUrl) {
      // The code works: the client exchanges it (PKCE verifier, same redirect URI and resource).
      const res = await fetch(prepared.meta.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: out.redirect.code,
          redirect_uri: args.redirectUri,
          client_id: prepared.client.client_id,
          code_verifier: prepared.verifier,
          resource: prepared.resource,
        }).toString(),
      });
      const tokenBody = await res.json().catch(() => ({}));
      out.token = {
        status: res.status,
        has_access_token: typeof tokenBody.access_token === 'string',
        token_type: tokenBody.token_type ?? null,
      };
    }
  } finally {
    await context.close();
  }
  return out;
}

/** The page shown instead of the consent screen, as the browser got it. */
async function refusal(page, documents, screenshot) {
  await page.waitForLoadState('load');
  const document = documents.at(-1);
  const decisions = await page.locator('[name=decision]').count();
  const out = {
    status: document ? document.status() : null,
    url: page.url(),
    title: await page.title(),
    text: (await page.locator('body').innerText()).trim(),
    has_decision_buttons: decisions > 0,
    screenshot: null,
  };
  if (screenshot) {
    const path = resolve(screenshot);
    mkdirSync(dirname(path), { recursive: true });
    await page.screenshot({ path, fullPage: true });
    out.screenshot = path;
  }
  return out;
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
