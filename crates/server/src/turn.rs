//! Whose turn it is to wait in `epoll_wait`: one worker at a time.
//!
//! The [engine](crate::engine)'s workers use it, and so does any front-end
//! that runs its own threads on one epoll instance (gatekit-fastcgi's
//! SDK-style API, whose threads are the application's): a thread takes the
//! turn ([`Turn::take`]) or parks ([`Turn::park`]); the one with the turn
//! waits in `epoll_wait` and gives it up ([`Turn::give_up`]) as soon as
//! it returns; one more thread keeps watch ([`Turn::watch`]).
//!
//! When every idle worker waits in `epoll_wait` on the shared epoll
//! instance, the kernel wakes a sleeping worker for each event, even when a
//! worker that is already running would have taken that event a few
//! microseconds later. Each such wake-up is a context switch, and on a busy
//! machine they cost more than the requests themselves: behind `wrk -c 32`
//! on two cores, four workers waiting together made 0.38-0.46 context
//! switches per request, and served 15-30 % fewer requests than one worker
//! alone (0.01-0.04 per request).
//!
//! So one worker at a time holds the turn and waits in `epoll_wait`; it
//! gives the turn up as soon as it has an event, and takes it again when
//! that event is handled. Other idle workers park. Events that come while
//! the turn is free wait in epoll's ready list for the next worker to
//! finish, which then takes them without sleeping: a busy server runs on
//! the workers that are already awake.
//!
//! A worker stuck in a slow application must not keep the others' events
//! waiting, and a busy server must be able to use more than one worker. The
//! sweeper thread keeps watch ([`Turn::watch`]): every millisecond, if
//! events are ready, nobody holds the turn, a worker is parked, and the
//! awake workers do not keep up, it wakes one. They do not keep up when no
//! event was taken during the last tick (all stuck), or when over the last
//! few milliseconds they spent less than a fifth of their time waiting in
//! `epoll_wait` for something to do (all busy). So a parked worker is woken
//! at most a thousand times a second, whatever the rate of events, and an
//! event waits at most about two milliseconds for a worker while one is
//! free and the others are stuck. The watch stands down when no worker is
//! parked, or none has taken an event for a while; the first worker to
//! park, or the next event taken while one is parked, calls it back.
//!
//! Waking a worker only because events wait at the tick is not enough: a
//! worker that keeps up with a burst still has events waiting while it
//! works through it. Behind nginx at `wrk -c 256` with kept connections,
//! where requests come in waves of a hundred, that woke all four workers
//! for work one of them did with a third of its time to spare; the extra
//! workers answered each wave sooner, nginx then found its `keepalive`
//! cache of upstream connections empty more often, opened 400-460 new ones
//! per 1,000 requests instead of 270-320, and served about a fifth fewer
//! requests (docs/benchmarks.md). A server whose workers are all busy, in
//! applications that compute or block, still gets every worker within a
//! few milliseconds.
//!
//! One worker waiting at a time suits events that cost little. When they
//! cost much, a worker the watch woke because the others were busy would
//! find another waiting in `epoll_wait` the first time it ran out of work,
//! park, and wait for the next tick to be woken again: behind nginx at
//! `wrk -c 32`, an app that computes for 50 µs a request then ran on about
//! one core while part of the machine's time went idle. So while the
//! awake workers spend 40 µs or more per event taken (on a 32 ms average,
//! so that a worker kept off the CPU for a millisecond does not count),
//! each worker the watch wakes raises by one how many may wait in
//! `epoll_wait` at once (the *permits*): the woken worker stays, and the
//! next event wakes a waiting worker at once, a wake-up that costs little
//! beside the work it spreads. The permits come down to one as soon as
//! events cost under 20 µs (a hello world behind nginx costs 10-15 µs), one
//! at a time when the awake workers have time to spare (one fewer would
//! still be idle two fifths of its time), and when the server goes quiet.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::{lock, readable};

/// How often the watch looks, while on duty.
const TICK: Duration = Duration::from_millis(1);
/// Ticks without an event taken before the watch stands down.
const QUIET_TICKS: u32 = 50;
/// The share of the awake workers' time, in percent, that they must spend
/// waiting for events to count as keeping up.
const KEEP_UP_IDLE_PERCENT: u64 = 20;
/// How many ticks the average of that share spans (an exponentially
/// weighted moving average).
const AVERAGE_TICKS: u64 = 8;
/// One fewer worker may wait at once when, with one fewer awake for the
/// same work, the rest would still spend this share of their time, in
/// percent, waiting for events: twice [`KEEP_UP_IDLE_PERCENT`], so that a
/// worker let go is not called back at the next tick.
const LET_GO_IDLE_PERCENT: u64 = 40;
/// More than one worker may wait at once only while each event costs the
/// awake workers this much time or more, on average: then a wake-up per
/// event (a few microseconds) is small beside the work it spreads.
const HEAVY_EVENT: Duration = Duration::from_micros(40);
/// Back to one worker waiting at a time when events cost less than this.
const LIGHT_EVENT: Duration = Duration::from_micros(20);
/// A wait in `epoll_wait` at least this long found nothing ready and
/// slept; a wait that finds an event ready returns in a microsecond or two.
const SLEPT: Duration = Duration::from_micros(10);
/// How long a parked worker sleeps before it tries for the turn again
/// (a safety net: the watch and [`Turn::wake_all`] wake it sooner).
pub const PARK: Duration = Duration::from_secs(1);

/// The turn to wait in `epoll_wait`, the parked workers, and the watch.
#[derive(Debug)]
pub struct Turn {
    /// How many workers wait in `epoll_wait` now.
    holders: AtomicUsize,
    /// How many may wait there at once: one, until the watch finds the
    /// awake workers do not keep up; then one more for each worker it
    /// wakes, and one fewer again when they have time to spare.
    permits: AtomicUsize,
    /// Events taken since the start: the watch sees whether the workers
    /// are busy.
    taken: AtomicU64,
    /// Nanoseconds the workers slept in `epoll_wait`, waiting for events:
    /// the watch sees whether they keep up.
    idle_ns: AtomicU64,
    /// How many workers are parked (changed under `park_lock`).
    parked: AtomicUsize,
    park_lock: Mutex<()>,
    unpark: Condvar,
    /// The watch has stood down and waits to be called back.
    watch_idle: AtomicBool,
    watch_lock: Mutex<()>,
    watch_wake: Condvar,
}

impl Default for Turn {
    fn default() -> Turn {
        Turn {
            holders: AtomicUsize::new(0),
            permits: AtomicUsize::new(1),
            taken: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            parked: AtomicUsize::new(0),
            park_lock: Mutex::new(()),
            unpark: Condvar::new(),
            watch_idle: AtomicBool::new(false),
            watch_lock: Mutex::new(()),
            watch_wake: Condvar::new(),
        }
    }
}

impl Turn {
    /// Takes a turn if one is free (one worker in `epoll_wait` at a time,
    /// or more while the watch lets more wait).
    pub fn take(&self) -> bool {
        let permits = self.permits.load(Ordering::Relaxed);
        let mut holders = self.holders.load(Ordering::Relaxed);
        loop {
            if holders >= permits {
                return false;
            }
            match self.holders.compare_exchange_weak(
                holders,
                holders + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => holders = now,
            }
        }
    }

    /// Whether a turn is free.
    fn free(&self) -> bool {
        self.holders.load(Ordering::SeqCst) < self.permits.load(Ordering::SeqCst)
    }

    /// Gives the turn up, having found `events` events after waiting
    /// `waited` in `epoll_wait`.
    pub fn give_up(&self, events: usize, waited: Duration) {
        self.holders.fetch_sub(1, Ordering::Release);
        if waited >= SLEPT {
            let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            self.idle_ns.fetch_add(ns, Ordering::Relaxed);
        }
        if events > 0 {
            self.taken.fetch_add(1, Ordering::Relaxed);
            if self.parked.load(Ordering::Relaxed) > 0 {
                self.call_watch();
            }
        }
    }

    /// Calls the watch back on duty if it stood down.
    fn call_watch(&self) {
        if self.watch_idle.load(Ordering::Relaxed) && self.watch_idle.swap(false, Ordering::SeqCst)
        {
            let _guard = lock(&self.watch_lock);
            self.watch_wake.notify_one();
        }
    }

    /// Parks this worker until the watch wakes it, [`Turn::wake_all`] is
    /// called, or `at_most` has passed ([`PARK`] unless the caller has a
    /// deadline); then the caller looks at `stop` and tries for the turn
    /// again. `stop` is set before `wake_all` is called.
    pub fn park(&self, stop: &AtomicBool, at_most: Duration) {
        let guard = lock(&self.park_lock);
        if self.free() || stop.load(Ordering::SeqCst) {
            // Given up meanwhile: try for it rather than sleep.
            return;
        }
        if self.parked.fetch_add(1, Ordering::SeqCst) == 0 {
            // Nobody was parked: the watch may have stood down for that.
            self.call_watch();
        }
        let guard = self
            .unpark
            .wait_timeout(guard, at_most)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        self.parked.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
    }

    /// Wakes every parked worker (on stop, once the stop flag is set).
    pub fn wake_all(&self) {
        let _guard = lock(&self.park_lock);
        self.unpark.notify_all();
    }

    /// Keeps watch for `period` (see the module's documentation): wakes a
    /// parked worker, of `workers` in all, when events wait on `epoll`,
    /// nobody is waiting in `epoll_wait` and the awake workers do not keep
    /// up, and sets how many may wait there at once. `state` carries what
    /// the watch saw from one call to the next.
    pub fn watch(&self, epoll: &OwnedFd, workers: usize, period: Duration, state: &mut WatchState) {
        let end = Instant::now() + period;
        loop {
            let now = Instant::now();
            let Some(left) = end.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                return;
            };
            let alone =
                self.parked.load(Ordering::SeqCst) == 0 && self.permits.load(Ordering::SeqCst) == 1;
            if state.quiet >= QUIET_TICKS || alone {
                // Nothing to do (no events taken for a while, or no worker
                // to wake and one waiting at a time): stand down until
                // called back or the period ends.
                let mut guard = lock(&self.watch_lock);
                self.watch_idle.store(true, Ordering::SeqCst);
                let mut called = false;
                while !called {
                    let Some(left) = end.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    guard = self
                        .watch_wake
                        .wait_timeout(guard, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    called = !self.watch_idle.load(Ordering::SeqCst);
                }
                self.watch_idle.store(false, Ordering::SeqCst);
                if state.quiet >= QUIET_TICKS {
                    // No events for a while: the next ones start with one
                    // worker waiting.
                    self.permits.store(1, Ordering::SeqCst);
                }
                if !called {
                    return;
                }
                state.quiet = 0;
                state.seen = self.taken.load(Ordering::Relaxed);
                // Events taken while it stood down belong to no tick.
                state.taken_seen = state.seen;
                continue;
            }
            std::thread::sleep(left.min(TICK));
            let taken = self.taken.load(Ordering::Relaxed);
            let stuck = taken == state.seen;
            if stuck {
                state.quiet += 1;
            } else {
                state.seen = taken;
                state.quiet = 0;
            }
            let awake = workers.saturating_sub(self.parked.load(Ordering::SeqCst));
            let busy = state.busy(now.elapsed(), awake, self.idle_ns.load(Ordering::Relaxed));
            let per_event = state.per_event(taken);
            let heavy = per_event.is_some_and(|d| d >= HEAVY_EVENT);
            let light = per_event.is_none_or(|d| d < LIGHT_EVENT);
            state.cooling = state.cooling.saturating_sub(1);
            // Events wait and no worker is waiting for them, and the awake
            // workers are all stuck, or have been busy for a while (in
            // applications, or writing): a parked one is woken, and, if
            // events cost much, one more may wait at once from now on.
            if (stuck || busy) && self.holders.load(Ordering::SeqCst) == 0 && readable(epoll) {
                let _guard = lock(&self.park_lock);
                if self.parked.load(Ordering::SeqCst) > 0 {
                    let permits = self.permits.load(Ordering::SeqCst);
                    let raised = state.raise(permits, workers, heavy);
                    if raised != permits {
                        self.permits.store(raised, Ordering::SeqCst);
                    }
                    self.unpark.notify_one();
                }
            } else {
                let permits = self.permits.load(Ordering::SeqCst);
                let keep = state.settle(permits, awake, light);
                if keep != permits {
                    self.permits.store(keep, Ordering::SeqCst);
                }
            }
        }
    }
}

/// What the watch saw, kept from one [`Turn::watch`] to the next.
#[derive(Debug, Default)]
pub struct WatchState {
    /// The count of events taken at the last tick.
    seen: u64,
    /// Ticks in a row without an event taken.
    quiet: u32,
    /// The workers' idle nanoseconds at the last tick.
    idle_seen: u64,
    /// The moving averages, per tick, of the awake workers' idle time and
    /// of their time in all, in nanoseconds.
    idle_avg: u64,
    time_avg: u64,
    /// Ticks to wait before the number of workers that may wait at once
    /// is lowered (set when it changes).
    cooling: u32,
    /// The awake workers' busy time during the last tick, in nanoseconds.
    tick_busy: u64,
    /// The event counter at the last tick; the moving averages, over
    /// [`EVENT_AVERAGE_TICKS`], of the events taken per tick (times
    /// [`EVENT_SCALE`]) and of the workers' busy time per tick.
    taken_seen: u64,
    event_taken_avg: u64,
    event_busy_avg: u64,
}

/// How many ticks the average time per event spans: long enough that a
/// worker kept off the CPU for a millisecond or two, which takes no event
/// meanwhile, does not make events look costly.
const EVENT_AVERAGE_TICKS: u64 = 32;

/// The fixed-point scale of [`WatchState`]'s average of events per tick.
const EVENT_SCALE: u64 = 1024;

impl WatchState {
    /// Adds a tick of `tick` with `awake` workers awake, the workers'
    /// idle counter now standing at `idle_ns`; answers whether, on the
    /// average of the last ticks, they were idle less than
    /// [`KEEP_UP_IDLE_PERCENT`] of their time.
    fn busy(&mut self, tick: Duration, awake: usize, idle_ns: u64) -> bool {
        let time = u64::try_from(tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(awake.max(1) as u64);
        // A long wait is counted when it ends, in one tick: at most the
        // tick's time, or it would hide the busy ticks before it.
        let idle = idle_ns.wrapping_sub(self.idle_seen).min(time);
        self.idle_seen = idle_ns;
        self.tick_busy = time - idle;
        self.idle_avg = self.idle_avg - self.idle_avg / AVERAGE_TICKS + idle / AVERAGE_TICKS;
        self.time_avg = self.time_avg - self.time_avg / AVERAGE_TICKS + time / AVERAGE_TICKS;
        self.idle_avg.saturating_mul(100) < self.time_avg.saturating_mul(KEEP_UP_IDLE_PERCENT)
    }

    /// Adds a tick's events (the counter of events taken now standing at
    /// `taken`) to their average; answers the awake workers' time per
    /// event on the averages, `None` when no event was taken lately.
    fn per_event(&mut self, taken: u64) -> Option<Duration> {
        let events = taken.wrapping_sub(self.taken_seen);
        self.taken_seen = taken;
        let n = EVENT_AVERAGE_TICKS;
        self.event_taken_avg = self.event_taken_avg - self.event_taken_avg / n
            + events.saturating_mul(EVENT_SCALE) / n;
        self.event_busy_avg = self.event_busy_avg - self.event_busy_avg / n + self.tick_busy / n;
        self.event_busy_avg
            .saturating_mul(EVENT_SCALE)
            .checked_div(self.event_taken_avg)
            .map(Duration::from_nanos)
    }

    /// How many workers may wait at once after a worker is woken,
    /// `permits` before it, of `workers`: one more when events cost much
    /// (`heavy`); then none is let go for [`AVERAGE_TICKS`].
    fn raise(&mut self, permits: usize, workers: usize, heavy: bool) -> usize {
        if !heavy {
            return permits;
        }
        self.cooling = AVERAGE_TICKS as u32;
        (permits + 1).min(workers.max(1))
    }

    /// How many workers may wait at once after a tick without a wake-up,
    /// `permits` before it: no more than are awake; one when events cost
    /// little (`light`); one fewer when the awake ones have time to spare,
    /// at most once per [`AVERAGE_TICKS`].
    fn settle(&mut self, permits: usize, awake: usize, light: bool) -> usize {
        if self.cooling > 0 {
            return permits;
        }
        let keep = permits.min(awake.max(1));
        if light {
            1
        } else if keep > 1 && self.spare(awake) {
            self.cooling = AVERAGE_TICKS as u32;
            keep - 1
        } else {
            keep
        }
    }

    /// Whether, on the same averages, `awake` workers have so much time to
    /// spare that one fewer would still be idle [`LET_GO_IDLE_PERCENT`] of
    /// its time for the same work.
    fn spare(&self, awake: usize) -> bool {
        let n = awake as u64;
        if n < 2 || self.time_avg == 0 {
            return false;
        }
        // Busy time per tick, against what n - 1 workers have, less the
        // share they must keep idle.
        let busy = self.time_avg.saturating_sub(self.idle_avg);
        busy.saturating_mul(n).saturating_mul(100)
            <= self
                .time_avg
                .saturating_mul(n - 1)
                .saturating_mul(100 - LET_GO_IDLE_PERCENT)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rustix::event::epoll;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::thread::JoinHandle;

    /// An epoll instance watching one end of a socket pair; writing to the
    /// returned end makes an event ready.
    fn epoll_with_socket() -> (Arc<OwnedFd>, UnixStream, UnixStream) {
        let ep = Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
        let (a, b) = UnixStream::pair().unwrap();
        let data = epoll::EventData::new_u64(7);
        epoll::add(&*ep, &b, data, epoll::EventFlags::IN).unwrap();
        (ep, a, b)
    }

    fn make_ready(end: &UnixStream) {
        std::io::Write::write_all(&mut &*end, b"x").unwrap();
    }

    /// A worker that parks; returns once it is parked. The thread answers
    /// how long it stayed parked.
    fn parked_worker(turn: &Arc<Turn>) -> JoinHandle<Duration> {
        let parker = {
            let turn = Arc::clone(turn);
            std::thread::spawn(move || {
                let start = Instant::now();
                turn.park(&AtomicBool::new(false), PARK);
                start.elapsed()
            })
        };
        while turn.parked.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        parker
    }

    fn watch_in_background(turn: &Arc<Turn>, ep: &Arc<OwnedFd>, period: Duration) {
        let (turn, ep) = (Arc::clone(turn), Arc::clone(ep));
        std::thread::spawn(move || turn.watch(&ep, 2, period, &mut WatchState::default()));
    }

    #[test]
    fn one_holder_at_a_time() {
        let turn = Turn::default();
        assert!(turn.take());
        assert!(!turn.take());
        turn.give_up(0, Duration::ZERO);
        assert!(turn.take());
    }

    #[test]
    fn a_parked_worker_is_woken_when_events_wait_and_the_turn_is_free() {
        let turn = Arc::new(Turn::default());
        let (ep, a, _b) = epoll_with_socket();
        // A worker holds the turn and is busy (it never comes back).
        assert!(turn.take());
        let parker = parked_worker(&turn);
        // The busy worker gave the turn up for an event; another is ready.
        turn.give_up(1, Duration::ZERO);
        make_ready(&a);
        // Holding the turn again would hide the ready event from the watch:
        // the watch wakes the parked worker well before its own timeout.
        watch_in_background(&turn, &ep, Duration::from_millis(200));
        let slept = parker.join().unwrap();
        assert!(slept < Duration::from_millis(200), "parked for {slept:?}");
    }

    #[test]
    fn no_wake_while_a_worker_holds_the_turn() {
        let turn = Arc::new(Turn::default());
        let (ep, a, _b) = epoll_with_socket();
        make_ready(&a);
        assert!(turn.take());
        let parker = parked_worker(&turn);
        turn.watch(
            &ep,
            2,
            Duration::from_millis(20),
            &mut WatchState::default(),
        );
        // The holder takes the events: nobody else is woken for them.
        let slept = parker.join().unwrap();
        assert!(slept >= PARK / 2, "woken after {slept:?}");
    }

    /// A worker's loop until `stop` is set: gives the turn up with an
    /// event, computes for `busy`, takes the turn again, never waiting in
    /// `epoll_wait`. Starts holding the turn.
    fn busy_worker(turn: &Arc<Turn>, busy: Duration, stop: &Arc<AtomicBool>) -> JoinHandle<()> {
        let (turn, stop) = (Arc::clone(turn), Arc::clone(stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                turn.give_up(1, Duration::ZERO);
                let computing = Instant::now();
                while computing.elapsed() < busy {
                    std::hint::spin_loop();
                }
                while !turn.take() {
                    std::thread::yield_now();
                }
            }
            turn.give_up(0, Duration::ZERO);
        })
    }

    #[test]
    fn a_worker_that_is_always_busy_gets_help() {
        let turn = Arc::new(Turn::default());
        let (ep, a, _b) = epoll_with_socket();
        make_ready(&a);
        assert!(turn.take());
        let parker = parked_worker(&turn);
        // Takes an event every 200 µs and never waits for one: it makes
        // progress, so it is not stuck, but it does not keep up.
        let stop = Arc::new(AtomicBool::new(false));
        let worker = busy_worker(&turn, Duration::from_micros(200), &stop);
        watch_in_background(&turn, &ep, Duration::from_millis(300));
        let slept = parker.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
        assert!(slept < Duration::from_millis(200), "parked for {slept:?}");
    }

    /// Feeds `ticks` ticks of 1 ms, `awake` workers awake, idle `idle_us`
    /// a tick in all; answers the last verdict.
    fn feed(
        state: &mut WatchState,
        counter: &mut u64,
        ticks: u32,
        awake: usize,
        idle_us: u64,
    ) -> bool {
        let mut busy = false;
        for _ in 0..ticks {
            *counter += idle_us * 1000;
            busy = state.busy(Duration::from_millis(1), awake, *counter);
        }
        busy
    }

    #[test]
    fn busy_is_idle_under_a_fifth_of_the_awake_workers_time_on_average() {
        let mut state = WatchState::default();
        let mut idle = 0;
        // Idle a third of the time (one worker behind nginx at -c 256).
        assert!(!feed(&mut state, &mut idle, 50, 1, 330));
        // Two workers awake, each idle a tenth of the time.
        assert!(feed(&mut state, &mut idle, 50, 2, 200));
        // Never idle.
        assert!(feed(&mut state, &mut idle, 50, 4, 0));
        // One tick of keeping up does not end a busy spell at once ...
        assert!(feed(&mut state, &mut idle, 1, 1, 1000));
        // ... a few do.
        assert!(!feed(&mut state, &mut idle, 8, 1, 1000));
    }

    #[test]
    fn a_long_wait_counts_for_one_tick_only() {
        let mut state = WatchState::default();
        let mut idle = 0;
        assert!(feed(&mut state, &mut idle, 50, 1, 0));
        // A wait of a second ends: the workers were idle one tick, not a
        // thousand.
        idle += 1_000_000_000;
        assert!(state.busy(Duration::from_millis(1), 1, idle));
        assert!(feed(&mut state, &mut idle, 50, 1, 0));
    }

    #[test]
    fn a_wake_for_costly_events_lets_one_more_wait_at_once() {
        let mut state = WatchState::default();
        assert_eq!(state.raise(1, 4, false), 1, "cheap events: one waits");
        assert_eq!(state.raise(1, 4, true), 2);
        // None is let go right after.
        assert_eq!(state.settle(2, 2, false), 2);
        assert_eq!(state.raise(2, 4, true), 3);
        assert_eq!(state.raise(4, 4, true), 4, "never more than the workers");
        assert_eq!(state.raise(1, 0, true), 1);
    }

    /// Feeds `ticks` ticks of 1 ms: `awake` workers awake, idle `idle_us`
    /// and taking `events` events a tick in all; answers the last time per
    /// event.
    fn feed_events(
        state: &mut WatchState,
        counters: &mut (u64, u64),
        ticks: u32,
        awake: usize,
        idle_us: u64,
        events: u64,
    ) -> Option<Duration> {
        let mut per_event = None;
        for _ in 0..ticks {
            counters.0 += idle_us * 1000;
            counters.1 += events;
            state.busy(Duration::from_millis(1), awake, counters.0);
            per_event = state.per_event(counters.1);
        }
        per_event
    }

    #[test]
    fn the_time_per_event_is_averaged_over_the_awake_workers_busy_time() {
        let mut state = WatchState::default();
        let mut counters = (0, 0);
        // One worker, idle 40 %, 50 events a millisecond: 12 µs an event.
        let light = feed_events(&mut state, &mut counters, 200, 1, 400, 50).unwrap();
        assert!(light < LIGHT_EVENT, "{light:?}");
        assert!(light.abs_diff(Duration::from_micros(12)) < Duration::from_micros(1));
        // Kept off the CPU for two ticks (busy, no events): still light.
        let stalled = feed_events(&mut state, &mut counters, 2, 1, 0, 0).unwrap();
        assert!(stalled < HEAVY_EVENT, "{stalled:?}");
        // Two workers, never idle, 20 events a millisecond: 100 µs an event.
        let heavy = feed_events(&mut state, &mut counters, 200, 2, 0, 20).unwrap();
        assert!(heavy >= HEAVY_EVENT, "{heavy:?}");
        // No events lately: no figure.
        let mut quiet = WatchState::default();
        assert_eq!(feed_events(&mut quiet, &mut (0, 0), 5, 1, 1000, 0), None);
    }

    #[test]
    fn permits_come_down_with_light_events_or_time_to_spare() {
        let mut state = WatchState::default();
        let mut idle = 0;
        // Two workers awake, each idle a tenth of the time: no time to spare.
        feed(&mut state, &mut idle, 50, 2, 200);
        assert_eq!(state.settle(3, 2, false), 2, "no more than are awake");
        assert_eq!(state.settle(2, 2, false), 2);
        assert_eq!(state.settle(2, 2, true), 1, "light events: one");
        // Each idle 80 % of the time: one fewer would still be idle 60 %.
        feed(&mut state, &mut idle, 50, 2, 1600);
        assert_eq!(state.settle(2, 2, false), 1);
        // One at a time, once per average span.
        feed(&mut state, &mut idle, 50, 4, 3600);
        assert_eq!(state.settle(4, 4, false), 4, "cooling from the last");
        state.cooling = 0;
        assert_eq!(state.settle(4, 4, false), 3);
        assert_eq!(state.settle(3, 4, false), 3, "cooling");
        state.cooling = 0;
        assert_eq!(state.settle(3, 4, false), 2);
        // Each idle half the time: one fewer would be idle a third only.
        let mut state = WatchState::default();
        feed(&mut state, &mut idle, 50, 2, 1000);
        assert_eq!(state.settle(2, 2, false), 2);
        // One awake is never let go.
        assert_eq!(state.settle(1, 1, false), 1);
    }

    #[test]
    fn the_watch_stands_down_when_quiet_and_an_event_calls_it_back() {
        let turn = Arc::new(Turn::default());
        let (ep, a, _b) = epoll_with_socket();
        watch_in_background(&turn, &ep, Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(1);
        while !turn.watch_idle.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "never stood down");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Stood down: a worker takes the turn, another parks.
        assert!(turn.take());
        let parker = parked_worker(&turn);
        // The holder gives the turn up for an event and another is ready:
        // the watch is back on duty and wakes the parked worker.
        make_ready(&a);
        turn.give_up(1, Duration::ZERO);
        let slept = parker.join().unwrap();
        assert!(slept < Duration::from_millis(200), "parked for {slept:?}");
    }
}
