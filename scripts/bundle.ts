// `npm run build`'s second step: bundles src/main.ts and the dependencies it loads into dist/gatehouse/,
// what `npm start` runs. One module graph instead of ~600 files: V8 keeps every loaded module's source
// text in its heap, and most of that text is doc comments and code the proxy never calls (measured idle
// heap 35 → 14 MB, idle RSS 109 → 76 MiB). Identifiers are not minified, so stack traces keep the
// sources' function names; a linked source map leads back to src/ under `node --enable-source-maps`.
// The lazily imported parts (Redis client, OTLP exporter) stay separate chunks, loaded only when
// configured.
import { build, type Plugin } from "esbuild";
import { rmSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const outdir = path.join(root, "dist", "gatehouse");
rmSync(outdir, { recursive: true, force: true });

/**
 * `node:http` and `node:https` loaded with require() instead of an ES module import. Node builds an ES
 * module facade for an imported built-in by reading every export, and `node:http` exports WebSocket,
 * CloseEvent and MessageEvent as lazy getters: reading them loads Node's internal copy of undici (a
 * 0.76 MB script held as two-byte text, plus what it creates) although Gatehouse never uses them.
 */
const requireHttpModules: Plugin = {
  name: "require-http-modules",
  setup(b) {
    b.onResolve({ filter: /^(node:)?https?$/ }, (args) =>
      // (a dynamic import() stays one: a lazily imported CommonJS chunk would have only a default export)
      args.namespace === "require-http-modules" || args.kind === "dynamic-import"
        ? { path: args.path.startsWith("node:") ? args.path : `node:${args.path}`, external: true }
        : { path: args.path.replace(/^node:/, ""), namespace: "require-http-modules" });
    b.onLoad({ filter: /.*/, namespace: "require-http-modules" }, (args) =>
      ({ contents: `module.exports = require("node:${args.path}");`, loader: "js" }));
  },
};

/**
 * undici's HTTP/2 client asks for `node:http2` when it loads; Gatehouse creates its Agents with
 * `allowH2: false` (src/services/Upstream.ts), so the module is never used, yet loading it costs RSS
 * (measured: undici's Agent alone in a bare process 58.0 → 52.7 MiB without it; Gatehouse idle,
 * where much of that is loaded anyway, 75.0 → 74.6 MiB). The bundle gives that one
 * import what undici itself falls back to on a Node built without HTTP/2: `{ constants: {} }`.
 */
const http2LeftOut: Plugin = {
  name: "http2-left-out",
  setup(b) {
    b.onResolve({ filter: /^(node:)?http2$/ }, (args) =>
      /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/.test(args.importer) ? { path: "http2", namespace: "http2-left-out" } : undefined);
    b.onLoad({ filter: /.*/, namespace: "http2-left-out" }, () =>
      ({ contents: "module.exports = { constants: {} };", loader: "js" }));
  },
};

await build({
  entryPoints: [path.join(root, "src", "main.ts")],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  // non-ASCII characters escaped: V8 stores a script whose text has any character above U+00FF as
  // two bytes per character
  charset: "ascii",
  // a package's ES module build before its CommonJS one: a dynamically imported CommonJS module comes out
  // of a split bundle with only a default export (the OTLP exporter's named export went missing), and
  // ES modules tree-shake
  mainFields: ["module", "main"],
  sourcemap: "linked",
  // whitespace and comments out (a single character above U+00FF in a kept comment made V8 hold the
  // whole 2 MB script as two bytes per character), identifiers kept: stack traces name functions
  minifyWhitespace: true,
  minifySyntax: true,
  // the dependencies' license notices go to <chunk>.LEGAL.txt beside each chunk, not into V8's heap
  legalComments: "external",
  logLevel: "warning",
  plugins: [requireHttpModules, http2LeftOut],
  // CommonJS dependencies (undici among them) call require() for Node's built-ins
  banner: { js: "import { createRequire as __gatehouseRequire } from \"node:module\";\nconst require = __gatehouseRequire(import.meta.url);" },
});
