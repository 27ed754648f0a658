// The machine a measurement ran on: CPU model, cores, RAM, kernel, Node version and load, so that
// every published figure carries its context (docs/benchmarks.md).

import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, version } from 'node:os';

export interface MachineDescription {
  readonly cpuModel: string;
  /** Logical CPUs the OS reports. */
  readonly cpus: number;
  /** CPUs this process may use (cgroup or affinity limits included). */
  readonly availableCpus: number;
  /** cgroup v2 cpu.max quota as CPUs, when one is set. */
  readonly cgroupCpuLimit?: number;
  readonly ramBytes: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly arch: string;
  /** 1, 5 and 15 minute load averages when described. */
  readonly loadAvg: readonly [number, number, number];
}

function cgroupCpuLimit(): number | undefined {
  try {
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(/\s+/);
    if (!quota || quota === 'max' || !period) return undefined;
    return Number(quota) / Number(period);
  } catch {
    return undefined; // no cgroup v2 here: no limit to report
  }
}

export function describeMachine(): MachineDescription {
  const list = cpus();
  const limit = cgroupCpuLimit();
  const [l1, l5, l15] = loadavg();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpus: list.length,
    availableCpus: availableParallelism(),
    ...(limit !== undefined ? { cgroupCpuLimit: limit } : {}),
    ramBytes: totalmem(),
    kernel: release(),
    os: version(),
    node: process.version,
    arch: process.arch,
    loadAvg: [l1 ?? 0, l5 ?? 0, l15 ?? 0],
  };
}

/** One line: "AMD EPYC 7B13, 2 CPUs, 23.5 GiB RAM, Linux 6.8.0, Node v22.23.3 (x64), load 1.2". */
export function machineLine(m: MachineDescription): string {
  const gib = (m.ramBytes / 2 ** 30).toFixed(1);
  const cpusText = m.availableCpus === m.cpus ? `${m.cpus} CPUs` : `${m.availableCpus} of ${m.cpus} CPUs`;
  const quota = m.cgroupCpuLimit !== undefined ? ` (cgroup quota ${m.cgroupCpuLimit} CPUs)` : '';
  return `${m.cpuModel}, ${cpusText}${quota}, ${gib} GiB RAM, Linux ${m.kernel}, Node ${m.node} (${m.arch}), load ${m.loadAvg.map((x) => x.toFixed(1)).join(' / ')}`;
}
