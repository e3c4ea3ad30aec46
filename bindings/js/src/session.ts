/**
 * Report sessions (`tally-crypto/src/session.rs`): the frequent usage reports are encrypted
 * with the session key an authorization exported, so only the rare authorization pays for
 * public-key work. A message is XChaCha20-Poly1305 with a random 24-byte nonce sent in front of
 * the ciphertext; its direction (0 to the server, 1 to the client), its number (8 bytes,
 * big-endian) and the ticket are bound as associated data.
 */

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { randomBytes } from "@noble/ciphers/utils.js";

import { concat, fromBase64, toBase64, u64be, utf8 } from "./bytes.js";

/** Which way a message travels; bound to it, so a reply can never pass for a request. */
export const Direction = { ToServer: 0, ToClient: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

const NONCE_BYTES = 24;

/** The associated data of message `seq` of the session of `ticket`, going `direction`. */
export function messageAad(direction: Direction, seq: number, ticket: string): Uint8Array {
  return concat(Uint8Array.of(direction), u64be(seq), utf8(ticket));
}

/** Encrypts message `seq`; `nonce` is random unless given (test vectors only). */
export function sealMessage(
  key: Uint8Array,
  direction: Direction,
  seq: number,
  ticket: string,
  plaintext: Uint8Array,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): string {
  const ct = xchacha20poly1305(key, nonce, messageAad(direction, seq, ticket)).encrypt(plaintext);
  return toBase64(concat(nonce, ct));
}

/** Decrypts what {@link sealMessage} produced with the same direction, number and ticket. */
export function openMessage(
  key: Uint8Array,
  direction: Direction,
  seq: number,
  ticket: string,
  ciphertext: string,
): Uint8Array {
  const bytes = fromBase64(ciphertext);
  if (bytes.length < NONCE_BYTES) throw new Error("the message is too short");
  const nonce = bytes.subarray(0, NONCE_BYTES);
  return xchacha20poly1305(key, nonce, messageAad(direction, seq, ticket)).decrypt(
    bytes.subarray(NONCE_BYTES),
  );
}
