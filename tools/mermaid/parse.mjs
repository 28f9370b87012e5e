// Parse Mermaid files with Mermaid's own parser, as code hosts do before drawing a diagram.
//
// Usage: node parse.mjs [--dump] FILE.mmd ...
// Prints one JSON line per file: {"file", "ok", "type", "error"}; with --dump also what Mermaid read:
// "vertices" [id, text, shape], "edges" [from, to, text, stroke], "subgraphs" [id, title, member ids]
// (entity codes such as #35; decoded to HTML character references, &#35;, as Mermaid draws them).
// Exits 0 when every file parses, 1 otherwise.  Mermaid's default limits apply (at most 500 edges), as
// on GitHub; ARCHDSL_MERMAID_MAX_EDGES=N raises the edge limit to check the syntax of larger diagrams.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// Mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom provides one.
const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import("mermaid");
const maxEdges = Number(process.env.ARCHDSL_MERMAID_MAX_EDGES || 500);
mermaid.initialize({ startOnLoad: false, maxEdges });

// Mermaid hides entity codes behind private markers while parsing (mermaidAPI's encodeEntities).
const decode = (text) => String(text ?? "").replace(/ﬂ°°/g, "&#").replace(/ﬂ°/g, "&").replace(/¶ß/g, ";");

const args = process.argv.slice(2);
const dump = args[0] === "--dump";
let failed = 0;
for (const file of dump ? args.slice(1) : args) {
  const text = readFileSync(file, "utf8");
  const out = { file, ok: false, type: null, error: null };
  try {
    if (!dump) {
      out.type = (await mermaid.parse(text)).diagramType;
    } else {  // the same parse (mermaid.parse calls it), keeping the database it filled
      const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
      const db = diagram.db;
      out.type = diagram.type;
      out.vertices = [...db.getVertices().values()].map((v) => [v.id, decode(v.text), v.type]);
      out.edges = db.getEdges().map((e) => [e.start, e.end, decode(e.text), e.stroke]);
      out.subgraphs = db.getSubGraphs().map((s) => [s.id, decode(s.title), s.nodes]);
    }
    out.ok = true;
  } catch (err) {
    failed += 1;
    out.error = String((err && err.message) || err);
  }
  console.log(JSON.stringify(out));
}
// exitCode, not process.exit(): exiting at once could cut off output still queued for a pipe
process.exitCode = failed ? 1 : 0;
