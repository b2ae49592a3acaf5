/**
 * V8 settings for a proxy, applied before anything else loads (imported first by main.ts).
 *
 * `--external-memory-accounted-in-global-limit`: socket reads allocate a Buffer (external memory)
 * per 64 KiB; by default V8 answers that growth with a full mark-compact about 30 times per GB
 * relayed, each costing in proportion to the live heap. Counted in the global limit instead, a
 * tunnel moving 2 GB took 27 mark-compacts instead of 61, and about 25% less CPU per GB
 * (bench/README.md, "Latest figures"); request handling measured the same.
 */
import { setFlagsFromString } from "node:v8"

setFlagsFromString("--external-memory-accounted-in-global-limit")
