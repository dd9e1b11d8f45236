//! The adapter's one tokio runtime per process, and a way to wait for a
//! future from a gateway thread.

use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

/// The process-wide runtime, created on first use; `Err` holds why it
/// could not be built (kept, so every later request reports it too).
static RUNTIME: OnceLock<Result<Runtime, (io::ErrorKind, String)>> = OnceLock::new();

/// How often a wait for the response head checks whether the request was
/// cancelled (the client went away).
const CANCEL_TICK: Duration = Duration::from_millis(100);

/// A handle to gatekit-tower's shared tokio runtime, starting it on first use.
///
/// There is one per process: a multi-thread runtime with
/// `min(2, available_parallelism)` workers named `gatekit-tower`, with every
/// driver tokio was built with enabled (timers and I/O when a dependency
/// turns on tokio's `time` and `net` features). Services run on it; use the
/// handle to spawn background work next to them, or to build clients (a
/// database pool, say) that must live on the same runtime.
///
/// # Errors
/// The runtime could not be built (the OS refused a thread, say); the same
/// error is returned on every later call.
pub fn runtime() -> io::Result<Handle> {
    match RUNTIME.get_or_init(build) {
        Ok(rt) => Ok(rt.handle().clone()),
        Err((kind, msg)) => Err(io::Error::new(
            *kind,
            format!("gatekit-tower: cannot start the tokio runtime: {msg}"),
        )),
    }
}

fn build() -> Result<Runtime, (io::ErrorKind, String)> {
    let workers = thread::available_parallelism().map_or(1, |n| n.get().min(2));
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("gatekit-tower")
        .enable_all()
        .build()
        .map_err(|e| (e.kind(), e.to_string()))
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on the calling thread, inside `handle`'s runtime context (so
/// tokio timers and I/O work), parking between polls until it is ready.
///
/// With `cancelled`, the wait wakes every 100 ms to ask it, and gives up
/// (`None`) once it says yes. Unlike `Handle::block_on` this never panics
/// when called from inside some other runtime's context; it just blocks the
/// thread, which is what a gateway worker thread is for.
pub(crate) fn block_on<F: Future>(
    handle: &Handle,
    fut: F,
    cancelled: Option<&dyn Fn() -> bool>,
) -> Option<F::Output> {
    let _context = handle.enter();
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        match cancelled {
            Some(cancelled) => {
                if cancelled() {
                    return None;
                }
                thread::park_timeout(CANCEL_TICK);
            }
            None => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_per_process() {
        let a = runtime().unwrap();
        let b = runtime().unwrap();
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn block_on_waits_for_a_spawned_task() {
        let handle = runtime().unwrap();
        let task = handle.spawn(async { 6 * 7 });
        assert_eq!(block_on(&handle, task, None).unwrap().unwrap(), 42);
    }

    #[test]
    fn block_on_gives_up_when_cancelled() {
        let handle = runtime().unwrap();
        let never = std::future::pending::<()>();
        assert!(block_on(&handle, never, Some(&|| true)).is_none());
    }
}
