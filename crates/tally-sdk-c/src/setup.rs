//! Making, configuring and freeing a handle. The setters copy their strings; they may be called
//! in any order, and only until the client starts (`tally_start` or the first call that needs
//! it), which checks the configuration as a whole.

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use tally_sdk::DeviceIdMode;

use crate::boundary::{call, invalid, optional_text, text};
use crate::handle::TallyClient;
use crate::types::{TALLY_DEVICE_ID_HARDWARE, TALLY_DEVICE_ID_RANDOM};

/// Makes a handle with an empty configuration. Free it with `tally_free`. Returns NULL only if the
/// library failed unexpectedly.
#[unsafe(no_mangle)]
pub extern "C" fn tally_new() -> *mut TallyClient {
    catch_unwind(|| Box::into_raw(Box::new(TallyClient::new()))).unwrap_or(std::ptr::null_mut())
}

/// Frees a handle made by `tally_new`; NULL is ignored. A background thread started on it sends
/// the usage recorded last, then stops (this waits at most the servers' timeout).
///
/// # Safety
/// `client` is NULL or a handle from `tally_new` not freed yet, which no other thread uses any
/// more; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_free(client: *mut TallyClient) {
    if client.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `tally_new`, freed once (the caller's promise).
    let handle = unsafe { Box::from_raw(client) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(handle)));
}

/// Adds a server URL (`http://host:port` or `https://…`): the main server first, then standbys,
/// tried in that order when one does not answer.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `url` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_add_server(client: *mut TallyClient, url: *const c_char) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `url`.
        let url = unsafe { text(url, "server") }?.to_owned();
        c.configure(|s| s.servers.push(url))
    })
}

/// Sets the vendor's public key (base64), the only key the SDK trusts licenses and servers by.
/// Required.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `key` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_vendor_public_key(
    client: *mut TallyClient,
    key: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `key`.
        let key = unsafe { text(key, "vendor_public_key") }?.to_owned();
        c.configure(|s| s.vendor_public_key = Some(key))
    })
}

/// Sets this device's state directory (device id, grant, report session, unsent usage), created
/// if missing. Required; one per device and product.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `dir` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_state_dir(client: *mut TallyClient, dir: *const c_char) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `dir`.
        let dir = PathBuf::from(unsafe { text(dir, "state_dir") }?);
        c.configure(|s| s.state_dir = Some(dir))
    })
}

/// Sets the organization id; with no handshake code its default code is used.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `organization` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_organization(
    client: *mut TallyClient,
    organization: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `organization`.
        let organization = unsafe { text(organization, "organization") }?.to_owned();
        c.configure(|s| s.organization = organization)
    })
}

/// Sets the handshake code the administrator gave.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `code` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_handshake_code(
    client: *mut TallyClient,
    code: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `code`.
        let code = unsafe { text(code, "handshake_code") }?.to_owned();
        c.configure(|s| s.handshake_code = code)
    })
}

/// Sets the session password, for handshake codes that require one; NULL removes it.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `password` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_session_password(
    client: *mut TallyClient,
    password: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `password`.
        let password = unsafe { optional_text(password, "session_password") }?.map(str::to_owned);
        c.configure(|s| s.session_password = password)
    })
}

/// Sets the product name, as the license items name it. Required.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `product` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_product(
    client: *mut TallyClient,
    product: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `product`.
        let product = unsafe { text(product, "product") }?.to_owned();
        c.configure(|s| s.product = Some(product))
    })
}

/// Sets the product's major version.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_version(client: *mut TallyClient, major: u32) -> i32 {
    call(client, |c| c.configure(|s| s.version = Some(major)))
}

/// Adds a module the product needs.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `module` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_add_module(client: *mut TallyClient, module: *const c_char) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `module`.
        let module = unsafe { text(module, "module") }?.to_owned();
        c.configure(|s| s.modules.push(module))
    })
}

/// Sets the validation field the server checks against the handshake code: a domain, an app id
/// and a process name, each NULL when not given.
///
/// # Safety
/// `client` is a live handle from `tally_new`; each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_validation(
    client: *mut TallyClient,
    domain: *const c_char,
    app_id: *const c_char,
    process: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on the three strings.
        let (domain, app_id, process) = unsafe {
            (
                optional_text(domain, "domain")?,
                optional_text(app_id, "app_id")?,
                optional_text(process, "process")?,
            )
        };
        let field = tally_sdk::ValidationField {
            domain: domain.map(str::to_owned),
            app_id: app_id.map(str::to_owned),
            process: process.map(str::to_owned),
        };
        c.configure(|s| s.validation = field)
    })
}

/// Sets a name administrators see for this device (at most 255 characters); NULL removes it.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_friendly_name(
    client: *mut TallyClient,
    name: *const c_char,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `name`.
        let name = unsafe { optional_text(name, "friendly_name") }?.map(str::to_owned);
        c.configure(|s| s.friendly_name = name)
    })
}

/// Sets how the device identifies itself: `TALLY_DEVICE_ID_RANDOM` (the default) or
/// `TALLY_DEVICE_ID_HARDWARE`.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_device_id_mode(client: *mut TallyClient, mode: u32) -> i32 {
    call(client, |c| {
        let mode = match mode {
            TALLY_DEVICE_ID_RANDOM => DeviceIdMode::Random,
            TALLY_DEVICE_ID_HARDWARE => DeviceIdMode::Hardware,
            other => {
                return Err(invalid(format!(
                    "device_id_mode: {other} is neither TALLY_DEVICE_ID_RANDOM nor TALLY_DEVICE_ID_HARDWARE"
                )));
            }
        };
        c.configure(|s| s.device_id = mode)
    })
}

/// Asks for fewer offline days than the license allows (at least 1): the product keeps a shorter
/// leash. The license item and the server set the most.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_buffer_days(client: *mut TallyClient, days: u32) -> i32 {
    call(client, |c| c.configure(|s| s.buffer_days = Some(days)))
}

/// Sets how many instances of the product run on this device, for instance-counted licenses.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_instances(client: *mut TallyClient, instances: u32) -> i32 {
    call(client, |c| c.configure(|s| s.instances = Some(instances)))
}

/// Sets the time allowed for each HTTP call to a server, in milliseconds (10 000 unless set).
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_set_timeout_ms(client: *mut TallyClient, milliseconds: u32) -> i32 {
    call(client, |c| {
        let timeout = Duration::from_millis(u64::from(milliseconds));
        c.configure(|s| s.timeout = Some(timeout))
    })
}
