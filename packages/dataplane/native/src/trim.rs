//! Hands memory freed after a burst of connections back to the system. glibc's malloc keeps what the connections'
//! buffers freed inside its arenas (one per runtime thread) and on its own returns only the top of the main heap:
//! after a burst of 1000 connections the process stayed ~50 MiB above its idle size for good, and `malloc_trim(0)`
//! gave all of it back (docs/benchmarks.md, #12 RSS). The trim runs when the open connections have fallen to half
//! of the most seen since the last one (a burst has ended), and again on the next few checks while fewer than 64
//! are open; never under a steady load, where it would only hold the arenas' locks for nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::proxy::Shared;

const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Fewer connections than this leave too little behind to be worth a trim; as many mean the plane is busy.
const MIN_PEAK: usize = 64;
/// Checks after a burst's trim that trim again while the plane stays quiet: what the burst's last connections
/// (and the upstream connections they pooled, closed later) free comes after the first trim.
const AGAIN: u8 = 5;

/// What the trimmer remembers between checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrimState {
    /// the most open connections seen since the last burst's trim
    pub peak: usize,
    /// checks left that trim again while quiet
    pub again: u8,
}

/// One check with `open` client connections: whether to trim now, and the state after it.
pub fn check(state: TrimState, open: usize) -> (bool, TrimState) {
    let peak = state.peak.max(open);
    if peak >= MIN_PEAK && open <= peak / 2 {
        return (true, TrimState { peak: open, again: AGAIN });
    }
    if open >= MIN_PEAK {
        return (false, TrimState { peak, again: 0 });
    }
    if state.again > 0 {
        return (true, TrimState { peak, again: state.again - 1 });
    }
    (false, TrimState { peak, again: 0 })
}

/// Samples the open connections until `stop`, trimming after each burst.
pub async fn trim_after_bursts(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut state = TrimState::default();
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        let (trim, next) = check(state, shared.open_connections.load(Ordering::Relaxed));
        state = next;
        if trim {
            release_free_memory();
        }
    }
}

/// The crate's one hand-written `unsafe`: a foreign call with no pointer, no aliasing and no lifetime to uphold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: glibc's malloc_trim takes no pointer and is thread-safe (it takes each arena's lock in turn); it only
    // returns free pages to the kernel and never moves or frees memory in use.
    unsafe {
        malloc_trim(0);
    }
}

/// Other allocators (musl's, macOS's) return memory on their own or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::{check, TrimState, AGAIN};

    fn state(peak: usize, again: u8) -> TrimState {
        TrimState { peak, again }
    }

    #[test]
    fn trims_after_a_burst_and_while_quiet_after_it() {
        // (state, open now) → (trim?, state after)
        let cases = [
            ((state(0, 0), 0), (false, state(0, 0))),
            ((state(0, 0), 40), (false, state(40, 0))),
            ((state(40, 0), 0), (false, state(40, 0))), // too small a burst
            ((state(0, 0), 1000), (false, state(1000, 0))),
            ((state(1000, 0), 900), (false, state(1000, 0))),
            ((state(1000, 0), 501), (false, state(1000, 0))),
            ((state(1000, 0), 500), (true, state(500, AGAIN))),
            ((state(1000, 0), 0), (true, state(0, AGAIN))),
            ((state(64, 0), 32), (true, state(32, AGAIN))),
            ((state(64, 0), 33), (false, state(64, 0))),
            // quiet after a burst: again, until the count runs out
            ((state(0, AGAIN), 0), (true, state(0, AGAIN - 1))),
            ((state(3, 1), 10), (true, state(10, 0))),
            ((state(10, 0), 10), (false, state(10, 0))),
            // busy again: no more trims until the next burst ends
            ((state(500, 3), 300), (false, state(500, 0))),
            ((state(100, 0), 2000), (false, state(2000, 0))),
        ];
        for ((before, open), want) in cases {
            assert_eq!(check(before, open), want, "{before:?}, open {open}");
        }
    }
}
