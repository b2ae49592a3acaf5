/**
 * V8 settings for a proxy, applied before anything else loads (imported first by main.ts).
 *
 * `--external-memory-accounted-in-global-limit`: socket reads allocate a Buffer (external memory)
 * per 64 KiB; by default V8 answers that growth with a full mark-compact about 30 times per GB
 * relayed, each costing in proportion to the live heap. Counted in the global limit instead, a
 * tunnel moving 2 GB took 27 mark-compacts instead of 61, and about 25% less CPU per GB
 * (bench/README.md, "Latest figures"); request handling measured the same.
 *
 * `--no-allocation-site-pretenuring`: V8 moves an allocation site's objects straight into the old
 * generation once most of them survive a young collection (--trace-pretenuring). Under 1000
 * connections request-path sites crossed that threshold and were pretenured: short-lived objects
 * born old, whose pointers into the young generation then kept young garbage alive through every
 * scavenge until the next full GC (about 9 MB survived each scavenge, against 0.7 MB in the baseline
 * proxy; 1–2 MB with this flag). Off: GC time per request at 1000
 * connections 25 → 11 µs (bench/README.md, "Latest figures").
 *
 * `--no-maglev`: V8's mid-tier compiler off; functions go from the baseline tiers straight to
 * Turbofan. Maglev compiled much of the request path a second time, and its code, metadata and
 * compilation memory raised peak RSS at 1000 connections: 152–160 → 139–149 MiB with the flag, CPU per
 * request the same in the same-core A/B (1.005 with Maglev off as B; 0.942 and 1.009 with the flag
 * on the command line), bench/README.md, eighth session. The cost: after a cold start under full load,
 * full speed comes about a second later (Turbofan is the only optimising tier).
 *
 * `--max-semi-space-size=16` (the young generation's cap) and `--initial-old-space-size=32` (a floor
 * under the old generation's limit) are not here: V8 reads them only when the isolate is created, so
 * `npm start` passes them on the command line (README "Performance and tuning").
 */
import { setFlagsFromString } from "node:v8"

setFlagsFromString("--external-memory-accounted-in-global-limit")
setFlagsFromString("--no-allocation-site-pretenuring")
setFlagsFromString("--no-maglev")
