//! The sliding window of report-session sequence numbers (as IPsec keeps one): a message number
//! is accepted once, and at most [`WINDOW`] - 1 numbers behind the highest seen. Every place that
//! keeps session windows (the server's memory, a shared database) applies this one rule.

/// Width of the window of accepted out-of-order sequence numbers.
pub const WINDOW: u64 = 64;

/// A session's window: the highest number seen, and bit `i` set when `highest - i` was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub highest: u64,
    pub seen: u64,
}

/// The window after accepting `seq`, or `None` when `seq` must be refused (0, seen before, or
/// too far behind).
pub fn accept(window: Window, seq: u64) -> Option<Window> {
    if seq == 0 {
        return None;
    }
    if seq > window.highest {
        let shift = seq - window.highest;
        let seen = if shift >= WINDOW {
            0
        } else {
            window.seen << shift
        };
        return Some(Window {
            highest: seq,
            seen: seen | 1,
        });
    }
    let behind = window.highest - seq;
    if behind >= WINDOW || window.seen & (1 << behind) != 0 {
        return None;
    }
    Some(Window {
        highest: window.highest,
        seen: window.seen | 1 << behind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seqs` through one window; the verdicts in order.
    fn verdicts(seqs: &[u64]) -> Vec<bool> {
        let mut w = Window::default();
        seqs.iter()
            .map(|&s| match accept(w, s) {
                Some(next) => {
                    w = next;
                    true
                }
                None => false,
            })
            .collect()
    }

    #[test]
    fn each_number_once_within_the_window() {
        assert_eq!(
            verdicts(&[0, 1, 1, 5, 3, 3, 200, 136, 137, 200]),
            [
                false, true, false, true, true, false, true, false, true, false
            ]
        );
    }

    #[test]
    fn a_jump_beyond_the_window_forgets_everything_below() {
        assert_eq!(
            verdicts(&[1, 100, 1, 37, 36]),
            [true, true, false, true, false]
        );
        assert_eq!(
            verdicts(&[u64::MAX, u64::MAX - 63, u64::MAX - 64]),
            [true, true, false]
        );
    }
}
