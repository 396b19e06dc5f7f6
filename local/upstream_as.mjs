#!/usr/bin/env node
// An OAuth authorization server for an OAuth-protected example upstream MCP
// server (local/protected_mcp.py): the certified npm `oidc-provider`, with
// dynamic client registration, PKCE, resource indicators (tokens bound to
// the MCP server's URL), refresh tokens, the client-credentials grant, token
// introspection (how the MCP server checks tokens) and revocation. Its login
// page is oidc-provider's development page: any login name signs in as that
// user (the demo and the tests need no accounts).
//
//   node local/upstream_as.mjs --port 4455 [--access-ttl 3600]
//     [--service-client-secret S] [--introspection-secret S] [--refresh-delay-ms 0]
//
// `--refresh-delay-ms` holds each refresh answer back that long after the
// refresh is done (the old refresh token already spent): a slow network, for
// tests.
//
// Prints `Running on http://127.0.0.1:PORT` once it serves. Besides the
// provider's own endpoints, for tests:
//   GET  /_test/events           the token grants it answered (and refused) and the
//                                revocations (RFC 7009) it honoured, in order
//   POST /_test/revoke?account=X every grant of that user ended (as a user
//                                revoking the app at the provider would)
//
// Packages come from COGNIGATE_NODE_MODULES (default tests/e2e/node_modules).

import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(process.env.COGNIGATE_NODE_MODULES ?? join(here, '..', 'tests', 'e2e', 'node_modules'));
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href);

function args() {
  const out = { port: '0', accessTtl: '3600', serviceClientSecret: 'service-account-secret', introspectionSecret: 'introspection-secret' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[key] = argv[i + 1];
  }
  return out;
}

const options = args();
const refreshDelay = Number(options.refreshDelayMs ?? '0');
const port = Number(options.port);
if (!port) throw new Error('--port is required (the issuer URL names it)');
const issuer = `http://127.0.0.1:${port}`;
const accessTtl = Number(options.accessTtl);

const events = [];
const grantsOf = new Map();

const provider = new Provider(issuer, {
  clients: [
    {
      // The service account a shared-account route uses.
      client_id: 'service-account',
      client_secret: options.serviceClientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
    {
      // The MCP server itself, which introspects the tokens it is shown.
      client_id: 'protected-mcp',
      client_secret: options.introspectionSecret,
      grant_types: [],
      redirect_uris: [],
      response_types: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'mcp:tools'],
  cookies: { keys: ['cognigate local upstream authorization server'] },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'mcp:tools',
        audience: resource,
        accessTokenTTL: accessTtl,
        accessTokenFormat: 'opaque',
      }),
    },
  },
  // Refresh tokens for every client allowed the grant (not only with
  // `offline_access`): the gateway keeps users connected.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});

provider.on('grant.success', (ctx) => {
  const params = ctx.oidc.params ?? {};
  events.push({
    grant_type: params.grant_type,
    client_id: ctx.oidc.client?.clientId,
    resource: params.resource,
    at: Date.now(),
  });
});
provider.on('grant.error', (ctx, error) => {
  const params = ctx.oidc?.params ?? {};
  events.push({ grant_type: params.grant_type, error: error.error ?? String(error), at: Date.now() });
});
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token/revocation' && ctx.status === 200) {
    events.push({ revocation: ctx.oidc?.params?.token_type_hint ?? 'token', client_id: ctx.oidc?.client?.clientId, at: Date.now() });
  }
  if (refreshDelay > 0 && ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') {
    await new Promise((done) => setTimeout(done, refreshDelay));
  }
});
for (const kind of ['authorization_code.saved', 'access_token.saved', 'refresh_token.saved']) {
  provider.on(kind, (token) => {
    if (!token.accountId || !token.grantId) return;
    if (!grantsOf.has(token.accountId)) grantsOf.set(token.accountId, new Set());
    grantsOf.get(token.accountId).add(token.grantId);
  });
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/_test/events') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(events));
    return;
  }
  if (url.pathname === '/_test/revoke' && req.method === 'POST') {
    const account = url.searchParams.get('account');
    let revoked = 0;
    for (const grantId of grantsOf.get(account) ?? []) {
      await provider.AccessToken.adapter.revokeByGrantId(grantId);
      revoked += 1;
    }
    grantsOf.delete(account);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ revoked }));
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`Running on ${issuer}`);
});
