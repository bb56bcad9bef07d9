//! The threads a forward pass splits its work over: one pool for the process, so those
//! threads (their scratch buffers, their AMX tile state) live across passes instead of
//! being spawned for every matmul (a fresh thread first faults in megabytes of scratch
//! memory, which cost more than the multiply it was spawned for).

use std::sync::OnceLock;

/// Most threads in the pool.
const MAX_THREADS: usize = 4;

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("keel-embed-{i}"))
            .build()
            .map_err(
                |e| tracing::warn!(error = %e, "no embedding thread pool; running on one thread"),
            )
            .ok()
    })
    .as_ref()
}

/// One share of a split computation.
pub(crate) type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs `jobs` on the pool (the caller waits) and returns their results in order; runs
/// them one after another on the calling thread if the pool could not be built.
pub(crate) fn run_all<T: Send>(jobs: Vec<Job<'_, T>>) -> Vec<T> {
    let Some(pool) = pool() else {
        return jobs.into_iter().map(|job| job()).collect();
    };
    let mut results: Vec<Option<T>> = jobs.iter().map(|_| None).collect();
    pool.scope(|s| {
        for (job, slot) in jobs.into_iter().zip(results.iter_mut()) {
            s.spawn(move |_| *slot = Some(job()));
        }
    });
    results.into_iter().flatten().collect()
}

/// Runs `f` on one of the pool's threads (the caller waits), so that the splits `f` makes
/// with [`run_all`] start on a thread that then takes a share itself and never sleeps between
/// them: a caller outside the pool sleeps through every split and is woken after it, which on
/// a virtual machine whose idle cores halt costs a wake-up per split, dozens per pass.
pub(crate) fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}
