//! Rounds of the peak phases. On a shared machine the speed of the host drifts by tens of percent
//! within minutes, so a ratio is only as good as the closeness in time of its two measurements:
//! each round runs every phase once, each round's ratios are taken within the round, and the
//! median round is the figure printed.

/// Peak requests/s of one round (0 for a phase not run).
#[derive(Debug, Default, Clone, Copy)]
pub struct PeakRates {
    pub echo: f64,
    pub durable_echo: f64,
    pub crypto: f64,
    pub authorize: f64,
    pub report: f64,
    /// The same phases on the PostgreSQL store (`--database`).
    pub pg_authorize: f64,
    pub pg_report: f64,
}

/// A comparison printed at the end of the run.
#[derive(Clone, Copy)]
pub struct Ratio {
    pub label: &'static str,
    pub of: fn(&PeakRates) -> f64,
    pub to: fn(&PeakRates) -> f64,
}

/// The two comparisons the targets are stated in, then what durability alone costs on this
/// machine and how close reports come to that floor, then the PostgreSQL store against SQLite
/// (with `--database`).
pub const RATIOS: [Ratio; 6] = [
    Ratio {
        label: "authorize / crypto-only baseline:",
        of: |r| r.authorize,
        to: |r| r.crypto,
    },
    Ratio {
        label: "usage report (session) / bare echo:",
        of: |r| r.report,
        to: |r| r.echo,
    },
    Ratio {
        label: "durable echo / bare echo:",
        of: |r| r.durable_echo,
        to: |r| r.echo,
    },
    Ratio {
        label: "usage report (session) / durable echo:",
        of: |r| r.report,
        to: |r| r.durable_echo,
    },
    Ratio {
        label: "authorize: postgres / sqlite:",
        of: |r| r.pg_authorize,
        to: |r| r.authorize,
    },
    Ratio {
        label: "usage report: postgres / sqlite:",
        of: |r| r.pg_report,
        to: |r| r.report,
    },
];

/// The median of `values` (the upper one of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The median over rounds of one phase's rate, for the runs at half of the peak.
pub fn median_rate(rounds: &[PeakRates], phase: fn(&PeakRates) -> f64) -> f64 {
    let rates: Vec<f64> = rounds.iter().map(phase).filter(|r| *r > 0.0).collect();
    median(&rates).unwrap_or(0.0)
}

/// The ratio in percent for each round where both phases ran.
pub fn percents(rounds: &[PeakRates], ratio: &Ratio) -> Vec<f64> {
    rounds
        .iter()
        .filter_map(|r| {
            let (of, to) = ((ratio.of)(r), (ratio.to)(r));
            (of > 0.0 && to > 0.0).then(|| 100.0 * of / to)
        })
        .collect()
}

/// `"26 %"` for one round, `"26 % (median of 5 rounds, 21–28 %)"` for several.
pub fn describe(percents: &[f64]) -> Option<String> {
    let mid = median(percents)?;
    if percents.len() == 1 {
        return Some(format!("{mid:.0} %"));
    }
    let low = percents.iter().copied().fold(f64::INFINITY, f64::min);
    let high = percents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(format!(
        "{mid:.0} % (median of {} rounds, {low:.0}–{high:.0} %)",
        percents.len()
    ))
}

/// One line per round with its rates, so the drift of the machine is visible.
pub fn round_line(number: usize, r: &PeakRates) -> String {
    let mut parts = Vec::new();
    for (name, rate) in [
        ("echo", r.echo),
        ("durable echo", r.durable_echo),
        ("crypto", r.crypto),
        ("authorize", r.authorize),
        ("report", r.report),
    ] {
        if rate > 0.0 {
            parts.push(format!("{name} {rate:.0}"));
        }
    }
    format!("round {number}: {} req/s", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(echo: f64, report: f64) -> PeakRates {
        PeakRates {
            echo,
            report,
            ..PeakRates::default()
        }
    }

    #[test]
    fn ratios_are_taken_within_each_round_and_the_median_round_is_reported() {
        // The machine slows down by half in the second round: a ratio of totals would mix them.
        let rounds = [round(100.0, 25.0), round(50.0, 15.0), round(80.0, 16.0)];
        let report = &RATIOS[1];
        let p = percents(&rounds, report);
        assert_eq!(p, vec![25.0, 30.0, 20.0]);
        assert_eq!(
            describe(&p).as_deref(),
            Some("25 % (median of 3 rounds, 20–30 %)")
        );
        assert_eq!(describe(&p[..1]).as_deref(), Some("25 %"));
    }

    #[test]
    fn phases_not_run_give_no_ratio() {
        let rounds = [round(100.0, 0.0)];
        assert!(percents(&rounds, &RATIOS[1]).is_empty());
        assert_eq!(describe(&[]), None);
        assert_eq!(median_rate(&rounds, |r| r.report), 0.0);
        assert_eq!(median_rate(&rounds, |r| r.echo), 100.0);
    }
}
