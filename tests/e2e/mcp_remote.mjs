#!/usr/bin/env node
// mcp-remote (npm), the stdio bridge Claude Desktop users configure, logging
// in through the gateway and then used over its stdio as a desktop app would.
//
// mcp-remote runs unchanged; this script plays the user: it reads the URL
// mcp-remote prints on stderr and walks the browser leg headlessly (lib.mjs:
// hosted UI login form, consent screen). With --device, mcp-remote uses the
// device grant and prints a verification URL with the user code; the user
// confirms the code on the page it opens, and the walk then ends on the gateway's "device is signed in" page while mcp-remote
// polls. Without it, the walk ends at mcp-remote's own loopback callback,
// which this script then calls as the browser would.
//
// Then JSON-RPC over mcp-remote's stdin/stdout: initialize, tools/list,
// tools/call add (or, with --steps '[[method, params], ...]', those requests,
// whose answers go in `steps`). Prints one JSON line for the Rust test.
//
//   node mcp_remote.mjs --url http://localhost:PORT/mcp/echo --username U --password P
//        --port CALLBACK_PORT --config-dir DIR [--device true] [--steps JSON]

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pageText, parseArgs, readForms, walk } from './lib.mjs';

const args = parseArgs(process.argv.slice(2), { device: 'false', steps: '' });
const device = args.device === 'true';
const require = createRequire(import.meta.url);
const bin = path.join(path.dirname(require.resolve('mcp-remote/package.json')), 'dist/proxy.js');

const out = { flow: device ? 'device' : 'browser' };
const stderrLines = [];
const child = spawn(
  process.execPath,
  [bin, args.url, args.port, ...(device ? ['--device-code'] : [])],
  {
    // BROWSER=true: nothing is opened on this machine; the URL is on stderr.
    env: { ...process.env, MCP_REMOTE_CONFIG_DIR: args.configDir, BROWSER: 'true', DISPLAY: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  },
);

const deadline = setTimeout(() => finish('timed out'), 90_000);

let finished = false;
function finish(error) {
  if (finished) return;
  finished = true;
  clearTimeout(deadline);
  if (error) out.error = String(error);
  out.stderr_tail = stderrLines.slice(-25);
  child.kill();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

// stderr: the sign-in prompt, then the connection.
let pendingPrompt = null;
let signInStarted = false;
const connected = new Promise((resolve) => {
  let buffer = '';
  child.stderr.on('data', (chunk) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      // mcp-remote prefixes its lines with `[pid]`.
      const line = buffer.slice(0, nl).trim().replace(/^\[\d+\]\s*/, '');
      buffer = buffer.slice(nl + 1);
      stderrLines.push(line);
      if (/Please authorize this client by visiting:|To authorize this client, visit:/.test(line)) {
        pendingPrompt = line;
        continue;
      }
      if (pendingPrompt && /^https?:\/\//.test(line) && !signInStarted) {
        signInStarted = true;
        pendingPrompt = null;
        signIn(line).catch((err) => finish(`sign-in failed: ${err.stack ?? err}`));
        continue;
      }
      if (/Connected to remote server/.test(line) && signInStarted) resolve();
      if (/Proxy established/.test(line)) resolve();
    }
  });
});

async function signIn(url) {
  out.sign_in_url = url.replace(/user_code=[^&]*/, 'user_code=…');
  if (device) {
    // Any device: open the verification URL, confirm the code it shows is
    // the device's, sign in, approve. No redirect back to the client; the
    // page says the device is signed in.
    const page = await fetch(url, { redirect: 'manual' });
    const html = await page.text();
    out.confirm_text = pageText(html);
    const confirm = readForms(html).find((f) => 'user_code' in f.fields);
    if (page.status !== 200 || !confirm) throw new Error(`no confirmation page: ${page.status} ${out.confirm_text}`);
    const posted = await fetch(new URL(confirm.action, url), {
      method: confirm.method.toUpperCase(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(confirm.fields).toString(),
      redirect: 'manual',
    });
    const toIdp = posted.headers.get('location');
    if (posted.status !== 302 || !toIdp) throw new Error(`confirming did not start the sign-in: ${posted.status}`);
    const result = await walk(new URL(toIdp, url).toString(), {
      redirectUri: 'http://device.invalid/never',
      username: args.username,
      password: args.password,
    });
    out.consent_text = result.consentText;
    out.done_text = result.text;
    return;
  }
  const redirectUri = new URL(url).searchParams.get('redirect_uri');
  out.redirect_uri = redirectUri;
  const result = await walk(url, { redirectUri, username: args.username, password: args.password });
  out.consent_text = result.consentText;
  if (result.kind !== 'redirect') throw new Error(`the walk ended on a page: ${result.status} ${result.text}`);
  out.callback_params = Object.keys(result.params).sort();
  // The browser arrives at mcp-remote's callback server.
  const back = await fetch(result.url);
  out.callback_status = back.status;
}

// stdout: JSON-RPC responses, one per line.
const waiting = new Map();
let stdoutBuffer = '';
child.stdout.on('data', (chunk) => {
  stdoutBuffer += chunk.toString();
  let nl;
  while ((nl = stdoutBuffer.indexOf('\n')) >= 0) {
    const line = stdoutBuffer.slice(0, nl).trim();
    stdoutBuffer = stdoutBuffer.slice(nl + 1);
    if (!line) continue;
    const message = JSON.parse(line);
    if (message.id !== undefined && waiting.has(message.id)) {
      waiting.get(message.id)(message);
      waiting.delete(message.id);
    }
  }
});
child.on('exit', (code) => finish(`mcp-remote exited with ${code}`));

let nextId = 1;
function request(method, params) {
  const id = nextId++;
  const answer = new Promise((resolve) => waiting.set(id, resolve));
  child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
  return answer;
}

try {
  await connected;
  const init = await request('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'cognigate e2e desktop', version: '1.0.0' },
  });
  out.server_name = init.result?.serverInfo?.name ?? init.error;
  child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  const tools = await request('tools/list', {});
  out.tools = (tools.result?.tools ?? []).map((t) => t.name).sort();
  if (args.steps) {
    out.steps = [];
    for (const [method, params] of JSON.parse(args.steps)) {
      const answer = await request(method, params);
      out.steps.push(answer.result ?? { error: answer.error });
    }
  } else {
    const added = await request('tools/call', { name: 'add', arguments: { a: 40, b: 2 } });
    out.add = added.result?.content?.[0]?.text ?? added.error;
  }
  finish();
} catch (err) {
  finish(err.stack ?? err);
}
