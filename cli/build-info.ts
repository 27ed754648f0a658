// Version facts for `outpost version`, the agent's hello and the binary's self-test.

import { createRequire } from 'node:module';

export interface BuildInfo {
  version: string;
  node: string;
  platform: string;
  arch: string;
}

/** The package version (inlined by the binary build), Node version and platform. */
export function buildInfo(): BuildInfo {
  const injected = (globalThis as { OUTPOST_VERSION?: string }).OUTPOST_VERSION;
  const version = injected ?? (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  return { version, node: process.versions.node, platform: process.platform, arch: process.arch };
}
