//! `tally bench`: the project's load generator. It starts the real server (this binary, `serve`)
//! on a temporary data directory, pinned to core 0 when `taskset` exists, and in the same run a
//! bare JSON echo and a crypto-only baseline; then it drives each with real protocol requests and
//! prints requests/s, p50/p99/p999 latency, errors, server RSS and the ratios to the baselines.
//! Run it as `taskset -c 1 tally bench` to keep the load on the other core.

mod baseline;
mod dataset;
mod durable_log;
mod http;
mod load;
mod postgres;
mod requests;
mod rounds;
mod server;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::{EncryptionKeyPair, SigningKey};

use load::{Drive, Outcome, Phase};
use requests::Target;
use rounds::PeakRates;
use server::{TallyServer, free_port, spawn, wait_for};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Seconds measured per phase (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent keep-alive connections (all driven from one thread).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Distinct devices authorizing.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Do not pin the servers to core 0.
    #[arg(long)]
    pub no_pin: bool,
    /// Envelopes sealed before each sealed phase (default: 12,000 per second measured).
    #[arg(long)]
    pub pool: Option<usize>,
    /// Skip the runs at half of the peak rate (p99 under a steady load).
    #[arg(long)]
    pub skip_half_load: bool,
    /// Devices registered in the data set before the run (e.g. 1000000), spread over
    /// `--codes` handshake codes; the server is restarted on it and its start-up timed.
    #[arg(long, default_value_t = 0)]
    pub registered: u64,
    /// Handshake codes the registered devices are spread over.
    #[arg(long, default_value_t = 100)]
    pub codes: u32,
    /// Phases to run, comma-separated, from: echo, durable-echo, crypto, authorize, report
    /// (default: all). Useful to profile one of them.
    #[arg(long, value_delimiter = ',')]
    pub phases: Vec<String>,
    /// Runs the peak phases this many times in turn and reports each ratio as the median of the
    /// rounds' ratios (each taken within its round), so that a drift of the machine's speed
    /// between a baseline and its phase does not bend the comparison.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Also run the authorize and report phases on a second server whose store is this
    /// PostgreSQL database (`postgres://…`), in every round next to the SQLite server; the bench
    /// works in a schema of its own there and drops it at the end.
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Args, Debug)]
pub struct BaselineArgs {
    #[arg(long)]
    pub listen: String,
    /// File with the baseline's secret keys (written by `tally bench`).
    #[arg(long)]
    pub keys: std::path::PathBuf,
    /// File the durable echo writes to (created; on the disk of the server's data directory).
    #[arg(long)]
    pub log: std::path::PathBuf,
}

/// The hidden `bench-baseline` subcommand: serves the baselines.
pub fn baseline(args: BaselineArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.keys)?;
    let mut lines = text.lines();
    let keys = baseline::CryptoKeys {
        encryption: EncryptionKeyPair::from_secret_base64(lines.next().unwrap_or(""))?,
        signing: SigningKey::from_base64(lines.next().unwrap_or(""))?,
        certificate: lines.collect::<Vec<_>>().join("\n"),
    };
    let log = durable_log::DurableLog::create(&args.log)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        baseline::serve(listener, Arc::new(keys), log).await
    })?;
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let pin = !args.no_pin;
    let dir = tempfile::tempdir()?;
    // Room for every device of every phase, and for the registered data set.
    let quantity = args.registered + 4 * args.devices.max(1) as u64 + 10;
    anyhow::ensure!(
        args.database.is_none() || args.registered == 0,
        "--registered writes its data set into the SQLite store only; leave out --database"
    );
    let mut server = TallyServer::start(dir.path(), pin, quantity, None)?;
    let postgres = match &args.database {
        Some(url) => Some(postgres::PostgresRun::start(
            url,
            &dir.path().join("postgres"),
            pin,
            quantity,
        )?),
        None => None,
    };
    let mut startup = None;
    if args.registered > 0 {
        server.stop();
        eprintln!("  registering {} devices …", args.registered);
        let took = dataset::register(&server.database(), args.registered, args.codes)?;
        eprintln!("  registered in {:.1} s", took.as_secs_f64());
        startup = Some(server.restart()?);
    }
    let listen = server.listen().to_owned();
    let activated = server.activated.clone();
    let request = server.request.clone();

    // The baselines, in their own process on the same core.
    let keys = baseline::CryptoKeys {
        encryption: EncryptionKeyPair::generate()?,
        signing: SigningKey::generate()?,
        certificate: activated.clone(),
    };
    let keys_file = dir.path().join("baseline.keys");
    std::fs::write(
        &keys_file,
        format!(
            "{}\n{}\n{}",
            keys.encryption.secret_to_base64(),
            keys.signing.to_base64(),
            keys.certificate
        ),
    )?;
    let base_port = free_port()?;
    let base_listen = format!("127.0.0.1:{base_port}");
    let log_file = dir.path().join("durable-echo.log");
    let _baseline = spawn(
        &[
            "bench-baseline",
            "--listen",
            &base_listen,
            "--keys",
            keys_file.to_str().unwrap_or(""),
            "--log",
            log_file.to_str().unwrap_or(""),
        ],
        pin,
        &[],
    )?;
    let base_url = format!("http://{base_listen}");
    wait_for(&format!("{base_url}/nothing"))?;

    let server_key = EncryptionPublicKey::from_base64(&request.server.encryption_key)?;
    let tally = Target {
        addr: listen.clone(),
        key: server_key,
        organization: "bench".into(),
        product: "bench-app".into(),
        handshake_code: "bench-default".into(),
        devices: args.devices.max(1),
        device_prefix: "authorize".into(),
    };
    let base = Target {
        addr: base_listen.clone(),
        key: keys.encryption.public(),
        ..tally.clone()
    };
    let duration = Duration::from_secs(args.seconds.max(1));
    let peak = Drive {
        connections: args.connections.max(1),
        warmup: Duration::from_secs(1),
        duration,
        rate: None,
    };
    let pool_size = args
        .pool
        .unwrap_or(usize::try_from(args.seconds + 1).unwrap_or(10) * 12_000);
    println!(
        "tally bench: {} connections, {} devices, {} s per phase, servers {} (cores: {}), {} envelopes sealed ahead per sealed phase",
        args.connections,
        args.devices,
        args.seconds,
        if pin { "pinned to core 0" } else { "unpinned" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        pool_size
    );
    let seal = |phase: Phase, t: &Target, n: usize| -> anyhow::Result<Vec<requests::Sealed>> {
        eprintln!("  sealing {n} envelopes for {phase:?} …");
        requests::seal_pool(t, n).map_err(|e| anyhow::anyhow!(e))
    };
    let mut rows: Vec<(String, Outcome)> = Vec::new();
    let mut measure = |name: &str, phase: Phase, t: &Target, drive: Drive, pool, sessions| {
        eprintln!("  running {name} …");
        let o = load::run(phase, t, drive, pool, sessions);
        if let Some(e) = &o.first_error {
            eprintln!("  ({name}) first error: {e}");
        }
        if o.sealed_live > 0 {
            eprintln!(
                "  ({name}) the generator sealed {} envelopes during the run: the rate is a lower bound (raise --pool)",
                o.sealed_live
            );
        }
        let rate = o.rate();
        match rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, all)) => all.absorb(o),
            None => rows.push((name.to_owned(), o)),
        }
        rate
    };
    let wanted = |name: &str| args.phases.is_empty() || args.phases.iter().any(|p| p == name);
    let reporters = Target {
        device_prefix: "reporter".into(),
        ..tally.clone()
    };
    let pg_targets = match &postgres {
        Some(run) => Some(run.targets(&tally)?),
        None => None,
    };
    let total_rounds = args.rounds.max(1);
    let mut rounds: Vec<PeakRates> = Vec::with_capacity(total_rounds);
    for number in 1..=total_rounds {
        if total_rounds > 1 {
            eprintln!("  round {number} of {total_rounds}");
        }
        let mut r = PeakRates::default();
        if wanted("echo") {
            r.echo = measure(
                "bare echo (baseline)",
                Phase::Echo,
                &base,
                peak,
                vec![],
                vec![],
            );
        }
        if wanted("durable-echo") {
            r.durable_echo = measure(
                "durable echo (baseline)",
                Phase::DurableEcho,
                &base,
                peak,
                vec![],
                vec![],
            );
        }
        if wanted("crypto") {
            r.crypto = measure(
                "crypto only (baseline)",
                Phase::Crypto,
                &base,
                peak,
                seal(Phase::Crypto, &base, pool_size)?,
                vec![],
            );
        }
        if wanted("authorize") {
            r.authorize = measure(
                "authorize",
                Phase::Authorize,
                &tally,
                peak,
                seal(Phase::Authorize, &tally, pool_size)?,
                vec![],
            );
        }
        if wanted("report") {
            eprintln!("  opening {} report sessions …", reporters.devices);
            let sessions = requests::open_sessions(&reporters, args.connections)
                .map_err(|e| anyhow::anyhow!(e))?;
            r.report = measure(
                "usage report (session)",
                Phase::SessionReport,
                &reporters,
                peak,
                vec![],
                sessions,
            );
        }
        if let Some((pg_tally, pg_reporters)) = &pg_targets {
            if wanted("authorize") {
                r.pg_authorize = measure(
                    "authorize (postgres)",
                    Phase::Authorize,
                    pg_tally,
                    peak,
                    seal(Phase::Authorize, pg_tally, pool_size)?,
                    vec![],
                );
            }
            if wanted("report") {
                eprintln!(
                    "  opening {} report sessions on postgres …",
                    pg_reporters.devices
                );
                let sessions = requests::open_sessions(pg_reporters, args.connections)
                    .map_err(|e| anyhow::anyhow!(e))?;
                r.pg_report = measure(
                    "usage report (postgres)",
                    Phase::SessionReport,
                    pg_reporters,
                    peak,
                    vec![],
                    sessions,
                );
            }
        }
        rounds.push(r);
    }
    let authorize = rounds::median_rate(&rounds, |r| r.authorize);
    let report = rounds::median_rate(&rounds, |r| r.report);
    if !args.skip_half_load && authorize > 0.0 && report > 0.0 {
        let half = |rate: f64| Drive {
            rate: Some((rate / 2.0).max(1.0)),
            ..peak
        };
        let again = Target {
            device_prefix: "authorize".into(),
            ..tally.clone()
        };
        let needed = (authorize / 2.0 * (duration.as_secs_f64() + 1.0) * 1.1) as usize + 100;
        measure(
            "authorize at half peak",
            Phase::Authorize,
            &again,
            half(authorize),
            seal(Phase::Authorize, &again, needed)?,
            vec![],
        );
        let sessions = requests::open_sessions(&reporters, args.connections)
            .map_err(|e| anyhow::anyhow!(e))?;
        measure(
            "usage report at half peak",
            Phase::SessionReport,
            &reporters,
            half(report),
            vec![],
            sessions,
        );
    }
    if total_rounds > 1 {
        println!("peak phases in {total_rounds} rounds; the table adds the rounds together");
        for (i, r) in rounds.iter().enumerate() {
            println!("{}", rounds::round_line(i + 1, r));
        }
    }
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "phase", "req/s", "p50 ms", "p99 ms", "p999 ms", "errors"
    );
    for (name, o) in &rows {
        println!(
            "{:<28} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8}",
            name,
            o.rate(),
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999),
            o.errors
        );
    }
    for ratio in &rounds::RATIOS {
        if let Some(text) = rounds::describe(&rounds::percents(&rounds, ratio)) {
            println!("{:<38} {text}", ratio.label);
        }
    }
    if let Some(took) = startup {
        println!(
            "server start-up with {} registered devices: {:.2} s",
            args.registered,
            took.as_secs_f64()
        );
    }
    if let Some(mib) = server.rss_mib() {
        println!("server RSS after the run: {mib:.1} MiB");
    }
    if let Some(run) = postgres {
        run.finish()?;
    }
    Ok(())
}
