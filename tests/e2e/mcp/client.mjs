// A real MCP client (the official TypeScript SDK's Client on its Streamable HTTP transport) that
// reaches the server through iron-proxy used as an HTTP forward proxy (absolute-form requests to
// PROXY, as curl or Go do with HTTP_PROXY): Node's fetch has no proxy support, so the transport
// is given a small fetch made of node:http that streams the answer (server-sent events included).
//   URL    the MCP endpoint (http://127.0.0.1:PORT/mcp)
//   PROXY  host:port of the proxy's http_listen
//   STEPS  JSON list: [{"list": true} | {"call": name, "args": {...}}]
// Prints one JSON object: {"results": [...]} (each step's result, or {"error": message}).
import http from "node:http";
import { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [proxyHost, proxyPort] = process.env.PROXY.split(":");

function proxiedFetch(url, init = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    new Headers(init.headers || {}).forEach((v, k) => { headers[k] = v; });
    const req = http.request({ host: proxyHost, port: Number(proxyPort), method: init.method || "GET",
                               path: String(url), headers }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(", ") : v);
      const noBody = res.statusCode === 204 || res.statusCode === 304;
      resolve(new Response(noBody ? null : Readable.toWeb(res), { status: res.statusCode, headers: h }));
    });
    req.on("error", reject);
    if (init.signal) init.signal.addEventListener("abort", () => req.destroy(new Error("aborted")));
    if (init.body) req.write(init.body);
    req.end();
  });
}

const client = new Client({ name: "e2e-client", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(process.env.URL), { fetch: proxiedFetch });
const results = [];
try {
  await client.connect(transport);
  for (const step of JSON.parse(process.env.STEPS)) {
    try {
      if (step.list) {
        const r = await client.listTools();
        results.push({ tools: r.tools.map((t) => t.name) });
      } else {
        const r = await client.callTool({ name: step.call, arguments: step.args || {} });
        results.push({ content: r.content, isError: r.isError || false });
      }
    } catch (e) {
      results.push({ error: String(e.message || e), code: e.code });
    }
  }
} catch (e) {
  results.push({ connect_error: String(e.message || e) });
}
process.stdout.write(JSON.stringify({ results }) + "\n");
await transport.close().catch(() => {});
process.exit(0);
