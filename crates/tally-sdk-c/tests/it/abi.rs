//! The C ABI called as C calls it, through raw pointers: arguments checked at the boundary,
//! errors kept per thread, the configuration checked at start, the offline path, the test
//! vectors. (A real server, C and C++ programs and many threads: the `tally` crate's `sdk_c`.)

use std::ffi::{CStr, CString, c_char};

use tally_sdk_c::*;

/// A handle freed when dropped; each method is one ABI call.
struct Handle(*mut TallyClient);

// SAFETY: the ABI promises a handle may be used from several threads at once.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by `tally_new`, freed once, no thread uses it any more.
        unsafe { tally_free(self.0) }
    }
}

impl Handle {
    fn new() -> Self {
        let handle = tally_new();
        assert!(!handle.is_null());
        Self(handle)
    }

    /// A handle configured for `server`, with a fresh vendor key and state in `dir`.
    fn configured(server: &str, dir: &std::path::Path) -> Self {
        let h = Self::new();
        let vendor = tally_crypto::SigningKey::generate().unwrap();
        let key = vendor.verifying_key().to_base64();
        let state = dir.join("state");
        // SAFETY: a live handle and NUL-terminated strings that outlive the calls.
        unsafe {
            assert_eq!(tally_add_server(h.0, c(server).as_ptr()), TALLY_OK);
            assert_eq!(tally_set_vendor_public_key(h.0, c(&key).as_ptr()), TALLY_OK);
            assert_eq!(
                tally_set_state_dir(h.0, c(state.to_str().unwrap()).as_ptr()),
                TALLY_OK
            );
            assert_eq!(tally_set_product(h.0, c"scanner".as_ptr()), TALLY_OK);
        }
        h
    }

    fn set_product(&self, product: *const c_char) -> i32 {
        // SAFETY: a live handle; `product` is NULL or a string the caller keeps alive.
        unsafe { tally_set_product(self.0, product) }
    }

    fn start(&self) -> i32 {
        // SAFETY: a live handle.
        unsafe { tally_start(self.0) }
    }

    fn authorize(&self) -> (i32, TallyStatus) {
        let mut status = TallyStatus::default();
        // SAFETY: a live handle and a place for the status.
        (unsafe { tally_authorize(self.0, &mut status) }, status)
    }

    fn record(&self, feature: &CStr, count: u64) -> i32 {
        // SAFETY: a live handle and a NUL-terminated string.
        unsafe { tally_record_usage(self.0, feature.as_ptr(), count) }
    }

    fn flush(&self) -> i32 {
        // SAFETY: a live handle; NULL asks for no result.
        unsafe { tally_flush(self.0, std::ptr::null_mut()) }
    }

    fn status(&self) -> (i32, TallyStatus) {
        let mut status = TallyStatus::default();
        // SAFETY: a live handle and a place for the status.
        (unsafe { tally_status(self.0, &mut status) }, status)
    }

    fn last_code(&self) -> i32 {
        // SAFETY: a live handle.
        unsafe { tally_last_error_code(self.0) }
    }

    fn last_message(&self) -> Option<String> {
        // SAFETY: a live handle.
        let text = unsafe { tally_last_error_message(self.0) };
        taken(text)
    }
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// A string the library handed out, copied and freed.
fn taken(text: *mut c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from the library, freed right after the copy.
    let copy = unsafe { CStr::from_ptr(text) }.to_str().unwrap().to_owned();
    // SAFETY: returned by the library and not freed yet.
    unsafe { tally_string_free(text) };
    Some(copy)
}

fn name(code: i32) -> String {
    // SAFETY: the library returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(tally_error_name(code)) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Nothing listens on port 9 (discard): the connection is refused at once.
const UNREACHABLE: &str = "http://127.0.0.1:9";

#[test]
fn a_missing_setting_is_named_when_the_client_starts() {
    let h = Handle::new();
    assert_eq!(h.start(), 306);
    assert_eq!(h.last_code(), 306);
    assert_eq!(
        h.last_message().unwrap(),
        "vendor_public_key: required (tally_set_vendor_public_key)"
    );
    let (code, _) = h.authorize();
    assert_eq!(code, 306);
}

#[test]
fn null_and_non_utf8_arguments_are_refused_naming_the_argument() {
    let h = Handle::new();
    assert_eq!(h.set_product(std::ptr::null()), 306);
    assert_eq!(
        h.last_message().unwrap(),
        "product: a string is required, not NULL"
    );
    let latin1 = b"caf\xe9\0";
    assert_eq!(h.set_product(latin1.as_ptr().cast()), 306);
    assert_eq!(h.last_message().unwrap(), "product: not valid UTF-8");
    // A NULL handle is refused too, without a place for a message.
    // SAFETY: NULL is allowed by the contract.
    unsafe {
        assert_eq!(tally_start(std::ptr::null_mut()), 306);
        assert_eq!(tally_last_error_code(std::ptr::null()), TALLY_OK);
        assert!(tally_last_error_message(std::ptr::null()).is_null());
        tally_free(std::ptr::null_mut());
    }
    // SAFETY: a live handle and a place for the status.
    let refused = unsafe { tally_set_device_id_mode(h.0, 7) };
    assert_eq!(refused, 306);
    assert!(
        h.last_message()
            .unwrap()
            .contains("TALLY_DEVICE_ID_HARDWARE")
    );
}

#[test]
fn each_thread_reads_its_own_last_error() {
    let h = Handle::new();
    assert_eq!(h.set_product(std::ptr::null()), 306);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(h.last_code(), TALLY_OK);
            assert_eq!(h.last_message(), None);
            assert_eq!(h.start(), 306);
            assert!(h.last_message().unwrap().starts_with("vendor_public_key"));
        });
    });
    assert_eq!(
        h.last_message().unwrap(),
        "product: a string is required, not NULL"
    );
    // A success clears the thread's error.
    assert_eq!(h.set_product(c"scanner".as_ptr()), TALLY_OK);
    assert_eq!(h.last_code(), TALLY_OK);
    assert_eq!(h.last_message(), None);
}

#[test]
fn the_configuration_is_fixed_once_the_client_has_started() {
    let dir = tempfile::tempdir().unwrap();
    let h = Handle::configured(UNREACHABLE, dir.path());
    assert_eq!(h.start(), TALLY_OK);
    assert!(dir.path().join("state/device-id").is_file());
    assert_eq!(h.set_product(c"other".as_ptr()), 306);
    assert!(h.last_message().unwrap().contains("cannot change"));
}

#[test]
fn values_the_sdk_refuses_are_named_when_the_client_starts() {
    let dir = tempfile::tempdir().unwrap();
    let h = Handle::configured(UNREACHABLE, dir.path());
    // SAFETY: a live handle.
    assert_eq!(unsafe { tally_set_timeout_ms(h.0, 0) }, TALLY_OK);
    assert_eq!(h.start(), 306);
    assert!(h.last_message().unwrap().starts_with("timeout"));

    let h = Handle::configured(UNREACHABLE, dir.path());
    // SAFETY: a live handle.
    assert_eq!(unsafe { tally_set_buffer_days(h.0, 0) }, TALLY_OK);
    assert_eq!(h.start(), 306);
    assert!(h.last_message().unwrap().starts_with("buffer_days"));

    let h = Handle::configured("license.example:48080", dir.path());
    assert_eq!(h.start(), 306);
    assert!(h.last_message().unwrap().starts_with("servers"));
}

#[test]
fn without_a_server_or_a_grant_usage_waits_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let h = Handle::configured(UNREACHABLE, dir.path());
    let (code, _) = h.authorize();
    assert_eq!(code, 1000, "{:?}", h.last_message());
    assert_eq!(name(code), "server_unreachable");
    assert!(h.last_message().unwrap().contains("127.0.0.1:9"));

    let (code, status) = h.status();
    assert_eq!(code, TALLY_OK);
    assert!(!status.authorized);
    assert_eq!(name(status.reason), "no_grant");
    assert_eq!(status.expires_at, 0);

    assert_eq!(h.record(c"scan", 3), TALLY_OK);
    assert_eq!(h.record(c"not a feature", 1), 306);
    assert_eq!(h.flush(), 1000);
    let (_, status) = h.status();
    assert_eq!(status.pending_reports, 1);
    // SAFETY: a live handle; NULL is refused, not written.
    assert_eq!(unsafe { tally_status(h.0, std::ptr::null_mut()) }, 306);
}

#[test]
fn codes_have_their_stable_names() {
    assert_eq!(name(TALLY_OK), "ok");
    assert_eq!(name(1003), "grant_expired");
    assert_eq!(name(306), "invalid_input");
    assert_eq!(name(9999), "unknown");
}

#[test]
fn the_test_vectors_check_through_the_abi() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sdk/test-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let expected = tally_sdk::conformance::check_test_vectors(&text).unwrap();
    let mut cases = 0u32;
    let mut message: *mut c_char = std::ptr::null_mut();
    // SAFETY: a NUL-terminated string and places for the results.
    let code = unsafe { tally_check_test_vectors(c(&text).as_ptr(), &mut cases, &mut message) };
    assert_eq!(code, TALLY_OK);
    assert_eq!(usize::try_from(cases).unwrap(), expected);
    assert!(message.is_null());

    let tampered = text.replacen("tally/v2 authorize", "tally/v9 authorize", 1);
    // SAFETY: as above.
    let code = unsafe { tally_check_test_vectors(c(&tampered).as_ptr(), &mut cases, &mut message) };
    assert_eq!(code, 306);
    let message = taken(message).unwrap();
    assert!(message.starts_with("test vector `constants`"), "{message}");
}
