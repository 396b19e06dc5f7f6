#!/usr/bin/env node
// An MCP client on the official npm SDK (@modelcontextprotocol/sdk) that logs
// in through the gateway.
//
// The SDK does the OAuth work: on the 401 it discovers the protected resource
// metadata and the authorization server metadata, registers dynamically, builds
// the authorize URL (PKCE S256, `resource`, and `state` because this provider
// implements state()), and later exchanges the code and refreshes. This file
// supplies the OAuthClientProvider: in-memory storage, and a
// redirectToAuthorization() that walks the browser leg headlessly (lib.mjs).
//
// Then: tools/list, tools/call (echo, add, whoami_headers) through the gateway,
// a refresh (auth() with the stored refresh token, exactly what the SDK does
// when a request comes back 401), another call with the new access token.
// Prints one JSON line for the Rust test.
//
//   node client.mjs --url http://localhost:PORT/mcp/echo --username U --password P
//                   [--client-metadata-url https://…/client.json]

import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseArgs, walk } from './lib.mjs';

class E2EOAuthProvider {
  constructor({ redirectUri, clientName, username, password, clientMetadataUrl }) {
    this._redirectUri = redirectUri;
    // With a URL, the SDK uses it as the client id (a Client ID Metadata
    // Document) when the server advertises support, instead of registering.
    this.clientMetadataUrl = clientMetadataUrl;
    this.authorizeClientIds = [];
    this._clientName = clientName;
    this._credentials = { username, password };
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._discovery = undefined;
    this.tokenHistory = [];
    this.states = [];
    this.walks = [];
  }

  get redirectUrl() {
    return this._redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    const s = randomBytes(24).toString('base64url');
    this.states.push(s);
    return s;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenHistory.push(tokens);
  }

  async redirectToAuthorization(authorizationUrl) {
    this.authorizeClientIds.push(new URL(authorizationUrl.toString()).searchParams.get('client_id'));
    this.walks.push(
      await walk(authorizationUrl.toString(), {
        redirectUri: this._redirectUri,
        ...this._credentials,
        decision: 'approve',
      }),
    );
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }
}

function text(result) {
  return result.content.map((c) => c.text ?? '').join('');
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    redirectUri: 'http://127.0.0.1:33421/callback',
    clientName: 'cognigate e2e node client',
    text: 'hello from node',
  });
  for (const required of ['url', 'username', 'password']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  const serverUrl = new URL(args.url);
  const provider = new E2EOAuthProvider(args);
  const out = { client: 'node', sdk: '@modelcontextprotocol/sdk' };

  // First connection: 401 → discovery → registration → browser leg → UnauthorizedError.
  const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  try {
    await new Client({ name: 'cognigate-e2e-node', version: '1.0.0' }).connect(first);
    throw new Error('expected the gateway to demand authorization');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  const outcome = provider.walks.at(-1);
  if (!outcome || outcome.kind !== 'redirect' || !outcome.params.code) {
    throw new Error(`browser leg did not end with a code: ${JSON.stringify(outcome)}`);
  }
  if (outcome.params.state !== provider.states.at(-1)) {
    throw new Error(`state mismatch: sent ${provider.states.at(-1)}, got ${outcome.params.state}`);
  }
  out.iss = outcome.params.iss ?? null;
  out.consent_text = outcome.consentText;
  await first.finishAuth(outcome.params.code);
  const firstTokens = provider.tokens();

  // Second connection, authorized.
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  const client = new Client({ name: 'cognigate-e2e-node', version: '1.0.0' });
  await client.connect(transport);
  out.protocol_version = transport.protocolVersion ?? null;
  out.server_name = client.getServerVersion()?.name ?? null;
  const tools = await client.listTools();
  out.tools = tools.tools.map((t) => t.name).sort();
  out.echo = text(await client.callTool({ name: 'echo', arguments: { text: args.text } }));
  out.add = text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
  const headers = await client.callTool({ name: 'whoami_headers', arguments: {} });
  out.upstream_headers = headers.structuredContent ?? JSON.parse(text(headers) || '{}');

  // Refresh: with a refresh token stored, auth() runs the refresh_token grant.
  const result = await auth(provider, { serverUrl });
  const secondTokens = provider.tokens();
  out.refresh_result = result;
  out.add_after_refresh = text(await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } }));
  await client.close();

  out.authorizations = provider.walks.length;
  out.token_sets = provider.tokenHistory.length;
  out.token_type = firstTokens?.token_type ?? null;
  out.refreshed = Boolean(firstTokens && secondTokens && firstTokens.access_token !== secondTokens.access_token);
  out.refresh_token_rotated = Boolean(
    firstTokens?.refresh_token && secondTokens?.refresh_token && firstTokens.refresh_token !== secondTokens.refresh_token,
  );
  out.client_id = provider.clientInformation()?.client_id ?? null;
  out.authorize_client_ids = provider.authorizeClientIds;
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  process.exit(1);
});
