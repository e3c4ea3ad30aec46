/**
 * Armored documents signed by the vendor (`tally-crypto/src/document.rs`): every byte from the
 * BEGIN line through the signature line is signed, so any change to a file fails verification.
 *
 * ```text
 * -----BEGIN TALLY LICENSE-----
 * { …pretty JSON… }
 * -----BEGIN TALLY SIGNATURE-----
 * <base64 Ed25519 signature>
 * -----END TALLY LICENSE-----
 * ```
 */

import { concat, fromBase64, utf8 } from "./bytes.js";
import { verifyStrict } from "./signature.js";
import {
  ACTIVATED_FORMAT,
  type ActivatedLicense,
  CERTIFICATE_FORMAT,
  MAX_ACTIVATED_SERVERS,
  type ServerCertificate,
  type ServerPublicIdentity,
} from "./wire.js";

/** Domain separation: a document signature can never be mistaken for another message. */
const SIGNING_CONTEXT = utf8("tally-document/1\n");
const SIGNATURE_LINE = "-----BEGIN TALLY SIGNATURE-----\n";
/** A 64-byte signature in base64. */
const SIGNATURE_CHARS = 88;

export type DocumentKind = "LICENSE" | "ACTIVATED LICENSE" | "SERVER CERTIFICATE";

const beginLine = (kind: DocumentKind) => `-----BEGIN TALLY ${kind}-----\n`;
const endLine = (kind: DocumentKind) => `-----END TALLY ${kind}-----\n`;

/** The message a document's signature covers. */
export function signedMessage(signedPart: string): Uint8Array {
  return concat(SIGNING_CONTEXT, utf8(signedPart));
}

/** Verifies an armored document of `kind` against `vendorKey` and parses its JSON payload. */
export function openDocument<T>(text: string, kind: DocumentKind, vendorKey: Uint8Array): T {
  const begin = beginLine(kind);
  if (!text.startsWith(begin)) {
    throw new Error(
      `not a Tally ${kind.toLowerCase()}: the first line must be \`${begin.trim()}\``,
    );
  }
  const sigAt = text.indexOf(`\n${SIGNATURE_LINE}`);
  if (sigAt < 0) throw new Error("the signature section is missing");
  const signedEnd = sigAt + 1 + SIGNATURE_LINE.length;
  const signedPart = text.slice(0, signedEnd);
  const payload = text.slice(begin.length, sigAt);
  const rest = text.slice(signedEnd);
  const end = endLine(kind);
  if (
    rest.length !== SIGNATURE_CHARS + 1 + end.length ||
    !rest.endsWith(end) ||
    rest[SIGNATURE_CHARS] !== "\n"
  ) {
    throw new Error("the signature section must hold one base64 signature line and the END line");
  }
  const signature = fromBase64(rest.slice(0, SIGNATURE_CHARS));
  if (!verifyStrict(vendorKey, signedMessage(signedPart), signature)) {
    throw new Error(`the ${kind.toLowerCase()} is not signed by the vendor key`);
  }
  return JSON.parse(payload) as T;
}

export function sameServer(a: ServerPublicIdentity, b: ServerPublicIdentity): boolean {
  return (
    a.uuid === b.uuid && a.signing_key === b.signing_key && a.encryption_key === b.encryption_key
  );
}

/** A server certificate the vendor signed. */
export function verifyCertificate(text: string, vendorKey: Uint8Array): ServerCertificate {
  const certificate = openDocument<ServerCertificate>(text, "SERVER CERTIFICATE", vendorKey);
  if (certificate.format !== CERTIFICATE_FORMAT) {
    throw new Error(`unsupported server certificate format \`${certificate.format}\``);
  }
  return certificate;
}

/**
 * An activated license file: signed by the vendor, naming 1 to 16 distinct servers, each with its
 * own certificate of the same license and activation, in the same order.
 */
export function verifyActivated(text: string, vendorKey: Uint8Array): ActivatedLicense {
  const activated = openDocument<ActivatedLicense>(text, "ACTIVATED LICENSE", vendorKey);
  if (activated.format !== ACTIVATED_FORMAT) {
    throw new Error(`unsupported activated license format \`${activated.format}\``);
  }
  const servers = activated.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.length > MAX_ACTIVATED_SERVERS) {
    throw new Error(`an activation names 1 to ${MAX_ACTIVATED_SERVERS} servers`);
  }
  servers.forEach((server, i) => {
    for (const earlier of servers.slice(0, i)) {
      if (
        earlier.uuid === server.uuid ||
        earlier.signing_key === server.signing_key ||
        earlier.encryption_key === server.encryption_key
      ) {
        throw new Error(`servers ${earlier.uuid} and ${server.uuid} share an identity`);
      }
    }
  });
  if (activated.certificates.length !== servers.length) {
    throw new Error("the activated license holds one certificate per server");
  }
  servers.forEach((server, i) => {
    const certificate = verifyCertificate(activated.certificates[i] ?? "", vendorKey);
    if (
      certificate.license_id !== activated.license.license_id ||
      !sameServer(certificate.server, server) ||
      certificate.activated_at !== activated.activated_at
    ) {
      throw new Error(`the certificate of server ${server.uuid} belongs to another activation`);
    }
  });
  return activated;
}
