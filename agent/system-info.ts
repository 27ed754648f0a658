// Facts about the board for `system.info`, the `system` sampler and `system.metrics.subscribe`. Reads
// systeminformation (pinned; never given any caller input) and the Raspberry Pi firmware's throttle word.

import { readFile, statfs } from 'node:fs/promises';
import { loadavg, uptime as osUptime } from 'node:os';

/** Where Raspberry Pi kernels expose the firmware's get_throttled word (hex). */
export const PI_THROTTLED_PATH = '/sys/devices/platform/soc/soc:firmware/get_throttled';

export interface Throttling {
  readonly raw: number;
  readonly underVoltageNow: boolean;
  readonly frequencyCappedNow: boolean;
  readonly throttledNow: boolean;
  readonly softTempLimitNow: boolean;
  readonly underVoltageOccurred: boolean;
  readonly frequencyCappedOccurred: boolean;
  readonly throttledOccurred: boolean;
  readonly softTempLimitOccurred: boolean;
}

/** Decodes the firmware's get_throttled bits (bits 0-3: now; bits 16-19: since boot). Pure. */
export function decodeThrottled(raw: number): Throttling {
  const bit = (n: number) => (raw & (1 << n)) !== 0;
  return {
    raw,
    underVoltageNow: bit(0),
    frequencyCappedNow: bit(1),
    throttledNow: bit(2),
    softTempLimitNow: bit(3),
    underVoltageOccurred: bit(16),
    frequencyCappedOccurred: bit(17),
    throttledOccurred: bit(18),
    softTempLimitOccurred: bit(19),
  };
}

/** One sample of the numbers the `system` sampler records. Null where the board does not say. */
export interface SystemSample {
  readonly cpu_temp_c: number | null;
  readonly load_1m: number;
  readonly load_5m: number;
  readonly mem_used_ratio: number;
  readonly disk_used_ratio: number | null;
  readonly uptime_s: number;
  readonly throttled: boolean | null;
}

export interface SystemInfo {
  readonly model: string;
  readonly manufacturer: string;
  readonly os: string;
  readonly kernel: string;
  readonly arch: string;
  readonly cpu: { readonly brand: string; readonly cores: number; readonly temp_c: number | null };
  readonly throttling: Throttling | null;
  readonly load: { readonly avg_1m: number; readonly avg_5m: number; readonly avg_15m: number };
  readonly memory: { readonly total_bytes: number; readonly available_bytes: number };
  readonly disk: { readonly path: string; readonly total_bytes: number; readonly free_bytes: number } | null;
  readonly uptime_s: number;
  readonly network: readonly {
    readonly iface: string;
    readonly ip4: string;
    readonly ip6: string;
    readonly mac: string;
    readonly up: boolean;
  }[];
}

export interface SystemInfoSource {
  info(): Promise<SystemInfo>;
  sample(): Promise<SystemSample>;
}

export interface SystemInfoOptions {
  /** The filesystem whose usage is reported (the state directory's). */
  readonly diskPath: string;
  readonly throttledPath?: string;
}

async function readThrottled(path: string): Promise<Throttling | null> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    const raw = Number.parseInt(text, 16);
    return /^(0x)?[0-9a-f]+$/i.test(text) && Number.isSafeInteger(raw) ? decodeThrottled(raw) : null;
  } catch {
    return null; // not a Raspberry Pi, or the firmware node is absent: the board does not say
  }
}

async function diskUsage(path: string): Promise<{ total: number; free: number } | null> {
  try {
    const s = await statfs(path);
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  } catch {
    return null;
  }
}

export function createSystemInfo(options: SystemInfoOptions): SystemInfoSource {
  const throttledPath = options.throttledPath ?? PI_THROTTLED_PATH;
  // Loaded on first use: the library is large and most agents call it rarely.
  let si: Promise<typeof import('systeminformation')> | undefined;
  const lib = () => {
    si ??= import('systeminformation');
    return si;
  };
  let staticInfo: Promise<Pick<SystemInfo, 'model' | 'manufacturer' | 'os' | 'kernel' | 'arch' | 'cpu'>> | undefined;

  async function cpuTemp(): Promise<number | null> {
    const t = await (await lib()).cpuTemperature();
    return typeof t.main === 'number' && Number.isFinite(t.main) && t.main > -100 ? t.main : null;
  }

  return {
    async info() {
      const s = await lib();
      staticInfo ??= Promise.all([s.system(), s.osInfo(), s.cpu()]).then(([sys, os, cpu]) => ({
        model: sys.raspberry?.type ? `Raspberry Pi ${sys.raspberry.type}` : sys.model,
        manufacturer: sys.manufacturer,
        os: `${os.distro} ${os.release}`.trim(),
        kernel: os.kernel,
        arch: os.arch,
        cpu: { brand: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, temp_c: null },
      }));
      const [base, temp, throttling, mem, disk, ifaces] = await Promise.all([
        staticInfo,
        cpuTemp(),
        readThrottled(throttledPath),
        s.mem(),
        diskUsage(options.diskPath),
        s.networkInterfaces(),
      ]);
      const [l1, l5, l15] = loadavg() as [number, number, number];
      return {
        ...base,
        cpu: { ...base.cpu, temp_c: temp },
        throttling,
        load: { avg_1m: l1, avg_5m: l5, avg_15m: l15 },
        memory: { total_bytes: mem.total, available_bytes: mem.available },
        disk: disk ? { path: options.diskPath, total_bytes: disk.total, free_bytes: disk.free } : null,
        uptime_s: Math.round(osUptime()),
        network: (Array.isArray(ifaces) ? ifaces : [ifaces])
          .filter((i) => !i.internal)
          .map((i) => ({ iface: i.iface, ip4: i.ip4, ip6: i.ip6, mac: i.mac, up: i.operstate === 'up' })),
      };
    },
    async sample() {
      const s = await lib();
      const [temp, throttling, mem, disk] = await Promise.all([
        cpuTemp(),
        readThrottled(throttledPath),
        s.mem(),
        diskUsage(options.diskPath),
      ]);
      const [l1, l5] = loadavg() as [number, number, number];
      const round = (n: number) => Math.round(n * 1000) / 1000;
      return {
        cpu_temp_c: temp,
        load_1m: round(l1),
        load_5m: round(l5),
        mem_used_ratio: mem.total > 0 ? round(1 - mem.available / mem.total) : 0,
        disk_used_ratio: disk && disk.total > 0 ? round(1 - disk.free / disk.total) : null,
        uptime_s: Math.round(osUptime()),
        throttled: throttling ? throttling.underVoltageNow || throttling.throttledNow : null,
      };
    },
  };
}
