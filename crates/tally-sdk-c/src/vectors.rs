//! The protocol test vectors through the C ABI: a port of the protocol (or a check of this
//! library's build) can run the same conformance checker as every other SDK.

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tally_sdk::SdkError;

use crate::boundary::{owned_string, panicked, text};

/// Checks the protocol test vectors (the text of `docs/sdk/test-vectors.json`) with the SDK's
/// conformance checker: a verification aid for ports and builds, not needed to use a license.
/// On success the number of cases checked is written to `*cases` (unless NULL). On failure the
/// message, naming the case, is written to `*message` (unless NULL): free it with
/// `tally_string_free`.
///
/// # Safety
/// `json` is NULL or a NUL-terminated string; `cases` and `message` are NULL or valid for
/// writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_check_test_vectors(
    json: *const c_char,
    cases: *mut u32,
    message: *mut *mut c_char,
) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's promise on `json`.
        let json = unsafe { text(json, "json") }?;
        let checked = tally_sdk::conformance::check_test_vectors(json)?;
        Ok::<_, SdkError>(u32::try_from(checked).unwrap_or(u32::MAX))
    }))
    .unwrap_or_else(|payload| Err(panicked(payload.as_ref())));
    match outcome {
        Ok(checked) => {
            if !cases.is_null() {
                // SAFETY: not NULL, valid for writing (the caller's promise).
                unsafe { cases.write(checked) };
            }
            crate::types::TALLY_OK
        }
        Err(e) => {
            if !message.is_null() {
                // SAFETY: not NULL, valid for writing (the caller's promise).
                unsafe { message.write(owned_string(&e.message)) };
            }
            i32::from(e.code.code())
        }
    }
}
