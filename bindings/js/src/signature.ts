/**
 * Ed25519 as the Rust side checks it (`ed25519-dalek`'s `verify_strict`): canonical encodings
 * only (RFC 8032, not ZIP-215), and no small-order public key or commitment, so a signature
 * verifies here exactly when it verifies on the server and in the other SDKs.
 */

import { ed25519 } from "@noble/curves/ed25519.js";

import { fromBase64 } from "./bytes.js";

/** An Ed25519 public key from base64 (surrounding spaces ignored); throws when it is not one. */
export function verifyingKey(text: string): Uint8Array {
  const bytes = fromBase64(text.trim());
  if (bytes.length !== 32 || !ed25519.utils.isValidPublicKey(bytes, false)) {
    throw new Error("not a valid Ed25519 public key");
  }
  return bytes;
}

function smallOrder(encoded: Uint8Array): boolean {
  try {
    return ed25519.Point.fromBytes(encoded, false).isSmallOrder();
  } catch {
    return true;
  }
}

/** Strict verification of a 64-byte signature of `message` by `publicKey`. */
export function verifyStrict(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (smallOrder(publicKey) || smallOrder(signature.subarray(0, 32))) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
