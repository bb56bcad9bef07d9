//! Buffered log output for the server: a log line is appended to a buffer under a short lock,
//! and a flusher thread writes the buffer to stderr every [`FLUSH_EVERY`], so a request does
//! not pay a write system call for its line (about 6 % of keel's CPU per proxied request
//! in an A/B, docs/BENCHMARKS.md).
//!
//! Nothing is dropped: once [`MAX_PENDING`] bytes wait, the logging thread writes them itself
//! (a flood of lines slows the loggers instead of growing memory). Lines reach stderr in the
//! order they were logged. [`flush`] writes what waits; the server calls it at shutdown, and a
//! panic flushes before the panic message prints. A process killed outright loses at most the
//! last [`FLUSH_EVERY`] of lines (the request log in the store has every request regardless).

use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Bytes that may wait before the logging thread writes them itself.
pub const MAX_PENDING: usize = 256 * 1024;

/// The process-wide buffer (one stderr, one buffer).
static OUTPUT: OnceLock<Output> = OnceLock::new();

/// Where written batches go.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

struct Output {
    /// Lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// The batch being written; its lock orders the writers, so batches go out in the order
    /// they were taken from `pending`.
    writing: Mutex<Vec<u8>>,
    /// Where batches go: stderr (a test's buffer in tests).
    sink: Sink,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves plain bytes behind; keep using them.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Output {
    fn new(sink: Sink) -> Self {
        Self {
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            writing: Mutex::new(Vec::with_capacity(64 * 1024)),
            sink,
        }
    }

    fn append(&self, line: &[u8]) {
        let full = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len() >= MAX_PENDING
        };
        if full {
            self.flush();
        }
    }

    fn flush(&self) {
        let mut writing = lock(&self.writing);
        std::mem::swap(&mut *lock(&self.pending), &mut *writing);
        if !writing.is_empty() {
            (self.sink)(&writing);
            writing.clear();
        }
    }
}

fn to_stderr(bytes: &[u8]) {
    // Nowhere to report a failed write to stderr; the bytes are gone either way.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(bytes);
    let _ = stderr.flush();
}

/// The writer `tracing_subscriber` formats into: each event's bytes go to the buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Buffered;

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        output().append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines leave with the next periodic flush; `flush()` (the function) forces it.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Buffered;

    fn make_writer(&'a self) -> Self::Writer {
        Buffered
    }
}

/// The buffer, starting its flusher thread and panic hook on first use.
fn output() -> &'static Output {
    let mut started = false;
    let out = OUTPUT.get_or_init(|| {
        started = true;
        Output::new(Box::new(to_stderr))
    });
    if started {
        start_flusher();
    }
    out
}

fn start_flusher() {
    let spawned = std::thread::Builder::new()
        .name("keel-log".into())
        .spawn(|| {
            keel_store::background::lower_this_thread();
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            }
        });
    if let Err(e) = spawned {
        // Without the thread lines still leave, once MAX_PENDING bytes wait or at `flush()`.
        eprintln!("keel: could not start the log flusher thread ({e}); log lines are delayed");
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
}

/// Writes every buffered line to stderr now (no-op when nothing was buffered).
pub fn flush() {
    if let Some(out) = OUTPUT.get() {
        out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_order_until_flushed_and_a_full_buffer_writes_itself() {
        let written = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let out = Output::new(Box::new(move |b: &[u8]| lock(&sink).extend_from_slice(b)));
        out.append(b"one\n");
        out.append(b"two\n");
        assert!(lock(&written).is_empty(), "lines wait for the flush");
        out.flush();
        assert_eq!(&*lock(&written), b"one\ntwo\n");
        out.flush();
        assert_eq!(lock(&written).len(), 8, "an empty flush writes nothing");
        out.append(b"three\n");
        out.append(&vec![b'x'; MAX_PENDING]);
        let w = lock(&written);
        assert_eq!(w.len(), 8 + 6 + MAX_PENDING, "a full buffer writes itself");
        assert!(w.starts_with(b"one\ntwo\nthree\nxx"));
    }
}
