#!/usr/bin/env node
// The upstream connect flow in a real browser: headless Chromium (Debian
// `chromium`) driven by playwright-core.
//
// Opens the connect URL a connect-required answer carried, signs in to the
// gateway on the hosted UI's login form (the link is for one gateway user),
// checks what the gateway's connect page shows, clicks Connect (or Cancel),
// signs in at the upstream's authorization server (oidc-provider's
// development login: any login name), approves its consent, and reports the
// page the gateway's callback shows.
//
//   node connect.mjs --url CONNECT_URL --username U --password P \
//     --upstream-login LOGIN [--decision approve|deny] [--screenshot FILE]
//
// Prints one JSON line: {page: {title, user, display_name, has_connect,
// csp, frame_options}, done: {title, message, url}, screenshot}.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, parseArgs } from './lib.mjs';

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    decision: 'approve',
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    timeoutMs: '20000',
  });
  for (const required of ['url', 'username', 'password', 'upstreamLogin']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  const timeout = Number(args.timeoutMs);
  const browser = await chromium.launch({ executablePath: args.executablePath, args: CHROMIUM_ARGS, timeout });
  const out = { page: null, done: null, screenshot: null };
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    // Nothing here needs the internet (oidc-provider's page links a web font).
    await page.route((url) => !['127.0.0.1', 'localhost'].includes(url.hostname), (route) => route.abort());
    const documents = [];
    page.on('response', (res) => {
      if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) documents.push(res);
    });

    await page.goto(args.url);
    // The gateway's identity provider (the hosted UI stand-in).
    const password = page.locator('input[type=password]');
    await password.waitFor();
    const loginForm = page.locator('form', { has: password });
    await loginForm.locator('input[type=text], input[type=email], input:not([type])').first().fill(args.username);
    await password.fill(args.password);
    await Promise.all([page.waitForURL(/\/oauth\/callback/), loginForm.locator('[type=submit]').first().click()]);

    // The gateway's connect page.
    const connect = page.locator('button[value=approve]');
    await connect.waitFor();
    const headers = (await documents[documents.length - 1]?.allHeaders()) ?? {};
    out.page = {
      title: await page.title(),
      user: (await page.locator('#user').innerText()).trim(),
      display_name: (await page.locator('#display-name').innerText()).trim(),
      resource: (await page.locator('#resource').innerText()).trim(),
      has_connect: await connect.isVisible(),
      csp: headers['content-security-policy'] ?? null,
      frame_options: headers['x-frame-options'] ?? null,
    };
    if (args.screenshot) {
      const path = resolve(args.screenshot);
      mkdirSync(dirname(path), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      out.screenshot = path;
    }
    if (args.decision === 'deny') {
      await Promise.all([page.waitForLoadState('load'), page.locator('button[value=deny]').click()]);
    } else {
      await Promise.all([page.waitForURL(/\/interaction\//), connect.click()]);
      // oidc-provider's development login, then its consent prompt.
      await page.locator('input[name=login]').fill(args.upstreamLogin);
      await page.locator('input[name=password]').fill('any');
      await Promise.all([page.waitForLoadState('load'), page.locator('button[type=submit]').click()]);
      const consent = page.locator('button[type=submit]', { hasText: 'Continue' });
      await consent.waitFor();
      await Promise.all([page.waitForURL(/\/oauth\/upstream\/callback/), consent.click()]);
    }
    await page.locator('#message').waitFor();
    out.done = {
      title: (await page.locator('#title').innerText()).trim(),
      message: (await page.locator('#message').innerText()).trim(),
      url: page.url().split('?')[0],
    };
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
