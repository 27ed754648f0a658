// A throwaway self-signed Ed25519 X.509 certificate for a loopback TLS listener (the self-test's WSS round
// trip), DER-encoded by hand (RFC 5280 §4.1, RFC 8410) because node:crypto can sign but not issue certificates.

import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  return Buffer.concat([Uint8Array.of(tag), derLength(body.length), body]);
}

const seq = (...parts: Uint8Array[]) => der(0x30, ...parts);

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out: number[] = [a! * 40 + b!];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Uint8Array.from(out));
}

/** A random serial number: 16 bytes, first byte 0x40–0x7f, so the DER INTEGER is positive and minimal (§4.1.2.2). */
function randomSerial(): Uint8Array {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return der(0x02, bytes);
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time(ms: number): Uint8Array {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = new Date(ms).getUTCFullYear();
  if (year >= 1950 && year < 2050) return der(0x17, Buffer.from(digits.slice(2), 'latin1'));
  return der(0x18, Buffer.from(digits, 'latin1'));
}

const ED25519 = seq(oid('1.3.101.112'));

function commonName(cn: string): Uint8Array {
  return seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn, 'utf8')))));
}

export interface SelfSignedCert {
  /** PEM certificate: give it to the client as its only trusted CA. */
  certPem: string;
  /** PEM PKCS#8 private key: give it to the server only; it lives in memory and dies with the process. */
  keyPem: string;
}

/**
 * Issues a self-signed Ed25519 certificate for IP 127.0.0.1 (subjectAltName), valid from `nowMs` - 1 h to
 * `nowMs` + 1 h, so a board without an RTC still verifies it against its own (possibly wrong) clock.
 */
export function selfSignedLoopbackCert(nowMs: number, commonNameText = 'outpost-selftest'): SelfSignedCert {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const hourMs = 3_600_000;
  const subjectAltName = seq(oid('2.5.29.17'), der(0x04, seq(der(0x87, Uint8Array.of(127, 0, 0, 1)))));
  const tbs = seq(
    der(0xa0, der(0x02, Uint8Array.of(2))), // version v3
    randomSerial(),
    ED25519,
    commonName(commonNameText),
    seq(time(nowMs - hourMs), time(nowMs + hourMs)),
    commonName(commonNameText),
    spki,
    der(0xa3, seq(subjectAltName)),
  );
  const signature = sign(null, tbs, privateKey);
  const cert = seq(tbs, ED25519, der(0x03, Uint8Array.of(0), signature));
  const b64 = Buffer.from(cert)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}
