// Runs the MCP conformance suite on Node 20: its bundle imports `globSync`
// from `fs` (Node 22), used only to find `checks.json` files when it grades
// a results directory. This hook gives it a small stand-in, so the suite
// itself runs unchanged.
//
//   node --import ./conformance_node20.mjs node_modules/@modelcontextprotocol/conformance/dist/index.js ...

import { register } from 'node:module';

register('./conformance_node20_hooks.mjs', import.meta.url);
