#!/usr/bin/env node
// MCP Inspector (npm @modelcontextprotocol/inspector), the web UI the README
// and local mode suggest, connecting to a gateway route as a person would.
//
// Starts the Inspector's web UI on free loopback ports with nothing but the
// server URL (no extra flag, secrets in memory, its own HOME), opens it in
// headless Chromium, flips the server's connect switch, signs in on the login
// page, approves the consent page, then waits for the Inspector to show the
// server connected and reads the tool names off its Tools tab. From the
// Inspector's own page it also registers a client with the gateway the way a
// browser-side client does (a cross-origin POST carrying its Origin).
//
//   node inspector.mjs --server-url http://localhost:PORT/mcp/example \
//        --username U --password P [--screenshot ../artifacts/inspector.png]
//
// Prints one JSON line: {inspector_origin, consent, connected, tools,
// tools_count, direct_registration: {status, client_id}, screenshot}.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, parseArgs } from './lib.mjs';

const args = parseArgs(process.argv.slice(2), {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  timeoutMs: '60000',
});
for (const required of ['serverUrl', 'username', 'password']) {
  if (!args[required]) throw new Error(`--${required.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
}
const timeout = Number(args.timeoutMs);

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The Inspector's web UI, started as `npx @modelcontextprotocol/inspector` starts it. */
async function startInspector(serverUrl) {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('@modelcontextprotocol/inspector/package.json'));
  const home = mkdtempSync(join(tmpdir(), 'inspector-home-'));
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const child = spawn(
    process.execPath,
    [join(pkg, 'clients/launcher/build/index.js'), '--web', '--transport', 'http', '--server-url', serverUrl],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HOME: home,
        CLIENT_PORT: String(port),
        MCP_SANDBOX_PORT: String(await freePort()),
        MCP_INSPECTOR_API_TOKEN: token,
        MCP_INSPECTOR_SECRET_STORE: 'memory',
        MCP_AUTO_OPEN_ENABLED: 'false',
      },
    },
  );
  let output = '';
  const up = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the Inspector did not start within ${timeout} ms:\n${output}`)), timeout);
    const read = (chunk) => {
      output += chunk;
      if (output.includes('up and running')) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => fail(new Error(`the Inspector exited with ${code}:\n${output}`)));
  });
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    rmSync(home, { recursive: true, force: true });
  };
  try {
    await up;
  } catch (err) {
    stop();
    throw err;
  }
  return { origin: `http://localhost:${port}`, token, stop, output: () => output };
}

async function main() {
  const inspector = await startInspector(args.serverUrl);
  const browser = await chromium.launch({ executablePath: args.executablePath, args: CHROMIUM_ARGS, timeout });
  const out = { inspector_origin: inspector.origin };
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeout);
    await page.goto(`${inspector.origin}/?MCP_INSPECTOR_API_TOKEN=${inspector.token}`);

    // The server card's connect switch (its input sits under the track that takes the click).
    await page.locator('.mantine-Switch-track').first().click();

    // The gateway sends the browser to the login page…
    const password = page.locator('input[type=password]');
    await password.waitFor();
    const loginForm = page.locator('form', { has: password });
    await loginForm.locator('input[type=text], input[type=email], input:not([type])').first().fill(args.username);
    await password.fill(args.password);
    await loginForm.locator('[type=submit]').first().click();

    // …then to its consent page, which names the Inspector as the registered client.
    const approve = page.locator('button[name=decision][value=approve]');
    await approve.waitFor();
    out.consent = { url: page.url(), text: (await page.locator('body').innerText()).slice(0, 2000) };
    await approve.click();

    // Back in the Inspector: connected, with the route's tools on its Tools tab.
    await page.waitForURL((url) => url.origin === new URL(inspector.origin).origin);
    const connected = page.getByText('Connected', { exact: true }).first();
    await connected.waitFor();
    out.connected = true;
    await page.getByRole('tab', { name: 'Tools' }).or(page.getByText('Tools', { exact: true })).first().click();
    await page.getByText(/^Tools \(\d+\)$/).first().waitFor();
    const panel = (await page.locator('body').innerText()).match(/Tools \((\d+)\)\n([\s\S]*?)Select a tool/);
    out.tools = panel ? panel[2].split('\n').map((l) => l.trim()).filter((l) => l && l !== 'Paginated') : [];
    out.tools_count = panel ? Number(panel[1]) : null;

    // A browser-side client on the Inspector's origin registering directly.
    const gateway = new URL(args.serverUrl).origin;
    out.direct_registration = await page.evaluate(
      async ({ gateway, redirect }) => {
        const res = await fetch(`${gateway}/oauth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            client_name: 'MCP Inspector (in the browser)',
            redirect_uris: [redirect],
            token_endpoint_auth_method: 'none',
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
          }),
        });
        const body = await res.json().catch(() => ({}));
        // A readable answer at all means the CORS check let the Inspector's origin through.
        return { status: res.status, client_id: body.client_id ?? null };
      },
      { gateway, redirect: `${inspector.origin}/oauth/callback` },
    );

    if (args.screenshot) {
      const path = resolve(args.screenshot);
      mkdirSync(dirname(path), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      out.screenshot = path;
    }
  } catch (err) {
    out.error = err.message;
    out.inspector_output = inspector.output().slice(-3000);
  } finally {
    await browser.close();
    inspector.stop();
  }
  console.log(JSON.stringify(out));
  if (out.error) process.exit(1);
}

await main();
