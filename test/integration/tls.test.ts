/**
 * TLS on both sides through the real proxy (issue 4). Listener (`server.tls`): protocol floor (RFC 8996:
 * TLS 1.0/1.1 deprecated), TLS 1.2 and 1.3 accepted, certificate reload on SIGHUP. Upstream HTTPS:
 * certificate validation on by default (threat: man-in-the-middle between proxy and origin), a custom
 * CA via `security.upstream_tls.ca`, and a per-route opt-out that is logged. Certificates are made with
 * `openssl` at test time.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { copyFileSync, readFileSync, writeFileSync } from "node:fs"
import { createSecureServer } from "node:http2"
import { connect as netConnect } from "node:net"
import { connect, type ConnectionOptions } from "node:tls"
import { runProgram, type StartedProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { pause, send } from "../fixtures/client.ts"
import { type CertFiles, makeCa, makeSelfSigned, startHttpsOrigin, type TestCa } from "../fixtures/tls.ts"

interface Handshake {
  readonly ok: boolean
  readonly protocol?: string | null
  readonly cn?: string | undefined
  readonly error?: string
}

/** One TLS handshake against 127.0.0.1:port; reports the protocol and the served certificate's CN. */
const handshake = (port: number, opts: ConnectionOptions): Promise<Handshake> =>
  new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port, servername: "localhost", ...opts }, () => {
      const cn = s.getPeerCertificate().subject?.CN
      resolve({ ok: true, protocol: s.getProtocol(), cn: Array.isArray(cn) ? cn[0] : cn })
      s.destroy()
    })
    s.on("error", (e) => resolve({ ok: false, error: e.message }))
  })

/** A TLS 1.1 client that can really speak TLS 1.1 (legacy ciphers allowed on its side). */
const TLS11 = { minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0", rejectUnauthorized: false } as const

describe("TLS listener (server.tls)", () => {
  let ca: TestCa
  let proxy: RunningProxy
  let proxy13: RunningProxy
  beforeAll(async () => {
    ca = makeCa()
    const leaf = ca.issue("gatehouse-listener")
    proxy = await startProxy({ routing: { default_backend: "" }, security: { filters_file: "" }, server: { tls: { enabled: true, cert: leaf.cert, key: leaf.key } } })
    proxy13 = await startProxy({
      routing: { default_backend: "" },
      security: { filters_file: "" },
      server: { tls: { enabled: true, cert: leaf.cert, key: leaf.key, min_version: "TLSv1.3" } }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await proxy13.stop()
  })

  it("control: the TLS 1.1 test client does complete a TLS 1.1 handshake with a server that allows it", async () => {
    const { createServer } = await import("node:tls")
    const { readFileSync } = await import("node:fs")
    const leaf = ca.issue("legacy")
    const legacy = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), minVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }, (s) => s.end())
    const port = await new Promise<number>((r) => legacy.listen(0, "127.0.0.1", () => r((legacy.address() as { port: number }).port)))
    try {
      expect(await handshake(port, TLS11)).toMatchObject({ ok: true, protocol: "TLSv1.1" })
    } finally {
      legacy.close()
    }
  })

  it("RFC 8996: a TLS 1.1 client is refused by the proxy", async () => {
    const r = await handshake(proxy.port, TLS11)
    expect(r.ok).toBe(false)
  })

  it("TLS 1.2 and TLS 1.3 clients are accepted; the certificate verifies against its CA", async () => {
    expect(await handshake(proxy.port, { ca: ca.caPem, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" })).toMatchObject({ ok: true, protocol: "TLSv1.2", cn: "gatehouse-listener" })
    expect(await handshake(proxy.port, { ca: ca.caPem, minVersion: "TLSv1.3", maxVersion: "TLSv1.3" })).toMatchObject({ ok: true, protocol: "TLSv1.3" })
  })

  it("min_version: TLSv1.3 refuses a TLS 1.2 client", async () => {
    expect((await handshake(proxy13.port, { ca: ca.caPem, maxVersion: "TLSv1.2" })).ok).toBe(false)
    expect((await handshake(proxy13.port, { ca: ca.caPem })).protocol).toBe("TLSv1.3")
  })

  it("RFC 9110 over TLS: HTTPS requests are served (health endpoint)", async () => {
    const r = await send(proxy.port, "/health/liveness", { tls: { ca: ca.caPem, servername: "localhost" } })
    expect(r.status).toBe(200)
  })

  it("the cipher list is honoured: a TLS 1.2 client offering only CBC (non-AEAD) suites is refused", async () => {
    const r = await handshake(proxy.port, { ca: ca.caPem, maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA" })
    expect(r.ok).toBe(false)
  })
})

describe("TLS listener certificate reload on SIGHUP (the real program)", () => {
  let ca: TestCa
  let first: CertFiles
  let prog: StartedProgram
  beforeAll(async () => {
    ca = makeCa()
    first = ca.issue("first")
    const file = writeTempConfig(
      `server: {port: 0, tls: {enabled: true, cert: "${first.cert}", key: "${first.key}"}}\n` +
        `routing: {default_backend: ""}\nlogging: {format: json, level: info}\nmetrics: {enabled: false}\nsecurity: {filters_file: ""}\n`
    )
    prog = await startProgram(["--config", file])
  })
  afterAll(() => { prog.child.kill("SIGKILL") })

  const servedCn = async () => (await handshake(prog.port, { ca: ca.caPem })).cn

  it("threat: handshake slowloris — a connection that stalls before or inside its ClientHello is closed at timeouts.read, not after Node's 120 s", async () => {
    const leaf = ca.issue("gatehouse-listener")
    const p = await startProxy({
      routing: { default_backend: "" },
      security: { filters_file: "" },
      server: { timeouts: { read: "300ms" }, tls: { enabled: true, cert: leaf.cert, key: leaf.key } }
    })
    try {
      const stalled = [Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01])].map((bytes) => {
        const c = { closed: false }
        const s = netConnect(p.port, "127.0.0.1", () => { if (bytes.length > 0) s.write(bytes) })
        s.on("error", () => {})
        s.on("close", () => { c.closed = true })
        return c
      })
      await expect.poll(() => stalled.every((c) => c.closed), { timeout: 5000 }).toBe(true)
    } finally {
      await p.stop()
    }
  })

  it("SIGHUP re-reads cert and key: new connections get the new certificate", async () => {
    expect(await servedCn()).toBe("first")
    const second = ca.issue("second")
    copyFileSync(second.cert, first.cert)
    copyFileSync(second.key, first.key)
    prog.child.kill("SIGHUP")
    let cn = await servedCn()
    for (let i = 0; i < 50 && cn !== "second"; i++) {
      await pause(100)
      cn = await servedCn()
    }
    expect(cn).toBe("second")
    expect(prog.output()).toContain("TLS certificate reloaded")
  })

  it("a broken certificate file on SIGHUP is logged and the current certificate stays", async () => {
    const before = prog.output().length
    writeFileSync(first.cert, "not a certificate\n")
    prog.child.kill("SIGHUP")
    for (let i = 0; i < 50 && !prog.output().slice(before).includes("TLS certificate reload failed"); i++) await pause(100)
    expect(prog.output().slice(before)).toContain("TLS certificate reload failed")
    expect(await servedCn()).toBe("second")
    expect(prog.child.exitCode).toBeNull()
  })
})

describe("upstream HTTPS certificate validation", () => {
  let ca: TestCa
  let selfSigned: { port: number; url: string; close: () => Promise<void> }
  let caSigned: { port: number; url: string; close: () => Promise<void> }
  const routes = () => ({
    default_backend: "",
    rules: [
      { match: { path_prefix: "/self" }, forward: { target: selfSigned.url } },
      { match: { path_prefix: "/ca" }, forward: { target: caSigned.url } }
    ]
  })
  beforeAll(async () => {
    ca = makeCa()
    selfSigned = await startHttpsOrigin(makeSelfSigned())
    caSigned = await startHttpsOrigin(ca.issue("localhost"))
  })
  afterAll(async () => {
    await selfSigned.close()
    await caSigned.close()
  })

  it("threat: MITM upstream — validation is on by default: self-signed or unknown-CA origin → 502 (reason tls)", async () => {
    const proxy = await startProxy({ routing: routes(), security: { filters_file: "" } })
    try {
      for (const path of ["/self", "/ca"]) {
        const r = await send(proxy.port, path)
        expect(r.status, path).toBe(502)
        expect(r.json["detail"], path).toContain("tls")
      }
      // the forward proxy validates too
      const fwd = await send(proxy.port, `${selfSigned.url}/x`)
      expect(fwd.status).toBe(502)
    } finally {
      await proxy.stop()
    }
  })

  it("security.upstream_tls.ca trusts a custom CA (in addition to the public roots); self-signed stays refused", async () => {
    const proxy = await startProxy({ routing: routes(), security: { filters_file: "", upstream_tls: { ca: ca.caFile } } })
    try {
      const ok = await send(proxy.port, "/ca")
      expect(ok.status).toBe(200)
      expect(ok.body).toBe("secure hello")
      expect((await send(proxy.port, "/self")).status).toBe(502)
    } finally {
      await proxy.stop()
    }
  })

  it("RFC 9110 §3.7, §6.2: the upstream hop is HTTP/1.1 even when the origin offers h2 by ALPN (hop-by-hop rules, Upgrade and 100-continue stay HTTP/1.1's)", async () => {
    const files = ca.issue("localhost")
    const seen: Array<string> = []
    const h2 = createSecureServer({ cert: readFileSync(files.cert), key: readFileSync(files.key), allowHTTP1: true }, (req, res) => {
      seen.push(req.httpVersion)
      res.writeHead(200, { "content-type": "text/plain" })
      res.end(`over ${req.httpVersion}`)
    })
    const port = await new Promise<number>((resolve) => h2.listen(0, "127.0.0.1", () => resolve((h2.address() as { port: number }).port)))
    const proxy = await startProxy({
      routing: { default_backend: `https://localhost:${port}`, rules: [] },
      security: { filters_file: "", upstream_tls: { ca: ca.caFile } }
    })
    try {
      const r = await send(proxy.port, "/v")
      expect(r.status).toBe(200)
      expect(r.body).toBe("over 1.1")
      expect(seen).toEqual(["1.1"])
    } finally {
      await proxy.stop()
      h2.close()
    }
  })

  it("per-route tls_insecure_skip_verify: true reaches the self-signed origin and logs a warning at start-up", async () => {
    const file = writeTempConfig(
      `server: {port: 0}\nlogging: {format: json, level: info}\nmetrics: {enabled: false}\nsecurity: {filters_file: ""}\n` +
        `routing:\n  default_backend: ""\n  rules:\n` +
        `    - {match: {path_prefix: "/skip"}, forward: {target: "${selfSigned.url}"}, tls_insecure_skip_verify: true}\n` +
        `    - {match: {path_prefix: "/strict"}, forward: {target: "${selfSigned.url}"}}\n`
    )
    const prog = await startProgram(["--config", file])
    try {
      const ok = await send(prog.port, "/skip/a")
      expect(ok.status).toBe(200)
      expect(ok.body).toBe("secure hello")
      // only that route: the same origin on another route is still verified
      expect((await send(prog.port, "/strict/a")).status).toBe(502)
      expect(prog.output()).toContain("upstream TLS certificate verification disabled for a route")
    } finally {
      prog.child.kill("SIGKILL")
    }
  })
})

describe("TLS files are checked at start-up and by --check-config", () => {
  it("a key that does not match its certificate, a non-PEM file, a non-PEM CA bundle → exit 1 naming the key", async () => {
    const ca = makeCa()
    const a = ca.issue("a")
    const b = ca.issue("b")
    const mismatched = writeTempConfig(`server: {tls: {enabled: true, cert: "${a.cert}", key: "${b.key}"}}\nsecurity: {filters_file: ""}\n`)
    const r1 = await runProgram(["--config", mismatched, "--check-config"])
    expect(r1.code).toBe(1)
    expect(r1.stderr).toContain("server.tls")
    expect(r1.stderr).toMatch(/private key/)
    const notPem = writeTempConfig(`server: {tls: {enabled: true, cert: "${ca.dir}/srv1.csr", key: "${a.key}"}}\nsecurity: {filters_file: ""}\n`)
    expect((await runProgram(["--config", notPem, "--check-config"])).code).toBe(1)
    const badCa = writeTempConfig(`security: {filters_file: "", upstream_tls: {ca: "${a.key}"}}\n`)
    const r3 = await runProgram(["--config", badCa, "--check-config"])
    expect(r3.code).toBe(1)
    expect(r3.stderr).toContain("security.upstream_tls.ca")
    // and the good pair passes
    const good = writeTempConfig(`server: {tls: {enabled: true, cert: "${a.cert}", key: "${a.key}"}}\nsecurity: {filters_file: "", upstream_tls: {ca: "${ca.caFile}"}}\n`)
    expect((await runProgram(["--config", good, "--check-config"])).code).toBe(0)
  })
})
