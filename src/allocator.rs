//! How the allocator gives memory back. The binary uses mimalloc (`src/main.rs`); a server that
//! goes quiet after a burst (a load spike, an attack) should return to about the RSS it had
//! before (bench/attack measures it). `main` calls [`tune`] first and runs [`collect_when_idle`]
//! as each runtime thread parks.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t`; `libmimalloc-sys` names
/// only some options). The test below checks the index against the default it reads.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long freed pages wait before they are handed back (mimalloc's default is 1,000 ms).
const PURGE_DELAY_MS: std::ffi::c_long = 10;
/// How often, at most, a runtime thread that goes idle collects its freed pages.
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// Sets the defaults; call it first in `main`, before other threads start. `MIMALLOC_PURGE_DELAY`
/// and `MIMALLOC_ALLOW_THP`, when set, override them.
/// - Transparent huge pages off for the process: mimalloc asks for them on its arena, and a
///   2 MiB page stays resident while any 4 KiB of it is in use. Under the mixed attack they
///   raised the peak RSS from 70 to 100 MB and kept it after.
/// - Freed pages handed back after 10 ms instead of 1 s.
pub fn tune() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: without it the process only keeps more memory.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; `main` calls this before any other thread starts
        // (`mi_option_set` is not thread-safe).
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS)
        };
    }
}

thread_local! {
    static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs as a runtime thread parks. mimalloc purges a thread's freed pages only on that
/// thread's later allocations, so an idle server would keep its peak; at most once a second
/// per thread, this collects them.
pub fn collect_when_idle() {
    let now = Instant::now();
    let due = LAST_COLLECT.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < COLLECT_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        // SAFETY: takes no pointers and may run on any thread at any time; it walks the
        // calling thread's own heap.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_collect(false)
        };
    }
}

#[cfg(test)]
mod tests {
    /// The index names the purge delay: the option reads mimalloc 3's default for it. (A
    /// newer mimalloc that moves the option, or changes the default, fails here first.)
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        #[allow(unsafe_code)]
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(
            default,
            1000,
            "option {} is not the purge delay",
            super::PURGE_DELAY
        );
    }
}
