// V8 flags every Outpost process runs with: embedded in the single binary (its SEA config's execArgv) and passed by
// the demo when it runs from source, so that what the soak measures is what a Pi runs.

/**
 * V8 grows its young generation with the allocation rate, up to 16 MiB per semi-space on 64-bit, and keeps it
 * committed: a telemetry burst (a backhaul coming back) left a control plane 13 MiB larger for good. 4 MiB keeps
 * scavenges cheap and the resident footprint flat (docs/benchmarks.md §Soak).
 */
export const RUNTIME_V8_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
