/** Random identifiers, from the platform's secure random source (`crypto.getRandomValues`). */

import { randomBytes } from "@noble/ciphers/utils.js";

import { toHex } from "./bytes.js";

/** A random 128-bit id as 32 lowercase hex digits (request ids). */
export function randomId(): string {
  return toHex(randomBytes(16));
}

function format(bytes: Uint8Array): string {
  const hex = toHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A random UUID (version 4): the device id. */
export function uuidV4(): string {
  const b = randomBytes(16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  return format(b);
}

let lastMillis = 0;
let sequence = 0;

/**
 * A time-ordered UUID (version 7) for `millis`: report ids sort by the order they were made in
 * this page, also within one millisecond (a 12-bit sequence, RFC 9562 method 1).
 */
export function uuidV7(millis: number): string {
  let t = Math.max(0, Math.floor(millis));
  if (t <= lastMillis) {
    t = lastMillis;
    sequence += 1;
    if (sequence > 0xfff) {
      t += 1;
      sequence = 0;
    }
  } else {
    sequence = 0;
  }
  lastMillis = t;
  const b = randomBytes(16);
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = 0x70 | (sequence >> 8);
  b[7] = sequence & 0xff;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  return format(b);
}

export function isUuid(text: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text);
}
