//! Reading failures: the last error of the calling thread on a handle, the stable name of a code,
//! and freeing the strings the library hands out.

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use tally_sdk::ErrorCode;

use crate::boundary::owned_string;
use crate::handle::TallyClient;
use crate::types::TALLY_OK;

/// The code of this thread's last call on `client`: `TALLY_OK` when it succeeded (or when
/// `client` is NULL), else its stable error code.
///
/// # Safety
/// `client` is NULL or a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_last_error_code(client: *const TallyClient) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: NULL or a live handle (the caller's promise).
        let handle = unsafe { client.as_ref() }?;
        handle.last_error().map(|e| i32::from(e.code.code()))
    }))
    .ok()
    .flatten()
    .unwrap_or(TALLY_OK)
}

/// The message of this thread's last call on `client` if it failed, else NULL. The caller owns
/// the string: free it with `tally_string_free`.
///
/// # Safety
/// `client` is NULL or a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_last_error_message(client: *const TallyClient) -> *mut c_char {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: NULL or a live handle (the caller's promise).
        let handle = unsafe { client.as_ref() }?;
        handle.last_error().map(|e| owned_string(&e.message))
    }))
    .ok()
    .flatten()
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a string the library returned; NULL is ignored.
///
/// # Safety
/// `text` is NULL or a string returned by this library and not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_string_free(text: *mut c_char) {
    if text.is_null() {
        return;
    }
    // SAFETY: made by `CString::into_raw` in this library, freed once (the caller's promise).
    let owned = unsafe { CString::from_raw(text) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(owned)));
}

/// The stable name of a code (`TALLY_OK` is "ok", e.g. 1003 is "grant_expired"), or "unknown".
/// The string is static: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn tally_error_name(code: i32) -> *const c_char {
    static NAMES: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    const UNKNOWN: &CStr = c"unknown";
    const OK: &CStr = c"ok";
    if code == TALLY_OK {
        return OK.as_ptr();
    }
    catch_unwind(|| {
        let names = NAMES.get_or_init(|| {
            ErrorCode::ALL
                .iter()
                .filter_map(|c| Some((i32::from(c.code()), CString::new(c.name()).ok()?)))
                .collect()
        });
        names
            .iter()
            .find(|(known, _)| *known == code)
            .map_or(UNKNOWN.as_ptr(), |(_, name)| name.as_ptr())
    })
    .unwrap_or(UNKNOWN.as_ptr())
}
