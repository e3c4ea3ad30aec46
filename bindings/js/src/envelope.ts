/**
 * End-to-end encryption of requests and replies (`tally-crypto/src/envelope.rs`), even over
 * plain HTTP. A request is sealed with HPKE (RFC 9180, base mode) to the server's X25519 key with
 * the suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (ids 0x0020, 0x0001,
 * 0x0003), `info` = `tally/v2 <purpose>` and no associated data. Both sides then export two
 * 32-byte keys from the HPKE context: `tally reply key` seals the one reply (ChaCha20-Poly1305,
 * a zero nonce: the key is used once) and `tally session key` is the report session's key.
 */

import { CipherSuite, HkdfSha256 } from "@hpke/core";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";

import { fromBase64, toBase64, utf8 } from "./bytes.js";
import { PROTOCOL_VERSION, type Envelope, type SealedResponse } from "./wire.js";

export const ENVELOPE_VERSION = PROTOCOL_VERSION;

export const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
});

/** The HPKE `info` of requests for `purpose` (an endpoint): a request sealed for one cannot be replayed to another. */
export function info(purpose: string): Uint8Array {
  return utf8(`tally/v${ENVELOPE_VERSION} ${purpose}`);
}

const ZERO_NONCE = new Uint8Array(12);

/** The keys one request exported: the reply's, and the report session's. */
export class ReplyKey {
  constructor(
    readonly reply: Uint8Array,
    readonly session: Uint8Array,
  ) {}

  /** Opens the reply to the request this key belongs to. */
  open(sealed: SealedResponse): Uint8Array {
    return chacha20poly1305(this.reply, ZERO_NONCE).decrypt(fromBase64(sealed.ct));
  }

  /** Seals a reply (the server's side; tests and vectors use it). */
  seal(plaintext: Uint8Array): SealedResponse {
    return { ct: toBase64(chacha20poly1305(this.reply, ZERO_NONCE).encrypt(plaintext)) };
  }
}

async function exportKeys(ctx: {
  export(label: ArrayBuffer | Uint8Array, length: number): Promise<ArrayBuffer>;
}): Promise<ReplyKey> {
  const reply = new Uint8Array(await ctx.export(utf8("tally reply key"), 32));
  const session = new Uint8Array(await ctx.export(utf8("tally session key"), 32));
  return new ReplyKey(reply, session);
}

/**
 * Seals `plaintext` for the server whose X25519 public key is `serverKey` (raw 32 bytes) and
 * keeps the keys to open its reply. `ephemeralSeed` fixes the ephemeral key (test vectors only).
 */
export async function sealRequest(
  serverKey: Uint8Array,
  purpose: string,
  plaintext: Uint8Array,
  ephemeralSeed?: Uint8Array,
): Promise<{ envelope: Envelope; replyKey: ReplyKey }> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(serverKey);
  const sender = await suite.createSenderContext({
    recipientPublicKey,
    info: info(purpose),
    ...(ephemeralSeed === undefined ? {} : { ekm: ephemeralSeed }),
  });
  const ct = new Uint8Array(await sender.seal(plaintext));
  const replyKey = await exportKeys(sender);
  return {
    envelope: {
      v: ENVELOPE_VERSION,
      enc: toBase64(new Uint8Array(sender.enc)),
      ct: toBase64(ct),
    },
    replyKey,
  };
}

/** Opens a request sealed to the X25519 secret key `serverSecret` (the server's side; vectors use it). */
export async function openRequest(
  serverSecret: Uint8Array,
  purpose: string,
  envelope: Envelope,
): Promise<{ plaintext: Uint8Array; replyKey: ReplyKey }> {
  if (envelope.v !== ENVELOPE_VERSION) {
    throw new Error(`unsupported envelope version ${envelope.v}`);
  }
  const recipientKey = await suite.kem.deserializePrivateKey(serverSecret);
  const recipient = await suite.createRecipientContext({
    recipientKey,
    enc: fromBase64(envelope.enc),
    info: info(purpose),
  });
  const plaintext = new Uint8Array(await recipient.open(fromBase64(envelope.ct)));
  return { plaintext, replyKey: await exportKeys(recipient) };
}
