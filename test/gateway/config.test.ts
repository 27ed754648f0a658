import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGatewayConfig } from '../../gateway/config.ts';

const MINIMAL = `
[gateway]
name = "ridge-1"

[[radio]]
name = "rnode0"
kind = "rnode"
path = "/dev/serial/by-id/usb-RNode-if00"
region = "EU868"
frequency_hz = 867_200_000
bandwidth_hz = 125_000
spreading_factor = 8
tx_power_dbm = 14
`;

const FULL = `${MINIMAL}
[[radio]]
name = "mesh0"
kind = "meshtastic"
path = "/dev/serial/by-id/usb-Heltec-if00"

[upstream]
url = "wss://cp.example.org/v1/wss"
tenant = "0e6c3a3d-952c-55af-be8a-3d562dcf52c7"
heartbeat_s = 20

[store]
max_mb = 128

[downlink]
beacon_interval_s = 600

[api]
metrics_listen = "127.0.0.1:9466"
`;

describe('gateway config', () => {
  it('fills defaults for a minimal file', () => {
    const c = parseGatewayConfig(MINIMAL);
    assert.equal(c.gateway.name, 'ridge-1');
    assert.equal(c.gateway.log_level, 'info');
    assert.equal(c.upstream, undefined);
    const r = c.radio[0]!;
    assert.equal(r.kind === 'rnode' && r.coding_rate, 5);
    assert.deepEqual(c.store, { max_mb: 64, max_age_days: 7, downlink_max_items: 10_000 });
    assert.equal(c.api.socket, 'gateway.sock');
    assert.equal(c.simulation.time_scale, 1);
  });

  it('reads every table of a full file', () => {
    const c = parseGatewayConfig(FULL);
    assert.equal(c.radio[1]!.kind, 'meshtastic');
    assert.equal(c.radio[1]!.kind === 'meshtastic' && c.radio[1]!.portnum, 256);
    assert.equal(c.upstream?.heartbeat_s, 20);
    assert.equal(c.upstream?.token_file, 'upstream.token');
    assert.equal(c.store.max_mb, 128);
    assert.equal(c.downlink.beacon_interval_s, 600);
    assert.equal(c.api.metrics_listen, '127.0.0.1:9466');
  });

  const bad: [string, string, RegExp][] = [
    ['TOML syntax', `${MINIMAL}\n[gateway`, /gateway\.toml:\d+:\d+/],
    ['unknown key', MINIMAL.replace('name = "ridge-1"', 'name = "ridge-1"\ncolour = "red"'), /colour/],
    ['bad name', MINIMAL.replace('ridge-1', 'Ridge_1'), /gateway\.name/],
    ['no radio', '[gateway]\nname = "x"\n', /radio/],
    ['unknown radio kind', MINIMAL.replace('kind = "rnode"', 'kind = "lorawan"'), /radio\[0\]/],
    [
      'spreading factor out of range',
      MINIMAL.replace('spreading_factor = 8', 'spreading_factor = 13'),
      /spreading_factor/,
    ],
    [
      'duplicate radio name',
      `${MINIMAL}\n[[radio]]\nname = "rnode0"\nkind = "meshtastic"\npath = "/dev/x"\n`,
      /used twice/,
    ],
    [
      'same path twice',
      `${MINIMAL}\n[[radio]]\nname = "m"\nkind = "meshtastic"\npath = "/dev/serial/by-id/usb-RNode-if00"\n`,
      /configured twice/,
    ],
    ['bad tenant', `${MINIMAL}\n[upstream]\nurl = "wss://x"\ntenant = "ACME"\n`, /upstream\.tenant/],
    [
      'http URL',
      `${MINIMAL}\n[upstream]\nurl = "https://x"\ntenant = "0e6c3a3d-952c-55af-be8a-3d562dcf52c7"\n`,
      /upstream\.url/,
    ],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseGatewayConfig(text),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'CONFIG_INVALID');
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
});
