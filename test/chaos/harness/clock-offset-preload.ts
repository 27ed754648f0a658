// Loaded with `node --import` into a process under test: shifts its wall clock (Date.now, new Date()) by the
// offset in ms written in the file named by OUTPOST_CHAOS_CLOCK_FILE, re-read every 100 ms, as an NTP step or
// a board without RTC would. Monotonic time (performance.now) is left alone, as the kernel leaves it.

import { readFileSync } from 'node:fs';

const file = process.env.OUTPOST_CHAOS_CLOCK_FILE;
if (file) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  let offsetMs = 0;
  const read = () => {
    try {
      const v = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(v)) offsetMs = v;
    } catch {
      // no file yet: no offset
    }
  };
  read();
  setInterval(read, 100).unref();
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offsetMs);
      else super(...(args as [number]));
    }
    static override now(): number {
      return realNow() + offsetMs;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
