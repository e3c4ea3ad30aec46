/**
 * The chain of trust (`tally-sdk/src/verify.rs`). Only the vendor key is trusted a priori: a
 * server is trusted when a certificate the vendor signed names its keys (its hello shows them),
 * and a grant when that server signed it for this device and every granted item is in a license
 * the vendor activated for a set of servers that includes it, within what the vendor signed.
 */

import { concat, fromBase64, fromUtf8, utf8 } from "./bytes.js";
import { sameServer, verifyActivated, verifyCertificate } from "./documents.js";
import { ErrorCode, TallyError } from "./errors.js";
import { verifyingKey, verifyStrict } from "./signature.js";
import {
  type ActivatedLicense,
  type Grant,
  type GrantedItem,
  graceEnd,
  type LicenseItem,
  type ServerHello,
  type ServerPublicIdentity,
  type SignedGrant,
} from "./wire.js";

const GRANT_CONTEXT = utf8("tally-grant/1\n");

/** The problem with a hello's certificate, or `undefined` when it certifies exactly `server`. */
export function certificateProblem(
  vendorKey: Uint8Array,
  server: ServerPublicIdentity,
  certificate: string | undefined,
): string | undefined {
  if (certificate === undefined) {
    return "the server shows no license the vendor activated for it";
  }
  try {
    if (!sameServer(verifyCertificate(certificate, vendorKey).server, server)) {
      return "the server's certificate names other keys than the server shows";
    }
  } catch (e) {
    return `the server's certificate is not the vendor's: ${(e as Error).message}`;
  }
  return undefined;
}

/**
 * Whether a server's hello proves it to the vendor key: its identity and X25519 key (raw bytes),
 * or the problem, for which the server is not trusted (`1007 server_not_trusted`).
 */
export function trustedHello(
  vendorKey: Uint8Array,
  hello: ServerHello,
): { identity: ServerPublicIdentity; encryptionKey: Uint8Array } | { problem: string } {
  const identity: ServerPublicIdentity = {
    uuid: hello.uuid,
    signing_key: hello.signing_key,
    encryption_key: hello.encryption_key,
  };
  const problem = certificateProblem(vendorKey, identity, hello.certificate);
  if (problem !== undefined) return { problem };
  try {
    const encryptionKey = fromBase64(hello.encryption_key.trim());
    if (encryptionKey.length !== 32) return { problem: "the server's X25519 key is not 32 bytes" };
    return { identity, encryptionKey };
  } catch (e) {
    return { problem: `the server's X25519 key is malformed: ${(e as Error).message}` };
  }
}

/** Verifies the server's signature on a grant and parses it. */
export function verifyGrantSignature(signed: SignedGrant, serverKey: Uint8Array): Grant {
  const payload = fromBase64(signed.payload);
  const signature = fromBase64(signed.signature);
  if (!verifyStrict(serverKey, concat(GRANT_CONTEXT, payload), signature)) {
    throw new Error("the grant is not signed by the server");
  }
  return JSON.parse(fromUtf8(payload)) as Grant;
}

function invalid(message: string): TallyError {
  return new TallyError(ErrorCode.GrantInvalid, message);
}

/**
 * Verifies `signed` for device `device`: signed by `server`, which `certificates` (activated
 * license files) prove, every item backed by one of them. Any failure is `1002 grant_invalid`.
 */
export function verifyGrant(
  vendorKey: Uint8Array,
  server: ServerPublicIdentity,
  certificates: string[],
  signed: SignedGrant,
  device: string,
): Grant {
  const licenses: ActivatedLicense[] = [];
  for (const text of certificates) {
    try {
      const activated = verifyActivated(text, vendorKey);
      if (activated.servers.some((s) => sameServer(s, server))) licenses.push(activated);
    } catch {
      // Files that do not verify or name another server are ignored, whatever they claim.
    }
  }
  if (licenses.length === 0) {
    throw invalid("no license activated by the vendor for this server comes with the grant");
  }
  let serverKey: Uint8Array;
  try {
    serverKey = verifyingKey(server.signing_key);
  } catch (e) {
    throw invalid(`the server signing key is malformed: ${(e as Error).message}`);
  }
  let grant: Grant;
  try {
    grant = verifyGrantSignature(signed, serverKey);
  } catch (e) {
    throw invalid(`the grant is not signed by the server: ${(e as Error).message}`);
  }
  if (grant.server_uuid !== server.uuid) {
    throw invalid(`the grant names server ${grant.server_uuid}, not ${server.uuid}`);
  }
  if (grant.device_uuid !== device) {
    throw invalid(`the grant was issued to device ${grant.device_uuid}, not to this one`);
  }
  if (!Array.isArray(grant.items) || grant.items.length === 0) {
    throw invalid("the grant holds no license item");
  }
  let latestEnd = -Infinity;
  for (const item of grant.items) {
    const signedItem = licensedItem(licenses, item);
    if (signedItem === undefined) {
      throw invalid(
        `item ${item.item_id} of license ${item.license_id} is not in any license the vendor activated for this server`,
      );
    }
    if (!within(item, signedItem)) {
      throw invalid(`item ${item.item_id} claims more than the vendor's license grants`);
    }
    latestEnd = Math.max(latestEnd, graceEnd(signedItem));
  }
  if (grant.valid_until > latestEnd) {
    throw invalid("the grant claims validity beyond the end of its licenses and their grace");
  }
  return grant;
}

function licensedItem(licenses: ActivatedLicense[], item: GrantedItem): LicenseItem | undefined {
  return licenses
    .filter((l) => l.license.license_id === item.license_id)
    .flatMap((l) => l.license.items)
    .find((i) => i.id === item.item_id);
}

/** The granted item is the signed one or a restriction of it. */
function within(granted: GrantedItem, signed: LicenseItem): boolean {
  const modules = new Set(signed.modules ?? []);
  return (
    granted.product === signed.product &&
    granted.license_type === signed.license_type &&
    granted.end <= signed.end &&
    granted.grace_end <= graceEnd(signed) &&
    granted.modules.every((m) => modules.has(m))
  );
}
