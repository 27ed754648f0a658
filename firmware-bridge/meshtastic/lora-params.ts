// What a Meshtastic radio's LoRa config means on air: modem presets, region bands, the frequency slot
// the firmware picks, and Meshtastic's time on air (16-byte header, 16-symbol preamble). Pure.
// [MT-FW src/mesh/MeshRadio.h modemPresetToParams, bwCodeToKHz; src/mesh/RadioInterface.cpp regions,
// applyModemConfig, hash; src/DisplayFormatters.cpp getModemPresetDisplayName]

import { timeOnAirMs } from '../airtime.ts';
import type { RadioParams, RegionCode } from '../radio.ts';
import type { LoRaConfig } from './protobuf.ts';

/** Every Meshtastic LoRa frame starts with this header (to, from, id, flags, channel hash, next hop, relay). */
export const MESHTASTIC_HEADER_BYTES = 16;
/** RadioInterface.h preambleLength. */
export const MESHTASTIC_PREAMBLE_SYMBOLS = 16;

interface Preset {
  readonly name: string;
  readonly bwKHz: number;
  readonly wideBwKHz: number;
  readonly sf: number;
  readonly cr: number;
}

/** Config.LoRaConfig.ModemPreset values with their modulation and display name. */
export const MODEM_PRESETS: Readonly<Record<number, Preset>> = Object.freeze({
  0: { name: 'LongFast', bwKHz: 250, wideBwKHz: 812.5, sf: 11, cr: 5 },
  1: { name: 'LongSlow', bwKHz: 125, wideBwKHz: 406.25, sf: 12, cr: 8 },
  2: { name: 'VLongSlow', bwKHz: 125, wideBwKHz: 406.25, sf: 12, cr: 8 },
  3: { name: 'MediumSlow', bwKHz: 250, wideBwKHz: 812.5, sf: 10, cr: 5 },
  4: { name: 'MediumFast', bwKHz: 250, wideBwKHz: 812.5, sf: 9, cr: 5 },
  5: { name: 'ShortSlow', bwKHz: 250, wideBwKHz: 812.5, sf: 8, cr: 5 },
  6: { name: 'ShortFast', bwKHz: 250, wideBwKHz: 812.5, sf: 7, cr: 5 },
  7: { name: 'LongMod', bwKHz: 125, wideBwKHz: 406.25, sf: 11, cr: 8 },
  8: { name: 'ShortTurbo', bwKHz: 500, wideBwKHz: 1625, sf: 7, cr: 5 },
  9: { name: 'LongTurbo', bwKHz: 500, wideBwKHz: 1625, sf: 11, cr: 8 },
});

interface Region {
  readonly name: string;
  readonly startMHz: number;
  readonly endMHz: number;
  readonly powerLimitDbm: number;
  readonly wideLora: boolean;
}

/** Config.LoRaConfig.RegionCode values of the standard band profile (no channel spacing or padding). */
export const REGIONS: Readonly<Record<number, Region>> = Object.freeze({
  0: { name: 'UNSET', startMHz: 902, endMHz: 928, powerLimitDbm: 30, wideLora: false },
  1: { name: 'US', startMHz: 902, endMHz: 928, powerLimitDbm: 30, wideLora: false },
  2: { name: 'EU_433', startMHz: 433, endMHz: 434, powerLimitDbm: 10, wideLora: false },
  3: { name: 'EU_868', startMHz: 869.4, endMHz: 869.65, powerLimitDbm: 27, wideLora: false },
  4: { name: 'CN', startMHz: 470, endMHz: 510, powerLimitDbm: 19, wideLora: false },
  5: { name: 'JP', startMHz: 920.5, endMHz: 923.5, powerLimitDbm: 13, wideLora: false },
  6: { name: 'ANZ', startMHz: 915, endMHz: 928, powerLimitDbm: 30, wideLora: false },
  7: { name: 'KR', startMHz: 920, endMHz: 923, powerLimitDbm: 23, wideLora: false },
  8: { name: 'TW', startMHz: 920, endMHz: 925, powerLimitDbm: 27, wideLora: false },
  9: { name: 'RU', startMHz: 868.7, endMHz: 869.2, powerLimitDbm: 20, wideLora: false },
  10: { name: 'IN', startMHz: 865, endMHz: 867, powerLimitDbm: 30, wideLora: false },
  11: { name: 'NZ_865', startMHz: 864, endMHz: 868, powerLimitDbm: 36, wideLora: false },
  12: { name: 'TH', startMHz: 920, endMHz: 925, powerLimitDbm: 27, wideLora: false },
  13: { name: 'LORA_24', startMHz: 2400, endMHz: 2483.5, powerLimitDbm: 10, wideLora: true },
  14: { name: 'UA_433', startMHz: 433, endMHz: 434.7, powerLimitDbm: 10, wideLora: false },
  16: { name: 'MY_433', startMHz: 433, endMHz: 435, powerLimitDbm: 20, wideLora: false },
  17: { name: 'MY_919', startMHz: 919, endMHz: 924, powerLimitDbm: 27, wideLora: false },
  18: { name: 'SG_923', startMHz: 917, endMHz: 925, powerLimitDbm: 20, wideLora: false },
  19: { name: 'PH_433', startMHz: 433, endMHz: 434.7, powerLimitDbm: 10, wideLora: false },
  20: { name: 'PH_868', startMHz: 868, endMHz: 869.4, powerLimitDbm: 14, wideLora: false },
  21: { name: 'PH_915', startMHz: 915, endMHz: 918, powerLimitDbm: 24, wideLora: false },
  22: { name: 'ANZ_433', startMHz: 433.05, endMHz: 434.79, powerLimitDbm: 14, wideLora: false },
  23: { name: 'KZ_433', startMHz: 433.075, endMHz: 434.775, powerLimitDbm: 10, wideLora: false },
  24: { name: 'KZ_863', startMHz: 863, endMHz: 868, powerLimitDbm: 30, wideLora: false },
  25: { name: 'NP_865', startMHz: 865, endMHz: 868, powerLimitDbm: 30, wideLora: false },
  26: { name: 'BR_902', startMHz: 902, endMHz: 907.5, powerLimitDbm: 30, wideLora: false },
});

export const RegionNumber = { UNSET: 0, US: 1, EU_868: 3 } as const;
export const PresetNumber = { LONG_FAST: 0, MEDIUM_FAST: 4, SHORT_FAST: 6, SHORT_TURBO: 8 } as const;

/** Custom bandwidth codes the firmware stores in LoRaConfig.bandwidth, in kHz. */
function bandwidthKHz(code: number): number {
  const codes: Record<number, number> = {
    8: 7.8,
    10: 10.4,
    16: 15.6,
    21: 20.8,
    31: 31.25,
    42: 41.7,
    62: 62.5,
    200: 203.125,
    400: 406.25,
    800: 812.5,
    1600: 1625,
  };
  return code === 0 ? 250 : (codes[code] ?? code);
}

/** djb2, the hash the firmware uses to pick a frequency slot from a channel name. */
export function djb2(text: string): number {
  let h = 5381;
  for (const b of new TextEncoder().encode(text)) h = (Math.imul(h, 33) + b) >>> 0;
  return h;
}

/** The name the firmware hashes for the primary channel: its own name, else the preset's display name. */
export function primaryChannelName(lora: LoRaConfig, channelName: string): string {
  if (channelName.length > 0) return channelName;
  if (!lora.usePreset) return 'Custom';
  return MODEM_PRESETS[lora.modemPreset]?.name ?? 'Invalid';
}

function regulatoryRegion(region: number): RegionCode {
  if (region === RegionNumber.EU_868) return 'EU868';
  if (region === RegionNumber.US) return 'US915';
  return 'ANY';
}

/**
 * The modulation a radio with this LoRa config transmits with. `channelName` is the primary channel's
 * name (empty for the default channel). Regions outside the standard profile report region 'ANY'.
 */
export function radioParamsFromLoRaConfig(lora: LoRaConfig, channelName = ''): RadioParams {
  const region = REGIONS[lora.region] ?? REGIONS[RegionNumber.UNSET]!;
  let bwKHz: number;
  let sf: number;
  let cr: number;
  if (lora.usePreset) {
    const p = MODEM_PRESETS[lora.modemPreset] ?? MODEM_PRESETS[PresetNumber.LONG_FAST]!;
    bwKHz = region.wideLora ? p.wideBwKHz : p.bwKHz;
    sf = p.sf;
    // A custom coding rate above the preset's wins (applyModemConfig).
    cr = lora.codingRate > p.cr && lora.codingRate <= 8 ? lora.codingRate : p.cr;
  } else {
    bwKHz = bandwidthKHz(lora.bandwidth);
    sf = lora.spreadFactor >= 5 && lora.spreadFactor <= 12 ? lora.spreadFactor : 11;
    cr = lora.codingRate >= 5 && lora.codingRate <= 8 ? lora.codingRate : 5;
  }
  const txPowerDbm = lora.txPower === 0 || lora.txPower > region.powerLimitDbm ? region.powerLimitDbm : lora.txPower;
  let freqMHz: number;
  if (lora.overrideFrequency > 0) {
    freqMHz = lora.overrideFrequency;
  } else {
    const slotWidth = bwKHz / 1000;
    const slots = Math.max(1, Math.round((region.endMHz - region.startMHz) / slotWidth));
    const slot =
      lora.channelNum > 0 && lora.channelNum <= slots
        ? lora.channelNum - 1
        : djb2(primaryChannelName(lora, channelName)) % slots;
    freqMHz = region.startMHz + bwKHz / 2000 + slot * slotWidth;
  }
  freqMHz += lora.frequencyOffset;
  return {
    freqHz: Math.round(freqMHz * 1e6),
    bandwidthHz: Math.round(bwKHz * 1000),
    spreadingFactor: sf,
    codingRate: cr,
    txPowerDbm,
    preambleSymbols: MESHTASTIC_PREAMBLE_SYMBOLS,
    region: regulatoryRegion(lora.region),
  };
}

/** Time on air of one Meshtastic frame carrying `dataBytes` of encoded (encrypted) Data, in ms. */
export function meshtasticAirtimeMs(dataBytes: number, params: RadioParams): number {
  return timeOnAirMs(MESHTASTIC_HEADER_BYTES + dataBytes, params);
}
