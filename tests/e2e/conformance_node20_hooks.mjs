// Module hooks for conformance_node20.mjs: the suite's `fs` import of
// `globSync` becomes an import of `globSync` below.
import { readdirSync } from 'node:fs';
import path from 'node:path';

const SELF = import.meta.url;

/// `**/NAME` under `cwd`: every file called NAME, as paths relative to it.
export function globSync(pattern, options = {}) {
  const cwd = options.cwd ?? process.cwd();
  const name = pattern.replace(/^\*\*\//, '');
  return readdirSync(cwd, { recursive: true })
    .map(String)
    .filter((file) => path.basename(file) === name);
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!url.includes('/@modelcontextprotocol/conformance/dist/') || result.source == null) return result;
  const source = String(result.source);
  if (!source.includes('globSync as a,')) return result;
  // After the shebang line, which must stay first.
  const body = source.replace('globSync as a,', '');
  const cut = body.startsWith('#!') ? body.indexOf('\n') + 1 : 0;
  const patched = `${body.slice(0, cut)}import{globSync as a}from${JSON.stringify(SELF)};${body.slice(cut)}`;
  return { ...result, source: patched, shortCircuit: true };
}
