//! Threads that do background work for requests already answered (the SQLite writer, the log
//! flusher) run below the request-serving threads' priority.
//!
//! Their work comes in bursts: a batch of 256 request records is several milliseconds of
//! SQLite on one core. At the same priority the kernel's fair scheduler shares that core
//! with the tokio workers for the length of the burst, and the requests waiting on them show
//! it in their tail latency. At nice 10 a thread weighs about a tenth of a nice-0 thread
//! when both want the core, so the workers run first, while the background thread still
//! gets a tenth of a busy core and all of an idle one. Its queue (bounded, counted when
//! full) absorbs the wait.

/// The nice value background threads run at.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`] (Linux sets nice
/// per thread), or leaves it where it already is lower (a process started under `nice`).
/// Returns the thread's nice value afterwards. Elsewhere, or if the system refuses, the
/// thread keeps its priority, which costs latency and nothing else.
pub fn lower_this_thread() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        let now = this_thread_nice()?;
        if now >= BACKGROUND_NICE {
            return Some(now);
        }
        let tid = rustix::thread::gettid();
        rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE).ok()?;
        Some(BACKGROUND_NICE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The calling thread's nice value (Linux), for tests and diagnostics.
pub fn this_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_affects_only_the_calling_thread() {
        let before = this_thread_nice();
        let (lowered, seen) = std::thread::spawn(|| (lower_this_thread(), this_thread_nice()))
            .join()
            .unwrap_or((None, None));
        if cfg!(target_os = "linux") {
            let want = before.map(|b| b.max(BACKGROUND_NICE));
            assert!(want.is_some(), "getpriority works on Linux");
            assert_eq!(lowered, want);
            assert_eq!(seen, want, "the thread runs at the nice it reported");
            assert_eq!(
                this_thread_nice(),
                before,
                "the spawning thread kept its nice"
            );
        } else {
            assert_eq!((lowered, seen), (None, None));
        }
    }
}
