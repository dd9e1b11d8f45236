//! A bounded load generator: `connections` threads, one connection each, sending the same
//! request in a loop for `duration`, with a latency histogram of bounded size.
//!
//! Each thread owns a [`Connection`], so connections are reused exactly as the protocol
//! allows: HTTP keep-alive, FastCGI with `FCGI_KEEP_CONN` when [`Options::keep_conn`] is set,
//! SCGI never (a new connection per request, its connect time counted in the latency).

use std::thread;
use std::time::{Duration, Instant};

use crate::{Connection, Error, Options, Protocol, Request, Target};

/// Most connections (threads) one run may use.
pub const MAX_CONNECTIONS: usize = 1024;

/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The backend's protocol.
    pub protocol: Protocol,
    /// The backend's address.
    pub target: Target,
    /// The request every connection sends.
    pub request: Request,
    /// Limits, timeouts and connection reuse.
    pub options: Options,
    /// Concurrent connections, 1 to [`MAX_CONNECTIONS`] (clamped).
    pub connections: usize,
    /// How long to send requests, up to [`MAX_DURATION`] (clamped).
    pub duration: Duration,
}

impl Config {
    /// A run of `duration` over `connections` connections, with default [`Options`].
    #[must_use]
    pub fn new(
        protocol: Protocol,
        target: Target,
        request: Request,
        connections: usize,
        duration: Duration,
    ) -> Self {
        Config {
            protocol,
            target,
            request,
            options: Options::default(),
            connections,
            duration,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// Responses received, whatever their status.
    pub requests: u64,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Requests that got no response (connect, I/O, timeout or protocol errors).
    pub errors: u64,
    /// Of those, timeouts.
    pub timeouts: u64,
    /// The first error seen, as text.
    pub first_error: Option<String>,
    /// Wall time from the start until every thread stopped.
    pub elapsed: Duration,
    /// Connections used.
    pub connections: usize,
    /// Latency of each response, in nanoseconds.
    pub latency: Histogram,
}

impl Report {
    /// Responses per second of wall time.
    #[must_use]
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            // Counts stay far below 2^52, where the conversion is exact.
            #[allow(clippy::cast_precision_loss)]
            let requests = self.requests as f64;
            requests / secs
        } else {
            0.0
        }
    }
}

/// Runs the load and returns what it measured. Threads stop at the deadline; a request under
/// way then finishes (or times out after [`Options::io_timeout`]) and is counted.
///
/// # Errors
///
/// The request cannot be encoded for the protocol, or no thread could be started.
pub fn run(config: &Config) -> Result<Report, Error> {
    let connections = config.connections.clamp(1, MAX_CONNECTIONS);
    let duration = config.duration.min(MAX_DURATION);
    let client = Connection::new(
        config.protocol,
        config.target.clone(),
        config.options.clone(),
    );
    let prepared = client.prepare(&config.request)?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut totals = Tally::default();
    thread::scope(|scope| -> Result<(), Error> {
        let mut handles = Vec::with_capacity(connections);
        for i in 0..connections {
            let protocol = config.protocol;
            let target = config.target.clone();
            let options = config.options.clone();
            let prepared = &prepared;
            let spawned = thread::Builder::new()
                .name(format!("bench-{i}"))
                .stack_size(256 * 1024)
                .spawn_scoped(scope, move || {
                    let mut conn = Connection::new(protocol, target, options);
                    let mut tally = Tally::default();
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        match conn.exchange(prepared) {
                            Ok(response) => {
                                tally.latency.record(duration_ns(t0.elapsed()));
                                tally.requests += 1;
                                if !response.is_success() {
                                    tally.non_2xx += 1;
                                }
                            }
                            Err(e) => {
                                tally.errors += 1;
                                if e.is_timeout() {
                                    tally.timeouts += 1;
                                }
                                let refused = matches!(e, Error::Connect { .. });
                                tally.first_error.get_or_insert_with(|| e.to_string());
                                if refused {
                                    // Do not spin on a backend that is down.
                                    thread::sleep(Duration::from_millis(10));
                                }
                            }
                        }
                    }
                    tally
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) if handles.is_empty() => return Err(Error::Io(e)),
                // Fewer threads than asked for: run with those there are.
                Err(_) => break,
            }
        }
        for handle in handles {
            match handle.join() {
                Ok(tally) => totals.merge(tally),
                Err(_) => {
                    totals.errors += 1;
                    totals
                        .first_error
                        .get_or_insert_with(|| "a load thread panicked".to_owned());
                }
            }
            totals.connections += 1;
        }
        Ok(())
    })?;
    Ok(Report {
        requests: totals.requests,
        non_2xx: totals.non_2xx,
        errors: totals.errors,
        timeouts: totals.timeouts,
        first_error: totals.first_error,
        elapsed: start.elapsed(),
        connections: totals.connections,
        latency: totals.latency,
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    non_2xx: u64,
    errors: u64,
    timeouts: u64,
    first_error: Option<String>,
    connections: usize,
    latency: Histogram,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.merge(&other.latency);
    }
}

/// Sub-buckets per power of two: 2^5 = 32, so a bucket is at most 1/32 (about 3%) wide.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values below `SUB` get a bucket each; each power of two from 2^5 to 2^63 gets `SUB`.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// A log-linear histogram of `u64` values (HdrHistogram's layout, simplified): exact below
/// 32, then 32 buckets per power of two, so any value is known to within about 3%, in a fixed
/// 15 KiB whatever the count.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Histogram::default()
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        if let Some(slot) = self.counts.get_mut(bucket_of(value)) {
            *slot += 1;
        }
        self.total += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest value counted (0 when empty).
    #[must_use]
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    /// The largest value counted (0 when empty).
    #[must_use]
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below or at which `percent` of the values lie (0 when empty): the top of the
    /// bucket holding that rank, never more than [`Histogram::max`].
    #[must_use]
    pub fn percentile(&self, percent: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let fraction = (percent / 100.0).clamp(0.0, 1.0);
        // Rounds up to a rank between 1 and total; totals are far below 2^52.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_sign_loss,
            clippy::cast_possible_truncation
        )]
        let rank = ((fraction * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_top(index).min(self.max).max(self.min());
            }
        }
        self.max
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let exponent = value.ilog2(); // at least SUB_BITS
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) as usize - SUB; // 0..SUB
    SUB + (exponent - SUB_BITS) as usize * SUB + sub
}

/// The largest value that falls in bucket `index`.
fn bucket_top(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let exponent = (index - SUB) / SUB + SUB_BITS as usize;
    let sub = ((index - SUB) % SUB + SUB) as u128;
    let shift = exponent - SUB_BITS as usize;
    // The last bucket's top is 2^64 - 1, so work in u128.
    u64::try_from(((sub + 1) << shift) - 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for value in (0..5000u64).chain([u64::MAX / 2, u64::MAX - 1, u64::MAX]) {
            let index = bucket_of(value);
            assert!(index < BUCKETS);
            assert!(index >= last, "{value}");
            last = index;
            assert!(bucket_top(index) >= value, "{value}");
            // Within 1/32 of the value.
            assert!(bucket_top(index) - value <= value / 32, "{value}");
        }
        assert_eq!(bucket_top(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::new();
        assert_eq!(h.percentile(50.0), 0);
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(50.0);
        assert!((500_000..=500_000 + 500_000 / 32).contains(&p50), "{p50}");
        let p99 = h.percentile(99.0);
        assert!((990_000..=990_000 + 990_000 / 32).contains(&p99), "{p99}");
        assert_eq!(h.percentile(100.0), 1_000_000);
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.min(), 1000);
        let mut other = Histogram::new();
        other.record(5);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.min(), 5);
        assert_eq!(h.percentile(0.0), 5);
    }
}
