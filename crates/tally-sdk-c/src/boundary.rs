//! Crossing the boundary safely: every exported call runs inside [`call`] (no panic unwinds into
//! C; the outcome becomes a status code and the thread's last error), and reads its arguments
//! through [`handle`] and [`text`] (NULL and UTF-8 checked).

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use tally_sdk::{ErrorCode, SdkError, SdkResult};

use crate::handle::TallyClient;
use crate::types::TALLY_OK;

/// The status code of an outcome.
pub(crate) fn status(outcome: &SdkResult<()>) -> i32 {
    match outcome {
        Ok(()) => TALLY_OK,
        Err(e) => i32::from(e.code.code()),
    }
}

/// A panic turned into an error, with what it said.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> SdkError {
    let said = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    SdkError::new(
        ErrorCode::Internal,
        format!("the Tally library failed unexpectedly: {said}"),
    )
}

/// Runs `body` on the handle behind `client`: a NULL handle is `invalid_input` (with no place to
/// keep a message), a panic is `internal`; the outcome is kept as this thread's last error.
pub(crate) fn call(
    client: *const TallyClient,
    body: impl FnOnce(&TallyClient) -> SdkResult<()>,
) -> i32 {
    let guarded = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a non-NULL `client` is, by the contract of every exported function, a handle
        // made by `tally_new` and not yet freed; it is only read through a shared reference.
        let Some(handle) = (unsafe { client.as_ref() }) else {
            return i32::from(ErrorCode::InvalidInput.code());
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(handle)))
            .unwrap_or_else(|payload| Err(panicked(payload.as_ref())));
        handle.remember(&outcome);
        status(&outcome)
    }));
    guarded.unwrap_or_else(|_| i32::from(ErrorCode::Internal.code()))
}

/// The UTF-8 text behind `ptr`; NULL and invalid UTF-8 are `invalid_input` naming `what`.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string that stays valid and unchanged for
/// `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> SdkResult<&'a str> {
    if ptr.is_null() {
        return Err(invalid(format!("{what}: a string is required, not NULL")));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for `'a`.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str()
        .map_err(|_| invalid(format!("{what}: not valid UTF-8")))
}

/// Like [`text`], with NULL meaning "not given".
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn optional_text<'a>(
    ptr: *const c_char,
    what: &str,
) -> SdkResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { text(ptr, what) }.map(Some)
}

/// Writes `value` to `out`; NULL is `invalid_input` naming `what`.
///
/// # Safety
/// A non-NULL `out` must be valid for writing a `T` and suitably aligned.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> SdkResult<()> {
    if out.is_null() {
        return Err(invalid(format!(
            "{what}: a place for the result is required, not NULL"
        )));
    }
    // SAFETY: not NULL, and the caller promises it is valid and aligned for a `T`.
    unsafe { out.write(value) };
    Ok(())
}

/// A string C owns until it passes it to `tally_string_free`. NUL bytes inside (which C could not
/// see) become spaces.
pub(crate) fn owned_string(text: &str) -> *mut c_char {
    CString::new(text.replace('\0', " "))
        .map(CString::into_raw)
        .unwrap_or(std::ptr::null_mut())
}

pub(crate) fn invalid(message: String) -> SdkError {
    SdkError::new(ErrorCode::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_kept_for_the_thread() {
        let handle = TallyClient::new();
        let code = call(&handle, |_| panic!("a bug"));
        assert_eq!(code, 500);
        let e = handle.last_error().unwrap();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.message.contains("a bug"), "{e}");
        // The next successful call clears it.
        assert_eq!(call(&handle, |_| Ok(())), TALLY_OK);
        assert!(handle.last_error().is_none());
    }

    #[test]
    fn a_null_handle_is_invalid_input() {
        assert_eq!(call(std::ptr::null(), |_| Ok(())), 306);
    }
}
