//! What a benchmark's app costs besides its answer, from the environment: `BENCH_SPIN_US=N`
//! computes for N µs (a busy loop), then `BENCH_SLEEP_MS=N` sleeps N ms (an app that waits on
//! something, such as a database). Both 0 when unset. Shared by `bench_hello` and
//! `hello_fastcgi_sdk` (`#[path]`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What each request costs besides the answer: computing, then sleeping.
struct Work {
    spin: Duration,
    sleep: Duration,
}

fn work() -> &'static Work {
    static WORK: OnceLock<Work> = OnceLock::new();
    WORK.get_or_init(|| {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Work {
            spin: Duration::from_micros(var("BENCH_SPIN_US")),
            sleep: Duration::from_millis(var("BENCH_SLEEP_MS")),
        }
    })
}

/// Spends what `BENCH_SPIN_US` and `BENCH_SLEEP_MS` say, before a request is answered.
pub fn spend() {
    let work = work();
    if !work.spin.is_zero() {
        let start = Instant::now();
        while start.elapsed() < work.spin {
            std::hint::spin_loop();
        }
    }
    if !work.sleep.is_zero() {
        std::thread::sleep(work.sleep);
    }
}
