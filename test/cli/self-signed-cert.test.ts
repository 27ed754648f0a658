// The loopback certificate: parses as X.509, is self-signed, names 127.0.0.1, brackets the given clock, and a
// TLS client that trusts it completes a handshake while one that trusts another certificate does not.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { connect } from 'node:tls';
import { selfSignedLoopbackCert } from '../../cli/self-signed-cert.ts';

describe('selfSignedLoopbackCert', () => {
  it('is a self-signed Ed25519 certificate for IP 127.0.0.1, valid one hour either side of now', () => {
    const now = Date.UTC(2026, 10, 22, 12, 0, 0);
    const { certPem } = selfSignedLoopbackCert(now);
    const x = new X509Certificate(certPem);
    assert.equal(x.subject, 'CN=outpost-selftest');
    assert.equal(x.issuer, x.subject);
    assert.equal(x.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x.publicKey.asymmetricKeyType, 'ed25519');
    assert.ok(x.verify(x.publicKey), 'signed by its own key');
    assert.equal(Date.parse(x.validFrom), now - 3_600_000);
    assert.equal(Date.parse(x.validTo), now + 3_600_000);
  });

  const clocks: Array<[string, number]> = [
    ['a board without RTC at the epoch', 0],
    ['the 2049/2050 UTCTime boundary', Date.UTC(2049, 11, 31, 23, 30)],
    ['a GeneralizedTime year', Date.UTC(2071, 5, 1)],
  ];
  for (const [name, now] of clocks) {
    it(`encodes validity for ${name}`, () => {
      const x = new X509Certificate(selfSignedLoopbackCert(now).certPem);
      assert.equal(Date.parse(x.validFrom), now - 3_600_000);
      assert.equal(Date.parse(x.validTo), now + 3_600_000);
    });
  }

  async function handshake(trusted: string): Promise<string> {
    const served = selfSignedLoopbackCert(Date.now());
    const server = createServer({ key: served.keyPem, cert: served.certPem });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: trusted });
      try {
        return await new Promise<string>((resolve, reject) => {
          socket.once('secureConnect', () => resolve(socket.getProtocol() ?? ''));
          socket.once('error', reject);
        });
      } finally {
        socket.destroy();
      }
    } finally {
      server.close();
    }
  }

  it('completes a TLS 1.3 handshake with a client that trusts it, and only then', async () => {
    const served = selfSignedLoopbackCert(Date.now());
    const server = createServer({ key: served.keyPem, cert: served.certPem });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      const ok = connect({ host: '127.0.0.1', port, ca: served.certPem });
      await once(ok, 'secureConnect');
      assert.equal(ok.getProtocol(), 'TLSv1.3');
      ok.destroy();
    } finally {
      server.close();
    }
    await assert.rejects(
      handshake(selfSignedLoopbackCert(Date.now()).certPem),
      /self[- ]signed|unable to verify|certificate/i,
    );
  });
});

describe('selfSignedLoopbackCert serial numbers', () => {
  it('are positive, minimal DER integers of 16 bytes (parses every time)', () => {
    for (let i = 0; i < 300; i++) {
      const x = new X509Certificate(selfSignedLoopbackCert(Date.now()).certPem);
      assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
    }
  });
});
