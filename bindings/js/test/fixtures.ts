/**
 * Signed documents and grants made in the test with real keys, the way the vendor tool and the
 * server make them (`tally-crypto`), to exercise verification without a server.
 */

import { x25519 } from "@noble/curves/ed25519.js";
import { ed25519 } from "@noble/curves/ed25519.js";

import { concat, toBase64, utf8 } from "../src/bytes.js";
import { type DocumentKind, signedMessage } from "../src/documents.js";
import {
  ACTIVATED_FORMAT,
  CERTIFICATE_FORMAT,
  type Grant,
  LICENSE_FORMAT,
  type License,
  type LicenseItem,
  type ServerPublicIdentity,
  type SignedGrant,
} from "../src/wire.js";

export const T0 = 1_780_272_000; // 2026-06-01T00:00:00Z
export const DAY = 86_400;

export interface Keys {
  secret: Uint8Array;
  public: string;
}

export function signingKeys(): Keys {
  const secret = ed25519.utils.randomSecretKey();
  return { secret, public: toBase64(ed25519.getPublicKey(secret)) };
}

/** Armors and signs `payload` as `tally_crypto::document::seal` does. */
export function seal(kind: DocumentKind, payload: unknown, vendor: Keys): string {
  const signedPart = `-----BEGIN TALLY ${kind}-----\n${JSON.stringify(payload, null, 2)}\n-----BEGIN TALLY SIGNATURE-----\n`;
  const signature = ed25519.sign(signedMessage(signedPart), vendor.secret);
  return `${signedPart}${toBase64(signature)}\n-----END TALLY ${kind}-----\n`;
}

export interface Server {
  identity: ServerPublicIdentity;
  signing: Keys;
  encryptionSecret: Uint8Array;
}

export function server(uuid: string): Server {
  const signing = signingKeys();
  const encryptionSecret = x25519.utils.randomSecretKey();
  return {
    identity: {
      uuid,
      signing_key: signing.public,
      encryption_key: toBase64(x25519.getPublicKey(encryptionSecret)),
    },
    signing,
    encryptionSecret,
  };
}

export function item(id: string, overrides: Partial<LicenseItem> = {}): LicenseItem {
  return {
    id,
    product: "viewer",
    modules: ["pdf"],
    license_type: "per-domain",
    quantity: 3,
    start: T0 - DAY,
    end: T0 + 365 * DAY,
    grace_percent: 0,
    ...overrides,
  };
}

export function license(id: string, items: LicenseItem[]): License {
  return {
    format: LICENSE_FORMAT,
    license_id: id,
    organization: { id: "acme", name: "Acme Inc." },
    alias: `${id} alias`,
    issued_at: T0,
    items,
  };
}

export function certificate(
  vendor: Keys,
  licenseId: string,
  s: ServerPublicIdentity,
  at = T0,
): string {
  return seal(
    "SERVER CERTIFICATE",
    { format: CERTIFICATE_FORMAT, license_id: licenseId, server: s, activated_at: at },
    vendor,
  );
}

export function activated(
  vendor: Keys,
  l: License,
  servers: ServerPublicIdentity[],
  at = T0,
): string {
  return seal(
    "ACTIVATED LICENSE",
    {
      format: ACTIVATED_FORMAT,
      license: l,
      servers,
      activated_at: at,
      certificates: servers.map((s) => certificate(vendor, l.license_id, s, at)),
    },
    vendor,
  );
}

export function grant(s: Server, device: string, overrides: Partial<Grant> = {}): Grant {
  return {
    grant_id: "g-1",
    server_uuid: s.identity.uuid,
    device_uuid: device,
    organization: "acme",
    handshake_code: "shop",
    items: [
      {
        license_id: "L-1",
        item_id: "L-1-1",
        product: "viewer",
        modules: ["pdf"],
        license_type: "per-domain",
        end: T0 + 365 * DAY,
        grace_end: T0 + 372 * DAY,
      },
    ],
    issued_at: T0,
    valid_until: T0 + 7 * DAY,
    renew_at: T0 + DAY,
    ...overrides,
  };
}

/** Signs a grant as `tally_crypto::grant::sign_grant` does. */
export function signGrant(g: Grant, s: Server): SignedGrant {
  const payload = utf8(JSON.stringify(g));
  const signature = ed25519.sign(concat(utf8("tally-grant/1\n"), payload), s.signing.secret);
  return { payload: toBase64(payload), signature: toBase64(signature) };
}
