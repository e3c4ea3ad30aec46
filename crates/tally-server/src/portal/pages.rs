//! The portal's pages. Each handler checks the session, does its work through the same services
//! as the admin API, and renders a template; a form with a problem is shown again with the
//! admin's input and a message.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tally_proto::admin::{CreateHandshake, UpdateHandshake, ValidationRules};
use tally_store::UsageFilter;

use super::auth::{audit as log_action, check_csrf, require};
use super::{Nav, PageResult, lines, render, see_other, when};
use crate::service;
use crate::state::AppState;

macro_rules! signed_in {
    ($state:expr, $headers:expr) => {
        match require(&$state, &$headers).await {
            Ok(s) => s,
            Err(r) => return Ok(r),
        }
    };
}

fn nav(page: &'static str, csrf: &str) -> Nav {
    Nav {
        signed_in: true,
        page,
        csrf: csrf.to_owned(),
        notice: None,
        error: None,
    }
}

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

pub fn notice_text(n: &Notice) -> Option<String> {
    n.notice.as_deref().map(|k| {
        match k {
            "password" => "The password was changed.",
            "imported" => "The license was imported.",
            "saved" => "Saved.",
            "unregistered" => "The device was unregistered.",
            "tested" => "Saved, and the test email was sent.",
            _ => "Done.",
        }
        .to_owned()
    })
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    uuid: String,
    version: &'static str,
    mismatch: Option<String>,
    licenses: usize,
    items: usize,
    devices: u64,
    listen: String,
    server_url: String,
    activation_request: String,
}

pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(n): Query<Notice>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("home", &s.csrf);
    nav.notice = notice_text(&n);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    Ok(render(&HomePage {
        nav,
        uuid: state.identity.uuid.clone(),
        version: env!("CARGO_PKG_VERSION"),
        mismatch: state.identity.mismatch.clone(),
        licenses: state.store.licenses().await?.len(),
        items: state.store.items(state.now()).await?.len(),
        devices: state.store.device_count().await?,
        listen: state.settings.listen.to_string(),
        server_url: format!("http://{host}"),
        activation_request: serde_json::to_string_pretty(&state.identity.activation_request())?,
    }))
}

pub async fn activation_request(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    signed_in!(state, headers);
    let json = serde_json::to_string_pretty(&state.identity.activation_request())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"activation-request.json\"",
            ),
        ],
        json,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "labels.html")]
struct LabelsPage {
    nav: Nav,
    uuid: String,
    labels: Vec<(&'static str, bool)>,
    mismatch: Option<String>,
}

pub async fn labels(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let s = signed_in!(state, headers);
    use crate::identity::HardwareLabel::*;
    let labels = [MachineId, Mac, BoardSerial, ProcessorId]
        .into_iter()
        .map(|l| (l.as_str(), state.identity.labels.contains(&l)))
        .collect();
    Ok(render(&LabelsPage {
        nav: nav("labels", &s.csrf),
        uuid: state.identity.uuid.clone(),
        labels,
        mismatch: state.identity.mismatch.clone(),
    }))
}

struct ItemRow {
    id: String,
    license: String,
    kind: &'static str,
    product: String,
    used: u64,
    quantity: u64,
    grace: String,
    start: String,
    end: String,
    status: &'static str,
    status_class: &'static str,
}

#[derive(Template)]
#[template(path = "licenses.html")]
struct LicensesPage {
    nav: Nav,
    items: Vec<ItemRow>,
    pasted: String,
    max_kib: usize,
}

async fn licenses_page(state: &AppState, nav: Nav, pasted: String) -> PageResult {
    let now = state.now();
    let items = service::licenses::items(state)
        .await?
        .into_iter()
        .map(|i| {
            let limit = tally_core::admission::device_allowance(i.quantity, i.grace_percent);
            let (status, status_class) = if now >= i.grace_end {
                ("expired", "bad")
            } else if now >= i.end {
                ("ended, in its grace days", "bad")
            } else if now < i.start {
                ("not started", "")
            } else if i.used >= limit {
                ("used up", "bad")
            } else if i.used > i.quantity {
                ("in grace", "bad")
            } else {
                ("active", "ok")
            };
            ItemRow {
                id: i.item_id,
                license: i.license_id,
                kind: i.license_type.as_str(),
                product: i.product,
                used: i.used,
                quantity: i.quantity,
                grace: format!("{} %", i.grace_percent),
                start: when(i.start),
                end: when(i.end),
                status,
                status_class,
            }
        })
        .collect();
    Ok(render(&LicensesPage {
        nav,
        items,
        pasted,
        max_kib: MAX_LICENSE_BYTES / 1024,
    }))
}

pub async fn licenses(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(n): Query<Notice>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("licenses", &s.csrf);
    nav.notice = notice_text(&n);
    licenses_page(&state, nav, String::new()).await
}

/// Upload (multipart): a `file` part or a pasted `text` part, and the `csrf` part.
/// Largest license file the import takes; the form says so. (A license of a few hundred items
/// is a few tens of KiB.)
pub const MAX_LICENSE_BYTES: usize = crate::api::body::MAX_BODY_BYTES;

/// Largest import request read, so that a file somewhat over [`MAX_LICENSE_BYTES`] is answered
/// with [`too_large`] rather than cut off mid-upload.
pub const MAX_IMPORT_REQUEST_BYTES: usize = 4 * MAX_LICENSE_BYTES;

fn too_large() -> String {
    format!(
        "The file is larger than {} KiB, the most a license import takes: is it an activated license file?",
        MAX_LICENSE_BYTES / 1024
    )
}

/// The licenses page with why the upload could not be read.
async fn upload_failed(
    state: &AppState,
    csrf: &str,
    e: &axum::extract::multipart::MultipartError,
) -> PageResult {
    let mut nav = nav("licenses", csrf);
    nav.error = Some(if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        format!("The upload could not be read: {}", e.body_text())
    });
    licenses_page(state, nav, String::new()).await
}

pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> PageResult {
    let s = signed_in!(state, headers);
    let (mut csrf, mut file, mut text) = (String::new(), String::new(), String::new());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return upload_failed(&state, &s.csrf, &e).await,
        };
        let name = field.name().unwrap_or("").to_owned();
        let value = match field.text().await {
            Ok(value) => value,
            Err(e) => return upload_failed(&state, &s.csrf, &e).await,
        };
        if value.len() > MAX_LICENSE_BYTES {
            let mut nav = nav("licenses", &s.csrf);
            nav.error = Some(too_large());
            return licenses_page(&state, nav, String::new()).await;
        }
        match name.as_str() {
            "csrf" => csrf = value,
            "file" => file = value,
            "text" => text = value,
            _ => {}
        }
    }
    let mut nav = nav("licenses", &s.csrf);
    if !check_csrf(&s, &headers, &csrf) {
        nav.error = Some("The form expired: try again.".into());
        return licenses_page(&state, nav, text).await;
    }
    // Browsers submit textarea lines with CRLF (HTML form encoding); the signed text uses LF.
    let content = if file.trim().is_empty() {
        text.replace("\r\n", "\n")
    } else {
        file
    };
    if content.trim().is_empty() {
        nav.error = Some("Choose a license file or paste its text.".into());
        return licenses_page(&state, nav, text).await;
    }
    match service::licenses::import(&state, &content).await {
        Ok(imported) => {
            log_action(
                &state,
                "license.import",
                format!("{} for {}", imported.license_id, imported.organization),
            )
            .await;
            Ok(see_other("/licenses?notice=imported"))
        }
        Err(e) => {
            nav.error = Some(format!(
                "The license was not imported: {} ({} {})",
                e.message,
                e.code.code(),
                e.code.name()
            ));
            licenses_page(&state, nav, text).await
        }
    }
}

struct CodeRow {
    code: String,
    organization: String,
    items: Vec<String>,
    is_default: bool,
    enabled: bool,
    has_session_password: bool,
    custom_order: bool,
}

#[derive(Default)]
struct NewCodeForm {
    code: String,
    organization: String,
    items: String,
    description: String,
}

#[derive(Template)]
#[template(path = "handshakes.html")]
struct HandshakesPage {
    nav: Nav,
    codes: Vec<CodeRow>,
    organizations: Vec<String>,
    available_items: String,
    form: NewCodeForm,
}

async fn handshakes_page(state: &AppState, nav: Nav, form: NewCodeForm) -> PageResult {
    let codes: Vec<CodeRow> = service::handshakes::list(state)
        .await?
        .into_iter()
        .map(|h| CodeRow {
            code: h.code,
            organization: h.organization,
            items: h.items,
            is_default: h.is_default,
            enabled: h.enabled,
            has_session_password: h.has_session_password,
            custom_order: h.custom_order,
        })
        .collect();
    let items = state.store.items(state.now()).await?;
    let mut organizations: Vec<String> = items.iter().map(|i| i.organization.clone()).collect();
    organizations.sort();
    organizations.dedup();
    let available_items = items
        .iter()
        .map(|i| i.item.id.clone())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(render(&HandshakesPage {
        nav,
        codes,
        organizations,
        available_items,
        form,
    }))
}

pub async fn handshakes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(n): Query<Notice>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("handshakes", &s.csrf);
    nav.notice = notice_text(&n);
    handshakes_page(&state, nav, NewCodeForm::default()).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    items: String,
    #[serde(default)]
    description: String,
}

pub async fn create_handshake(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CreateForm>, FormRejection>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("handshakes", &s.csrf);
    let Ok(Form(f)) = form else {
        nav.error = Some("The form was incomplete.".into());
        return handshakes_page(&state, nav, NewCodeForm::default()).await;
    };
    let kept = NewCodeForm {
        code: f.code.clone(),
        organization: f.organization.clone(),
        items: f.items.clone(),
        description: f.description.clone(),
    };
    if !check_csrf(&s, &headers, &f.csrf) {
        nav.error = Some("The form expired: try again.".into());
        return handshakes_page(&state, nav, kept).await;
    }
    let req = CreateHandshake {
        code: (!f.code.trim().is_empty()).then(|| f.code.trim().to_owned()),
        organization: f.organization,
        items: lines(&f.items),
        description: (!f.description.trim().is_empty()).then(|| f.description.trim().to_owned()),
    };
    match service::handshakes::create(&state, req).await {
        Ok(view) => {
            log_action(
                &state,
                "handshake.create",
                format!("{} for {}", view.code, view.organization),
            )
            .await;
            Ok(see_other(&format!(
                "/handshakes/{}?notice=saved",
                view.code
            )))
        }
        Err(e) => {
            nav.error = Some(format!("The code was not added: {}", e.message));
            handshakes_page(&state, nav, kept).await
        }
    }
}

struct EditForm {
    items: String,
    default_order: bool,
    domains: String,
    app_ids: String,
    processes: String,
    description: String,
    enabled: bool,
}

struct UsageLine {
    day: String,
    feature: String,
    count: u64,
}

#[derive(Template)]
#[template(path = "handshake.html")]
struct HandshakePage {
    nav: Nav,
    code: String,
    has_password: bool,
    form: EditForm,
    usage: Vec<UsageLine>,
}

async fn handshake_page(
    state: &AppState,
    nav: Nav,
    code: &str,
    form: Option<EditForm>,
) -> PageResult {
    let Some(view) = service::handshakes::list(state)
        .await?
        .into_iter()
        .find(|h| h.code == code)
    else {
        return Ok((axum::http::StatusCode::NOT_FOUND, "No such handshake code.").into_response());
    };
    let form = form.unwrap_or_else(|| EditForm {
        items: view.items.join("\n"),
        default_order: !view.custom_order,
        domains: view.validation.domains.join("\n"),
        app_ids: view.validation.app_ids.join("\n"),
        processes: view.validation.process_names.join("\n"),
        description: view.description.clone().unwrap_or_default(),
        enabled: view.enabled,
    });
    let today = state.now().div_euclid(86_400);
    let usage = state
        .store
        .usage_by_day(UsageFilter {
            from_day: Some(today - 29),
            to_day: Some(today),
            handshake_code: Some(code.to_owned()),
        })
        .await?
        .into_iter()
        .rev()
        .map(|u| UsageLine {
            day: service::stats::format_day(u.day),
            feature: u.feature,
            count: u.count,
        })
        .collect();
    Ok(render(&HandshakePage {
        nav,
        code: code.to_owned(),
        has_password: view.has_session_password,
        form,
        usage,
    }))
}

pub async fn handshake(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("handshakes", &s.csrf);
    nav.notice = notice_text(&n);
    handshake_page(&state, nav, &code, None).await
}

#[derive(Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    items: String,
    #[serde(default)]
    default_order: Option<String>,
    #[serde(default)]
    session_password: String,
    #[serde(default)]
    remove_password: Option<String>,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    app_ids: String,
    #[serde(default)]
    processes: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<String>,
}

pub async fn update_handshake(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    form: Result<Form<UpdateForm>, FormRejection>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("handshakes", &s.csrf);
    let Ok(Form(f)) = form else {
        nav.error = Some("The form was incomplete.".into());
        return handshake_page(&state, nav, &code, None).await;
    };
    let kept = EditForm {
        items: f.items.clone(),
        default_order: f.default_order.is_some(),
        domains: f.domains.clone(),
        app_ids: f.app_ids.clone(),
        processes: f.processes.clone(),
        description: f.description.clone(),
        enabled: f.enabled.is_some(),
    };
    if !check_csrf(&s, &headers, &f.csrf) {
        nav.error = Some("The form expired: try again.".into());
        return handshake_page(&state, nav, &code, Some(kept)).await;
    }
    let default_order = f.default_order.is_some();
    if default_order && items_edited(&state, &code, &f.items).await? {
        nav.error = Some(
            "Not saved: \"use the default order\" is ticked, which replaces the items with the \
             default order, but the items were changed. Untick it to save your own list, or undo \
             the change to the items."
                .into(),
        );
        return handshake_page(&state, nav, &code, Some(kept)).await;
    }
    let change = UpdateHandshake {
        items: (!default_order).then(|| lines(&f.items)),
        default_order,
        session_password: if f.remove_password.is_some() {
            Some(String::new())
        } else {
            (!f.session_password.is_empty()).then_some(f.session_password)
        },
        validation: Some(ValidationRules {
            domains: lines(&f.domains),
            app_ids: lines(&f.app_ids),
            process_names: lines(&f.processes),
        }),
        enabled: Some(f.enabled.is_some()),
        description: Some(f.description.trim().to_owned()),
    };
    match service::handshakes::update(&state, &code, change).await {
        Ok(_) => {
            log_action(&state, "handshake.update", code.clone()).await;
            Ok(see_other(&format!("/handshakes/{code}?notice=saved")))
        }
        Err(e) => {
            nav.error = Some(format!("Not saved: {}", e.message));
            handshake_page(&state, nav, &code, Some(kept)).await
        }
    }
}

/// Whether `typed` lists other items than the code has now (what its page showed).
async fn items_edited(state: &AppState, code: &str, typed: &str) -> Result<bool, super::PageError> {
    let current = service::handshakes::list(state)
        .await?
        .into_iter()
        .find(|h| h.code == code)
        .map(|h| h.items)
        .unwrap_or_default();
    Ok(lines(typed) != current)
}

struct DeviceLine {
    uuid: String,
    name: String,
    code: String,
    item: String,
    last_seen: String,
    until: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    nav: Nav,
    devices: Vec<DeviceLine>,
    /// 1-based numbers of the first and last device shown, and of all.
    first: u64,
    last: u64,
    total: u64,
    previous_page: Option<u64>,
    next_page: Option<u64>,
}

/// Devices shown per page: a server may hold millions.
const DEVICES_PER_PAGE: u32 = 200;

#[derive(Deserialize)]
pub struct DevicesQuery {
    notice: Option<String>,
    /// 1-based page number.
    page: Option<u64>,
}

pub async fn devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DevicesQuery>,
) -> PageResult {
    let s = signed_in!(state, headers);
    let mut nav = nav("devices", &s.csrf);
    nav.notice = notice_text(&Notice { notice: q.notice });
    let now = state.now();
    let total = state.store.device_count().await?;
    let per_page = u64::from(DEVICES_PER_PAGE);
    let pages = total.div_ceil(per_page).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let offset = (page - 1) * per_page;
    let devices: Vec<DeviceLine> = state
        .store
        .recent_devices(DEVICES_PER_PAGE, offset)
        .await?
        .into_iter()
        .map(|d| DeviceLine {
            name: d.friendly_name.clone().unwrap_or_else(|| "—".into()),
            uuid: d.device_uuid,
            code: d.handshake_code,
            item: d.item_id,
            last_seen: when(d.last_seen),
            until: when(d.active_until),
            active: d.active_until > now,
        })
        .collect();
    Ok(render(&DevicesPage {
        nav,
        first: offset + 1,
        last: offset + devices.len() as u64,
        total,
        previous_page: (page > 1).then(|| page - 1),
        next_page: (page < pages).then(|| page + 1),
        devices,
    }))
}

#[derive(Deserialize)]
pub struct UnregisterForm {
    #[serde(default)]
    csrf: String,
    device: String,
}

pub async fn unregister(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<UnregisterForm>, FormRejection>,
) -> PageResult {
    let s = signed_in!(state, headers);
    match form {
        Ok(Form(f)) if check_csrf(&s, &headers, &f.csrf) => {
            let n = state.store.unregister_device(&f.device).await?;
            log_action(
                &state,
                "device.unregister",
                format!("{} ({n} places freed)", f.device),
            )
            .await;
            Ok(see_other("/devices?notice=unregistered"))
        }
        _ => Ok(see_other("/devices")),
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<(String, String, String, String)>,
}

pub async fn audit_page(state: &AppState, csrf: &str) -> PageResult {
    let entries = state
        .store
        .audit_log(500)
        .await?
        .into_iter()
        .map(|e| (when(e.at), e.actor, e.action, e.detail))
        .collect();
    Ok(render(&AuditPage {
        nav: nav("audit", csrf),
        entries,
    }))
}

pub async fn audit(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let s = signed_in!(state, headers);
    audit_page(&state, &s.csrf).await
}
