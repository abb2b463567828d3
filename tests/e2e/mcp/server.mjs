// A real MCP server (the official TypeScript SDK's McpServer on its Streamable HTTP transport),
// stateless: one server and transport per request, as the SDK's stateless example does.
//   MODE=json  answers POSTs with application/json (enableJsonResponse: true)
//   MODE=sse   answers POSTs with text/event-stream
//   EXPECT_HEADER=name:value, EXPECT_QUERY=param=value   (optional) the credential an MCP gateway
//              must have injected: a request without it gets 401 and never reaches the server
// Listens on 127.0.0.1:PORT (0 = any), prints {"port": N} once ready, then one line
// {"received": <body>, "headers": {...}, "url": <target>, "method": M} per request it was given,
// so a test can tell what reached it.
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

const mode = process.env.MODE || "json";

function carriesCredential(req) {
  const header = process.env.EXPECT_HEADER;
  if (header) {
    const at = header.indexOf(":");
    if (req.headers[header.slice(0, at).toLowerCase()] !== header.slice(at + 1)) return false;
  }
  const query = process.env.EXPECT_QUERY;
  if (query) {
    const [name, value] = query.split("=");
    const params = new URL(req.url, "http://x").searchParams;
    if (params.getAll(name).length !== 1 || params.get(name) !== value) return false;
  }
  return true;
}

function makeServer() {
  const server = new McpServer({ name: "e2e-mcp", version: "1.0.0" });
  const text = (t) => ({ content: [{ type: "text", text: t }] });
  server.registerTool("search_repositories", { description: "search", inputSchema: { query: z.string() } },
    async ({ query }) => text(`searched:${query}`));
  server.registerTool("create_issue",
    { description: "create an issue", inputSchema: { owner: z.string(), repo: z.string(), title: z.string(),
      labels: z.array(z.string()).optional() } },
    async ({ owner, repo, title }) => text(`created:${owner}/${repo}:${title}`));
  server.registerTool("delete_repo", { description: "delete", inputSchema: { repo: z.string() } },
    async ({ repo }) => text(`deleted:${repo}`));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString("utf8");
  let body;
  const expecting = process.env.EXPECT_HEADER || process.env.EXPECT_QUERY;
  if (req.method === "POST" || expecting) {
    process.stdout.write(JSON.stringify({ received: raw, headers: req.headers, url: req.url, method: req.method }) + "\n");
    try { body = JSON.parse(raw); } catch { body = undefined; }
  }
  if (!carriesCredential(req)) {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "missing credential" }));
    return;
  }
  const server = makeServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined,
                                                        enableJsonResponse: mode === "json" });
  res.on("close", () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});

httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n");
});
