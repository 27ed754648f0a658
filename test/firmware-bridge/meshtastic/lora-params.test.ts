// Meshtastic LoRa config → on-air modulation: presets, region slots, and time on air against the
// figures of RADIO_PROTOCOLS §3.2 and the firmware's well-known default frequencies.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  djb2,
  MESHTASTIC_HEADER_BYTES,
  meshtasticAirtimeMs,
  PresetNumber,
  primaryChannelName,
  RegionNumber,
  radioParamsFromLoRaConfig,
} from '../../../firmware-bridge/meshtastic/lora-params.ts';
import { createLoRaConfig } from '../../../firmware-bridge/meshtastic/protobuf.ts';

const preset = (region: number, modemPreset: number = PresetNumber.LONG_FAST) =>
  createLoRaConfig({ usePreset: true, region, modemPreset });

describe('meshtastic LoRa parameters', () => {
  const rows: [
    string,
    ReturnType<typeof createLoRaConfig>,
    string,
    Partial<ReturnType<typeof radioParamsFromLoRaConfig>>,
  ][] = [
    [
      'EU_868 LongFast: the single 250 kHz slot of sub-band P',
      preset(RegionNumber.EU_868),
      '',
      {
        freqHz: 869_525_000,
        bandwidthHz: 250_000,
        spreadingFactor: 11,
        codingRate: 5,
        txPowerDbm: 27,
        region: 'EU868',
      },
    ],
    [
      'US LongFast: slot 20 of 104 (906.875 MHz), from the hash of "LongFast"',
      preset(RegionNumber.US),
      '',
      { freqHz: 906_875_000, spreadingFactor: 11, txPowerDbm: 30, region: 'US915' },
    ],
    [
      'US MediumFast on a named channel hashes the channel name',
      preset(RegionNumber.US, PresetNumber.MEDIUM_FAST),
      'outpost',
      { freqHz: 902_125_000 + (djb2('outpost') % 104) * 250_000, spreadingFactor: 9 },
    ],
    [
      'an explicit frequency slot wins over the hash',
      createLoRaConfig({ usePreset: true, region: RegionNumber.US, channelNum: 1 }),
      '',
      { freqHz: 902_125_000 },
    ],
    [
      'override_frequency wins over everything',
      createLoRaConfig({ usePreset: true, region: RegionNumber.US, overrideFrequency: Math.fround(915.5) }),
      '',
      { freqHz: 915_500_000 },
    ],
    [
      'custom modulation uses the bandwidth codes',
      createLoRaConfig({ usePreset: false, region: 3, bandwidth: 62, spreadFactor: 8, codingRate: 6, txPower: 10 }),
      '',
      { bandwidthHz: 62_500, spreadingFactor: 8, codingRate: 6, txPowerDbm: 10 },
    ],
    [
      'a custom coding rate above the preset raises it',
      createLoRaConfig({ usePreset: true, region: 3, codingRate: 8 }),
      '',
      { codingRate: 8 },
    ],
    [
      'tx power above the region limit is clamped to it',
      createLoRaConfig({ usePreset: true, region: 3, txPower: 30 }),
      '',
      { txPowerDbm: 27 },
    ],
    ['an unknown region transmits under no particular law', preset(99), '', { region: 'ANY' }],
  ];
  for (const [name, lora, channel, expected] of rows) {
    it(name, () => {
      const p = radioParamsFromLoRaConfig(lora, channel);
      assert.deepEqual(Object.fromEntries(Object.keys(expected).map((k) => [k, p[k as keyof typeof p]])), expected);
      assert.equal(p.preambleSymbols, 16);
    });
  }

  it('names the primary channel like the firmware', () => {
    assert.equal(primaryChannelName(preset(3), ''), 'LongFast');
    assert.equal(primaryChannelName(preset(3, PresetNumber.SHORT_TURBO), ''), 'ShortTurbo');
    assert.equal(primaryChannelName(createLoRaConfig({ usePreset: false }), ''), 'Custom');
    assert.equal(primaryChannelName(preset(3), 'ops'), 'ops');
    assert.equal(djb2(''), 5381);
  });

  it('time on air matches RADIO_PROTOCOLS §3.2 for LongFast (16, 64, 200, 255 PHY bytes)', () => {
    const p = radioParamsFromLoRaConfig(preset(RegionNumber.EU_868));
    const ms = [16, 64, 200, 255].map((phy) => Math.round(meshtasticAirtimeMs(phy - MESHTASTIC_HEADER_BYTES, p)));
    assert.deepEqual(ms, [354, 723, 1747, 2157]);
  });
});
