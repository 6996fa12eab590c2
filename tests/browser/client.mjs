// An MCP client in a web page, as the MCP Inspector and web-based agents run one: the official
// TypeScript SDK's Client over Streamable HTTP, from a page on another origin than the server.
// Bundled for the browser by .ci/install-browser-client (esbuild); tests/api/browser.rs serves
// it in a page and loads that page in headless Chromium.
//
// The page's query names the server (`mcp`) and the bearer token (`token`). What the page
// could read is posted as JSON to its own origin's /result, where the test reads it:
//   - `challenge`: the 401's WWW-Authenticate, asked without a token (needs it exposed);
//   - `sessionId`: the session the SDK opened (needs Mcp-Session-Id exposed);
//   - `tools`: the tool names; `switchboards`: a tool's structured answer;
//   - `error`: what failed, when something did.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const result = {};
const show = () =>
  fetch('/result', { method: 'POST', body: JSON.stringify(result) });

async function run() {
  const params = new URLSearchParams(location.search);
  const url = new URL(params.get('mcp'));
  const unauthenticated = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  result.status = unauthenticated.status;
  result.challenge = unauthenticated.headers.get('www-authenticate');
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { authorization: `Bearer ${params.get('token')}` } },
  });
  const client = new Client({ name: 'browser-page', version: '1.0.0' });
  await client.connect(transport);
  result.sessionId = transport.sessionId ?? null;
  result.tools = (await client.listTools()).tools.map((t) => t.name);
  const answer = await client.callTool({ name: 'list_switchboards', arguments: {} });
  result.switchboards = answer.structuredContent ?? null;
  await transport.terminateSession();
  result.terminated = true;
}

run()
  .catch((e) => {
    result.error = String(e && e.message ? e.message : e);
  })
  .finally(show);
