//! The load: worker threads sending real protocol requests (HPKE-sealed, replay-stamped) over
//! keep-alive connections for a fixed time, recording every latency.

use std::time::{Duration, Instant};

use tally_crypto::envelope::seal_request;
use tally_crypto::keys::EncryptionPublicKey;
use tally_proto::wire::{
    AuthorizeRequest, Envelope, Reply, ReportRequest, RequestStamp, SealedResponse, UsageReport,
    ValidationField,
};

/// What one phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A ~300-byte JSON body to the bare echo.
    Echo,
    /// A sealed authorization to the crypto-only baseline.
    Crypto,
    /// A sealed authorization to Tally.
    Authorize,
    /// A sealed usage report (one report, a new id each time) to Tally.
    Report,
}

/// Measured figures of one phase.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile latency in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Where a phase sends its requests.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub key: EncryptionPublicKey,
    pub organization: String,
    pub product: String,
    pub handshake_code: String,
    pub devices_per_thread: usize,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One request of `phase`; returns whether the server accepted it.
fn request(
    agent: &ureq::Agent,
    phase: Phase,
    t: &Target,
    thread: usize,
    seq: u64,
) -> Result<(), String> {
    let device = format!(
        "bench-{thread}-{}",
        seq as usize % t.devices_per_thread.max(1)
    );
    let stamp = || RequestStamp {
        request_id: format!("{thread}-{seq}"),
        sent_at: now(),
    };
    let (path, purpose, plain) = match phase {
        Phase::Echo => {
            let body = format!(
                r#"{{"device_uuid":"{device}","product":"{}","organization":"{}","handshake_code":"{}","seq":{seq},"padding":"{}"}}"#,
                t.product,
                t.organization,
                t.handshake_code,
                "x".repeat(160)
            );
            let mut resp = agent
                .post(&format!("{}/echo", t.url))
                .send(body.as_bytes())
                .map_err(|e| e.to_string())?;
            let back = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
            return if back.len() == body.len() {
                Ok(())
            } else {
                Err("echo mismatch".into())
            };
        }
        Phase::Crypto | Phase::Authorize => {
            let req = AuthorizeRequest {
                stamp: stamp(),
                organization: t.organization.clone(),
                handshake_code: t.handshake_code.clone(),
                session_password: None,
                device_uuid: device,
                product: t.product.clone(),
                version: None,
                modules: vec![],
                validation: ValidationField::default(),
                friendly_name: None,
                buffer_days: None,
                instances: None,
            };
            let path = if phase == Phase::Crypto {
                "/crypto"
            } else {
                tally_proto::wire::PATH_AUTHORIZE
            };
            (
                path,
                "authorize",
                serde_json::to_vec(&req).map_err(|e| e.to_string())?,
            )
        }
        Phase::Report => {
            let req = ReportRequest {
                stamp: stamp(),
                device_uuid: device,
                organization: t.organization.clone(),
                handshake_code: t.handshake_code.clone(),
                reports: vec![UsageReport {
                    report_id: format!("r-{thread}-{seq}-{}", now()),
                    slice: tally_proto::slice::slice_of(now()),
                    counts: [("scan".to_string(), 1u64)].into(),
                }],
            };
            (
                tally_proto::wire::PATH_REPORT,
                "report",
                serde_json::to_vec(&req).map_err(|e| e.to_string())?,
            )
        }
    };
    let (envelope, reply_key): (Envelope, _) =
        seal_request(&t.key, purpose, &plain).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&envelope).map_err(|e| e.to_string())?;
    let mut resp = agent
        .post(&format!("{}{path}", t.url))
        .send(&body[..])
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    let sealed: SealedResponse =
        serde_json::from_slice(&bytes).map_err(|_| format!("HTTP {status}"))?;
    let plain = reply_key.open(&sealed).map_err(|e| e.to_string())?;
    if phase == Phase::Crypto {
        return Ok(());
    }
    match serde_json::from_slice::<Reply<serde_json::Value>>(&plain) {
        Ok(Reply::Ok(_)) => Ok(()),
        Ok(Reply::Err(e)) => Err(format!("{} {}", e.code, e.name)),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `phase` from `threads` threads for `duration` after a one-second warm-up.
pub fn run(phase: Phase, target: &Target, threads: usize, duration: Duration) -> Outcome {
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let results: Vec<(u64, u64, Vec<u32>, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let target = target.clone();
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .into();
                    let (mut ok, mut errors, mut lat, mut first_error) =
                        (0u64, 0u64, Vec::new(), None);
                    let mut seq = 0u64;
                    loop {
                        let t0 = Instant::now();
                        if t0 >= deadline {
                            break;
                        }
                        let result = request(&agent, phase, &target, thread, seq);
                        seq += 1;
                        if t0 < measure_from {
                            continue;
                        }
                        match result {
                            Ok(()) => {
                                ok += 1;
                                lat.push(
                                    u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX),
                                );
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    (ok, errors, lat, first_error)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut outcome = Outcome {
        elapsed: duration,
        ..Default::default()
    };
    for (ok, errors, lat, first_error) in results {
        outcome.ok += ok;
        outcome.errors += errors;
        outcome.latencies_us.extend(lat);
        if let Some(e) = first_error {
            eprintln!("  ({phase:?}) first error: {e}");
        }
    }
    outcome.latencies_us.sort_unstable();
    outcome
}
