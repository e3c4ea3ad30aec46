//! The server's signature on a grant. The payload bytes are signed as sent, so the client verifies
//! exactly what it will parse.

use tally_proto::wire::{Grant, SignedGrant};

use crate::{CryptoError, CryptoResult, SigningKey, VerifyingKey, b64_decode, b64_encode};

/// Domain separation: what the server signs is this context followed by the payload bytes.
pub const GRANT_CONTEXT: &[u8] = b"tally-grant/1\n";

fn message(payload: &[u8]) -> Vec<u8> {
    let mut m = GRANT_CONTEXT.to_vec();
    m.extend_from_slice(payload);
    m
}

/// Signs a grant with the server key.
pub fn sign_grant(grant: &Grant, server: &SigningKey) -> CryptoResult<SignedGrant> {
    let payload = serde_json::to_vec(grant)
        .map_err(|e| CryptoError::Malformed(format!("cannot serialize grant: {e}")))?;
    let signature = server.sign(&message(&payload));
    Ok(SignedGrant {
        payload: b64_encode(&payload),
        signature: b64_encode(&signature),
    })
}

/// Verifies a signed grant against the server key and parses it.
pub fn verify_grant(signed: &SignedGrant, server: &VerifyingKey) -> CryptoResult<Grant> {
    let payload = b64_decode(&signed.payload)?;
    let signature = b64_decode(&signed.signature)?;
    server.verify(&message(&payload), &signature)?;
    serde_json::from_slice(&payload)
        .map_err(|e| CryptoError::Malformed(format!("the grant payload is invalid: {e}")))
}
