//! Threads that do background work for requests already answered (the SQLite writer, the OTLP
//! encoder, the log flusher) run below the request-serving threads' priority.
//!
//! Their work comes in bursts: a batch of 512 request records is a few milliseconds of SQLite
//! on one core. At the same priority the kernel's fair scheduler shares that core with the
//! tokio workers for the length of the burst, and the requests waiting on them show it in
//! their tail latency. At nice 10 a thread weighs about a tenth of a nice-0 thread when both
//! want the core, so the workers run first, while the background thread still gets a tenth
//! of a busy core and all of an idle one. Its queue (bounded, counted when full) absorbs the
//! wait.
//!
//! Nice 10 still lets a burst delay the tail: a task woken onto the core the burst holds waits
//! out the burst's time slice (2,000 req/s through keel: p99 1.2–1.5 ms at nice 10, 0.95–1.14 ms
//! with the SQLite thread in the idle class, docs/BENCHMARKS.md). A [`Pacer`] therefore keeps
//! its thread in Linux's idle scheduling class (`SCHED_IDLE`: any other thread that wakes takes
//! the core at once, and a core running only idle-class work counts as free) while the thread
//! keeps up, and at nice 10 for a while after a job took [`BEHIND`] or longer from hand-off to
//! done, so a saturated machine cannot starve the request log until its queue drops records.
//! Leaving the idle class needs `CAP_SYS_NICE` or `RLIMIT_NICE` ≥ 10; where the process has
//! neither, the thread stays at nice 10 throughout.

use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The nice value background threads run at (outside the idle class).
pub const BACKGROUND_NICE: i32 = 10;
/// A job that took this long from hand-off to done means the thread is falling behind.
pub const BEHIND: Duration = Duration::from_millis(50);
/// How long a thread that fell behind stays at nice 10 after its last slow job.
pub const CATCH_UP: Duration = Duration::from_secs(1);

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

/// How one thread of this process is scheduled, as `/proc` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadClass {
    pub nice: i32,
    /// In the idle scheduling class.
    pub idle: bool,
}

/// The scheduling of every thread of this process named `name` (Linux; elsewhere none), for
/// tests and diagnostics.
pub fn threads_named(name: &str) -> Vec<ThreadClass> {
    /// `SCHED_IDLE` as `/proc/*/stat` reports the policy.
    const IDLE_POLICY: i64 = 5;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        // Fields after the parenthesised name: state is field 3, nice 19, policy 41.
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // the thread ended between listing and reading
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let field = |n: usize| -> Option<i64> { fields.get(n - 3)?.parse().ok() };
        if let (Some(nice), Some(policy)) = (field(19), field(41)) {
            found.push(ThreadClass {
                nice: i32::try_from(nice).unwrap_or(i32::MAX),
                idle: policy == IDLE_POLICY,
            });
        }
    }
    found
}

/// Keeps one background thread in the idle class while it keeps up (see the module docs).
/// Create it on the thread it paces; call [`Pacer::finished`] after each job.
#[derive(Debug)]
pub struct Pacer {
    /// The thread may leave the idle class again (so it may enter it).
    switchable: bool,
    idle: bool,
    /// While set and in the future, the thread stays at nice 10.
    catch_up_until: Option<Instant>,
}

impl Pacer {
    /// Lowers the calling thread to nice 10, then puts it in the idle class if it could leave
    /// that again.
    pub fn start() -> Pacer {
        lower_this_thread();
        let switchable = idle_class_available();
        let mut pacer = Pacer {
            switchable,
            idle: false,
            catch_up_until: None,
        };
        pacer.set_idle(true);
        pacer
    }

    /// Whether the thread is in the idle class now.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// After a job: `took` is its time from hand-off to done, at `now`.
    pub fn finished(&mut self, took: Duration, now: Instant) {
        if took >= BEHIND {
            self.catch_up_until = Some(now + CATCH_UP);
        }
        let idle = self.catch_up_until.is_none_or(|until| now >= until);
        if idle {
            self.catch_up_until = None;
        }
        self.set_idle(idle);
    }

    fn set_idle(&mut self, idle: bool) {
        if idle == self.idle || !self.switchable {
            return;
        }
        #[cfg(target_os = "linux")]
        if sys::set_idle(idle) {
            self.idle = idle;
        }
    }
}

/// A job for a [`BackgroundThread`] over state `S`.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A named thread that owns some state `S` (a database connection, nothing) and runs the
/// jobs handed to it one after another, paced by a [`Pacer`]. Cheap to clone; the thread
/// ends once every clone is dropped and its queue is done.
pub struct BackgroundThread<S> {
    /// Each job with when it was handed over (the pacer times it).
    jobs: mpsc::Sender<(Instant, Job<S>)>,
}

impl<S> Clone for BackgroundThread<S> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<S> std::fmt::Debug for BackgroundThread<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundThread").finish_non_exhaustive()
    }
}

impl<S: Send + 'static> BackgroundThread<S> {
    /// Starts the thread `name` owning `state`.
    pub fn spawn(name: &str, mut state: S) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<(Instant, Job<S>)>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut pacer = Pacer::start();
                while let Ok((handed_over, job)) = queue.recv() {
                    job(&mut state);
                    let now = Instant::now();
                    pacer.finished(now.saturating_duration_since(handed_over), now);
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the thread and awaits its result; `None` if the thread is gone.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job<S> = Box::new(move |state| {
            // The caller may have gone away (future dropped); the work is done either way.
            let _ = reply.send(f(state));
        });
        self.jobs.send((Instant::now(), job)).ok()?;
        answer.await.ok()
    }
}

/// Whether a thread at nice 10 that enters the idle class may leave it (tried once, on a
/// scratch thread): whether [`Pacer`]s use the idle class in this process.
pub fn idle_class_available() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            std::thread::spawn(|| {
                lower_this_thread() == Some(BACKGROUND_NICE)
                    && sys::set_idle(true)
                    && sys::set_idle(false)
            })
            .join()
            .unwrap_or(false)
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    })
}

#[cfg(target_os = "linux")]
mod sys {
    /// Moves the calling thread into (`true`) or out of the idle scheduling class, keeping
    /// its nice value. Whether the kernel agreed.
    #[allow(unsafe_code)]
    pub(super) fn set_idle(idle: bool) -> bool {
        let policy = if idle {
            libc::SCHED_IDLE
        } else {
            libc::SCHED_OTHER
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid, initialised sched_param
        // that outlives the call, which only reads it.
        unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
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

    /// What a paced thread reports of itself after each step: (pacer says idle, kernel says
    /// idle, nice).
    fn steps(jobs: &[(u64, u64)]) -> Vec<(bool, bool, Option<i32>)> {
        const NAME: &str = "keel-pacer-test";
        let jobs = jobs.to_vec();
        let seen_now = |pacer: &Pacer| {
            let me = threads_named(NAME).first().copied();
            (
                pacer.is_idle(),
                me.is_some_and(|t| t.idle),
                me.map(|t| t.nice),
            )
        };
        std::thread::Builder::new()
            .name(NAME.to_owned())
            .spawn(move || {
                let start = Instant::now();
                let mut pacer = Pacer::start();
                let mut seen = vec![seen_now(&pacer)];
                for (took_ms, at_ms) in jobs {
                    let now = start + Duration::from_millis(at_ms);
                    pacer.finished(Duration::from_millis(took_ms), now);
                    seen.push(seen_now(&pacer));
                }
                seen
            })
            .ok()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }

    #[test]
    fn a_paced_thread_is_idle_class_until_it_falls_behind_and_again_once_caught_up() {
        // Prompt, slow (50 ms), prompt within the catch-up second, prompt after it.
        let seen = steps(&[(3, 100), (50, 300), (3, 900), (3, 1_300), (49, 1_400)]);
        assert_eq!(seen.len(), 6);
        let pacer_says: Vec<bool> = seen.iter().map(|s| s.0).collect();
        if !idle_class_available() {
            // Without the right to leave it, the thread never enters the idle class.
            assert!(pacer_says.iter().all(|idle| !idle), "{seen:?}");
            assert!(seen.iter().all(|s| !s.1), "{seen:?}");
            return;
        }
        assert_eq!(
            pacer_says,
            [true, true, false, false, true, true],
            "{seen:?}"
        );
        for (i, (pacer, kernel, nice)) in seen.iter().enumerate() {
            assert_eq!(pacer, kernel, "step {i}: the kernel agrees with the pacer");
            assert!(
                nice.is_some_and(|n| n >= BACKGROUND_NICE),
                "step {i}: nice {nice:?} kept in either class"
            );
        }
    }
}
