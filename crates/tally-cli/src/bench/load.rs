//! The load: keep-alive HTTP/1.1 connections driven from one thread (a single-threaded tokio
//! runtime with hyper's client), each sending real protocol requests and checking every answer.
//!
//! Public-key work of the *client* (sealing an HPKE envelope costs more than opening one) would
//! otherwise cap the load below what the server can take, so envelopes are sealed before a phase
//! starts; each is still unique, stamped and replay-protected. Reports in a session need no
//! public-key work and are encrypted while sending. Two modes:
//!
//! * closed loop (`rate = None`): every connection sends its next request as soon as the
//!   previous one is answered — the peak rate;
//! * open loop (`rate = Some(r)`): requests are scheduled at `r` per second whatever the answers,
//!   and latency counts from the scheduled time when the generator is behind schedule, so a slow
//!   server cannot hide its queueing (no coordinated omission).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tally_crypto::envelope::ReplyKey;
use tally_crypto::session::Direction;
use tally_proto::wire::{
    PATH_AUTHORIZE, PATH_SESSION_REPORT, Reply, SealedResponse, SessionEnvelope,
};

use super::http::{connect, plain_error, send};
use super::requests::{DeviceSession, Sealed, Target, report_id, report_request, seal_nth};

/// What one phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A ~300-byte JSON body to the bare echo.
    Echo,
    /// The same body to the durable echo (answered once it is on stable storage).
    DurableEcho,
    /// A sealed authorization to the crypto-only baseline.
    Crypto,
    /// A sealed authorization to Tally.
    Authorize,
    /// A usage report (one report, a new id each time) in the device's report session.
    SessionReport,
}

/// Measured figures of one phase.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
    /// Envelopes the generator had to seal during the measurement (pool too small): the rate is
    /// then a lower bound.
    pub sealed_live: u64,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds another run of the same phase: counts and times add up, latencies merge.
    pub fn absorb(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.sealed_live += other.sealed_live;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
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

/// How a phase is driven.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests per second in open loop; `None` for the closed-loop peak.
    pub rate: Option<f64>,
}

/// Everything the connections of one phase share (one thread, so `Rc`/`Cell`).
struct Shared {
    phase: Phase,
    target: Target,
    echo_body: Bytes,
    pool: RefCell<Vec<Sealed>>,
    sessions: Vec<DeviceSession>,
    issued: Cell<u64>,
    sealed_live: Cell<u64>,
}

/// A request on its way, with what is needed to check its answer.
enum Pending {
    Echo(usize),
    Sealed(Box<ReplyKey>, bool),
    Session(usize, u64),
}

impl Shared {
    fn next(&self) -> Result<(&'static str, Bytes, Pending), String> {
        let n = self.issued.get();
        self.issued.set(n + 1);
        match self.phase {
            Phase::Echo | Phase::DurableEcho => Ok((
                if self.phase == Phase::Echo {
                    "/echo"
                } else {
                    "/durable-echo"
                },
                self.echo_body.clone(),
                Pending::Echo(self.echo_body.len()),
            )),
            Phase::Crypto | Phase::Authorize => {
                let sealed = match self.pool.borrow_mut().pop() {
                    Some(s) => s,
                    None => {
                        self.sealed_live.set(self.sealed_live.get() + 1);
                        seal_nth(&self.target, n as usize)?
                    }
                };
                let path = match self.phase {
                    Phase::Crypto => "/crypto",
                    _ => PATH_AUTHORIZE,
                };
                Ok((
                    path,
                    sealed.body,
                    Pending::Sealed(Box::new(sealed.reply_key), self.phase != Phase::Crypto),
                ))
            }
            Phase::SessionReport => {
                let i = n as usize % self.sessions.len().max(1);
                let s = self
                    .sessions
                    .get(i)
                    .ok_or("no report sessions were opened")?;
                let seq = s.seq.get() + 1;
                s.seq.set(seq);
                let req = report_request(report_id());
                let plain = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
                let ct = s
                    .key
                    .seal(Direction::ToServer, seq, &s.ticket, &plain)
                    .map_err(|e| e.to_string())?;
                let body = serde_json::to_vec(&SessionEnvelope {
                    v: tally_proto::wire::PROTOCOL_VERSION,
                    ticket: s.ticket.clone(),
                    seq,
                    ct,
                })
                .map_err(|e| e.to_string())?;
                Ok((PATH_SESSION_REPORT, body.into(), Pending::Session(i, seq)))
            }
        }
    }

    fn check(&self, pending: Pending, status: u16, body: &[u8]) -> Result<(), String> {
        let plain = match pending {
            Pending::Echo(len) => {
                return if body.len() == len {
                    Ok(())
                } else {
                    Err(format!("echo of {} bytes for {len}", body.len()))
                };
            }
            Pending::Sealed(key, check_reply) => {
                let sealed: SealedResponse =
                    serde_json::from_slice(body).map_err(|_| plain_error(status, body))?;
                let plain = key.open(&sealed).map_err(|e| e.to_string())?;
                if !check_reply {
                    return Ok(());
                }
                plain
            }
            Pending::Session(i, seq) => {
                let s = self.sessions.get(i).ok_or("unknown session")?;
                let sealed: SealedResponse =
                    serde_json::from_slice(body).map_err(|_| plain_error(status, body))?;
                s.key
                    .open(Direction::ToClient, seq, &s.ticket, &sealed.ct)
                    .map_err(|e| e.to_string())?
            }
        };
        match serde_json::from_slice::<Reply<serde::de::IgnoredAny>>(&plain) {
            Ok(Reply::Ok(_)) => Ok(()),
            Ok(Reply::Err(e)) => Err(format!("{} {}: {}", e.code, e.name, e.message)),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Per-connection tallies.
#[derive(Default)]
pub struct Tally {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

async fn connection(
    shared: Rc<Shared>,
    drive: Drive,
    start: Instant,
    slots: Rc<Cell<u64>>,
) -> Tally {
    let mut tally = Tally::default();
    let addr = shared.target.addr.clone();
    let mut sender = match connect(&addr).await {
        Ok(s) => s,
        Err(e) => {
            tally.errors += 1;
            tally.first_error = Some(e);
            return tally;
        }
    };
    let measure_from = start + drive.warmup;
    let deadline = measure_from + drive.duration;
    loop {
        // When the request is due, and whether the generator is behind schedule.
        let (due, behind) = match drive.rate {
            None => (Instant::now(), false),
            Some(rate) => {
                let slot = slots.get();
                slots.set(slot + 1);
                let due = start + Duration::from_secs_f64(slot as f64 / rate);
                let behind = due <= Instant::now();
                if !behind {
                    tokio::time::sleep_until(due.into()).await;
                }
                (due, behind)
            }
        };
        if due >= deadline {
            break;
        }
        let began = if behind { due } else { Instant::now() };
        let result = match shared.next() {
            Ok((path, body, pending)) => match send(&mut sender, &addr, path, body).await {
                Ok((status, bytes)) => shared.check(pending, status, &bytes),
                Err(e) => {
                    // The connection is gone: open a new one for the next request.
                    if let Ok(s) = connect(&addr).await {
                        sender = s;
                    }
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        if began < measure_from {
            continue;
        }
        match result {
            Ok(()) => {
                tally.ok += 1;
                tally
                    .latencies_us
                    .push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    tally
}

/// Runs one phase and gathers its figures. `pool` holds envelopes sealed beforehand (sealed
/// phases), `sessions` the report sessions (session phase).
pub fn run(
    phase: Phase,
    target: &Target,
    drive: Drive,
    pool: Vec<Sealed>,
    sessions: Vec<DeviceSession>,
) -> Outcome {
    let shared = Rc::new(Shared {
        phase,
        target: target.clone(),
        echo_body: Bytes::from(format!(
            r#"{{"device_uuid":"{}","product":"{}","organization":"{}","handshake_code":"{}","padding":"{}"}}"#,
            target.device(0),
            target.product,
            target.organization,
            target.handshake_code,
            "x".repeat(160)
        )),
        pool: RefCell::new(pool),
        sessions,
        issued: Cell::new(0),
        sealed_live: Cell::new(0),
    });
    let start = Instant::now();
    let slots = Rc::new(Cell::new(0));
    let tallies = run_local(drive.connections, |_| {
        connection(shared.clone(), drive, start, slots.clone())
    });
    let mut outcome = Outcome {
        elapsed: drive.duration,
        sealed_live: shared.sealed_live.get(),
        ..Default::default()
    };
    for t in tallies {
        outcome.ok += t.ok;
        outcome.errors += t.errors;
        outcome.latencies_us.extend(t.latencies_us);
        if outcome.first_error.is_none() {
            outcome.first_error = t.first_error;
        }
    }
    outcome.latencies_us.sort_unstable();
    outcome
}

/// Runs `tasks` futures made by `make` on one thread until all finish.
pub fn run_local<F, Fut>(tasks: usize, make: F) -> Vec<Tally>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Tally> + 'static,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return vec![Tally {
                errors: 1,
                first_error: Some(e.to_string()),
                ..Tally::default()
            }];
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let handles: Vec<_> = (0..tasks.max(1))
            .map(|i| tokio::task::spawn_local(make(i)))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            if let Ok(t) = h.await {
                out.push(t);
            }
        }
        out
    })
}
