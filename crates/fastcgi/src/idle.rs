//! Where the SDK-style API's threads wait: on the listening socket and on every idle kept
//! connection at once, with one epoll instance the accepting threads share.
//!
//! libfcgi's threads each wait on their own kept connection, so a thread whose web server
//! keeps a connection idle serves nobody else, and connections beyond the thread count wait in
//! the backlog until a kept one closes (nginx with `keepalive 32` in front of four threads: a
//! p99 of seconds and timeouts). Here a finished request's kept connection goes into a shared
//! set ([`Idle::park`]); any thread takes it back when the web server sends on it, or takes a
//! new connection from the listener, whichever comes first ([`Idle::wait`]).
//!
//! One thread at a time waits in `epoll_wait`: the one holding the engine's turn
//! ([`gatekit_server::turn`]); the others park. When every thread waited in `epoll_wait`, each
//! request that came while the thread that had just answered was still writing woke a sleeping
//! thread, a context switch per request; behind nginx at `wrk -c 256` with kept connections
//! that made four threads serve fewer requests than libfcgi. A thread that comes back to
//! [`Idle::wait`] takes what waits without sleeping, and a watch thread (started by the first
//! wait once two threads count here) wakes a parked one when the awake threads do not keep
//! up: all stuck in the application for a millisecond, or busy for most of the last few. While
//! requests cost the threads 40 µs or more each, the watch lets several wait at once.
//!
//! Every registration is one-shot: the event for a connection is taken once, by the thread
//! that serves it, and the listener is armed again ([`Idle::rearm_listener`]) as soon as its
//! connection is accepted. [`Idle::wake_all`] sets a flag, wakes the parked threads, and writes
//! an eventfd, left readable, which wakes the one in `epoll_wait`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use gatekit_server::turn::{PARK, Turn, WatchState};
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};

/// The listener's token.
const LISTENER: u64 = u64::MAX;
/// The shutdown eventfd's token.
const WAKE: u64 = u64::MAX - 1;

/// What [`Idle::wait`] found.
#[derive(Debug)]
pub(crate) enum Ready<T> {
    /// The listener has a connection waiting (it is disarmed until [`Idle::rearm_listener`]).
    Listener,
    /// An idle connection the web server sent on (or closed), now the caller's.
    Conn(T),
    /// [`Idle::wake_all`] was called.
    Woken,
    /// The timeout passed.
    TimedOut,
}

/// One place for an idle connection: a generation, so that a stale event for a connection
/// already taken (and its place reused) takes nothing.
struct Slot<T> {
    generation: u32,
    conn: Option<(T, Instant)>,
}

struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    /// When connections were last looked at for [`Idle::close_after`].
    last_sweep: Instant,
}

/// How long the watch thread keeps watch between looks at whether to stop.
const WATCH_PERIOD: Duration = Duration::from_millis(100);

/// The listener and the idle kept connections, watched by one epoll instance.
pub(crate) struct Idle<T> {
    epoll: Arc<OwnedFd>,
    wake: OwnedFd,
    /// Set by [`Idle::wake_all`]: every wait returns [`Ready::Woken`].
    woken: AtomicBool,
    /// Who waits in `epoll_wait`.
    turn: Arc<Turn>,
    /// How many threads wait here or serve a request: the watch's worker count.
    threads: Arc<AtomicUsize>,
    /// Whether the watch thread runs (started by the first wait once two threads count here;
    /// `false` if it could not be started, and then every thread waits in `epoll_wait`
    /// itself).
    watching: OnceLock<bool>,
    /// Tells the watch thread to end (on drop).
    stop_watch: Arc<AtomicBool>,
    slots: Mutex<Table<T>>,
    max: usize,
    /// Connections idle this long are closed (looked at every half of it, 10 ms to 1 s).
    close_after: Option<Duration>,
}

impl<T> std::fmt::Debug for Idle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("idle", &self.lock().len)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

fn token(generation: u32, idx: u32) -> u64 {
    (u64::from(generation & 0x7fff_ffff) << 32) | u64::from(idx)
}

impl<T> Idle<T> {
    fn lock(&self) -> MutexGuard<'_, Table<T>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: AsFd> Idle<T> {
    /// Watches `listener` (which must be non-blocking: another process sharing it may take the
    /// connection first), holds at most `max` idle connections, and closes those idle for
    /// `close_after`. `threads` counts the threads that take connections from here.
    pub(crate) fn new(
        listener: impl AsFd,
        max: usize,
        close_after: Option<Duration>,
        threads: Arc<AtomicUsize>,
    ) -> io::Result<Idle<T>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            listener,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        )?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN,
        )?;
        Ok(Idle {
            epoll: Arc::new(epoll),
            wake,
            woken: AtomicBool::new(false),
            turn: Arc::new(Turn::default()),
            threads,
            watching: OnceLock::new(),
            stop_watch: Arc::new(AtomicBool::new(false)),
            slots: Mutex::new(Table {
                slots: Vec::new(),
                free: Vec::new(),
                len: 0,
                last_sweep: Instant::now(),
            }),
            max,
            close_after: close_after.filter(|d| !d.is_zero()),
        })
    }

    /// Arms the listener again after [`Ready::Listener`].
    pub(crate) fn rearm_listener(&self, listener: impl AsFd) -> io::Result<()> {
        epoll::modify(
            &self.epoll,
            listener,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        )?;
        Ok(())
    }

    /// Holds `conn` until the web server sends on it or closes it. Gives it back when `max`
    /// connections are held already, or epoll refuses it: the caller closes it then.
    ///
    /// `registered` says whether `conn` was parked here before (it stays in the epoll set,
    /// disarmed, until it is closed): it is armed again then, and added otherwise, one system
    /// call either way. A wrong guess costs a second call, not the connection.
    pub(crate) fn park(&self, conn: T, registered: bool) -> Result<(), T> {
        let mut guard = self.lock();
        let slots = &mut *guard;
        if slots.len >= self.max {
            return Err(conn);
        }
        let idx = match slots.free.pop() {
            Some(idx) => idx,
            None => {
                let Ok(idx) = u32::try_from(slots.slots.len()) else {
                    return Err(conn);
                };
                slots.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                idx
            }
        };
        let Some(slot) = slots.slots.get_mut(idx as usize) else {
            return Err(conn);
        };
        slot.generation = slot.generation.wrapping_add(1) & 0x7fff_ffff;
        let data = epoll::EventData::new_u64(token(slot.generation, idx));
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT;
        // In the set before it is armed: an event may come at once, to another thread, which
        // takes the lock after this one.
        let armed = if registered {
            match epoll::modify(&*self.epoll, &conn, data, flags) {
                Err(rustix::io::Errno::NOENT) => epoll::add(&*self.epoll, &conn, data, flags),
                other => other,
            }
        } else {
            match epoll::add(&*self.epoll, &conn, data, flags) {
                Err(rustix::io::Errno::EXIST) => epoll::modify(&*self.epoll, &conn, data, flags),
                other => other,
            }
        };
        if armed.is_err() {
            slots.free.push(idx);
            return Err(conn);
        }
        slot.conn = Some((conn, Instant::now()));
        slots.len += 1;
        Ok(())
    }

    /// Waits (for at most `timeout`) until the listener has a connection, an idle connection
    /// has input, or [`Idle::wake_all`] is called. Closes the connections idle too long
    /// meanwhile.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Ready<T>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let sweep_every = self
            .close_after
            .map(|d| (d / 2).clamp(Duration::from_millis(10), Duration::from_secs(1)));
        loop {
            if self.woken.load(Ordering::SeqCst) {
                return Ok(Ready::Woken);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(Ready::TimedOut),
                },
                None => None,
            };
            let turn = self.watching();
            if turn && !self.turn.take() {
                self.turn
                    .park(&self.woken, left.map_or(PARK, |l| l.min(PARK)));
                continue;
            }
            if let (Some(limit), Some(every)) = (self.close_after, sweep_every) {
                self.sweep(limit, every);
            }
            let ts = match (left, sweep_every) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|d| Timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            let mut buffer = [MaybeUninit::<epoll::Event>::uninit(); 1];
            let start = Instant::now();
            let waited = epoll::wait(&*self.epoll, &mut buffer, ts.as_ref());
            let found = waited.as_ref().map_or(0, |(events, _)| events.len());
            if turn {
                self.turn.give_up(found, start.elapsed());
            }
            let events = match waited {
                Ok((events, _)) => events,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(event) = events.first() else {
                continue;
            };
            match event.data.u64() {
                LISTENER => return Ok(Ready::Listener),
                WAKE => return Ok(Ready::Woken),
                t => {
                    let (generation, idx) = ((t >> 32) as u32, t as u32);
                    if let Some(conn) = self.take(generation, idx) {
                        return Ok(Ready::Conn(conn));
                    }
                    // Stale: closed by [`Idle::close_idle_for`] meanwhile.
                }
            }
        }
    }

    /// Whether the threads take turns in `epoll_wait`: once a second thread counts here, the
    /// watch thread is started (once), and they do if it could be.
    fn watching(&self) -> bool {
        if let Some(&on) = self.watching.get() {
            return on;
        }
        if self.threads.load(Ordering::Relaxed) < 2 {
            // One thread alone waits in `epoll_wait` itself: nobody to park, nothing to watch.
            return false;
        }
        *self.watching.get_or_init(|| self.start_watch())
    }

    /// Starts the thread that keeps watch over the turn; whether it started.
    fn start_watch(&self) -> bool {
        let turn = Arc::clone(&self.turn);
        let epoll = Arc::clone(&self.epoll);
        let threads = Arc::clone(&self.threads);
        let stop = Arc::clone(&self.stop_watch);
        std::thread::Builder::new()
            .name("fastcgi-watch".to_owned())
            .spawn(move || {
                let mut state = WatchState::default();
                while !stop.load(Ordering::SeqCst) {
                    let workers = threads.load(Ordering::Relaxed).max(1);
                    turn.watch(&epoll, workers, WATCH_PERIOD, &mut state);
                }
            })
            .is_ok()
    }

    fn take(&self, generation: u32, idx: u32) -> Option<T> {
        let mut guard = self.lock();
        let slots = &mut *guard;
        let slot = slots.slots.get_mut(idx as usize)?;
        if slot.generation != generation {
            return None;
        }
        let (conn, _) = slot.conn.take()?;
        slots.free.push(idx);
        slots.len -= 1;
        Some(conn)
    }

    /// Closes the connections idle for `limit` or longer, if `every` has passed since the last
    /// look.
    fn sweep(&self, limit: Duration, every: Duration) {
        {
            let mut slots = self.lock();
            if slots.last_sweep.elapsed() < every {
                return;
            }
            slots.last_sweep = Instant::now();
        }
        self.close_idle_for(limit);
    }

    /// Closes the connections idle for `limit` or longer.
    fn close_idle_for(&self, limit: Duration) {
        let now = Instant::now();
        let mut closed = Vec::new();
        {
            let mut guard = self.lock();
            let slots = &mut *guard;
            for (idx, slot) in slots.slots.iter_mut().enumerate() {
                if slot
                    .conn
                    .as_ref()
                    .is_some_and(|(_, since)| now.duration_since(*since) >= limit)
                {
                    closed.extend(slot.conn.take().map(|(conn, _)| conn));
                    slots.free.extend(u32::try_from(idx).ok());
                }
            }
            slots.len -= closed.len();
        }
        // Closed outside the lock; closing takes each out of the epoll set.
        drop(closed);
    }

    /// The idle connections held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    /// Wakes every thread in [`Idle::wait`], now and from now on.
    pub(crate) fn wake_all(&self) {
        self.woken.store(true, Ordering::SeqCst);
        self.turn.wake_all();
        // Ignored: the counter only fails to grow when already huge, which wakes just the same.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

impl<T> Drop for Idle<T> {
    fn drop(&mut self) {
        // The watch thread ends within a period; it holds its own references until then.
        self.stop_watch.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    type Setup = (
        Idle<UnixStream>,
        UnixListener,
        std::path::PathBuf,
        tempfile::TempDir,
    );

    fn setup(max: usize) -> Setup {
        setup_closing_after(max, None)
    }

    fn setup_closing_after(max: usize, close_after: Option<Duration>) -> Setup {
        setup_for_threads(max, close_after, 1)
    }

    /// An idle set for `threads` threads: with two or more they take turns.
    fn setup_for_threads(max: usize, close_after: Option<Duration>, threads: usize) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        let threads = Arc::new(AtomicUsize::new(threads));
        (
            Idle::new(&l, max, close_after, threads).unwrap(),
            l,
            path,
            dir,
        )
    }

    /// A thread waiting in `idle` for up to 10 s; it answers what it got and when.
    fn waiting(idle: &Arc<Idle<UnixStream>>) -> JoinHandle<(Ready<UnixStream>, Instant)> {
        let idle = Arc::clone(idle);
        std::thread::spawn(move || {
            let ready = idle.wait(Some(Duration::from_secs(10))).unwrap();
            (ready, Instant::now())
        })
    }

    const SHORT: Option<Duration> = Some(Duration::from_millis(50));

    #[test]
    fn listener_then_parked_connection_then_timeout() {
        let (idle, l, path, _dir) = setup(4);
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::TimedOut));
        let mut client = UnixStream::connect(&path).unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Listener));
        let (server, _) = l.accept().unwrap();
        // One-shot: the second connection is not reported until the listener is re-armed.
        let _other = UnixStream::connect(&path).unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::TimedOut));
        idle.rearm_listener(&l).unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Listener));
        let _ = l.accept().unwrap();

        idle.park(server, false).unwrap();
        assert_eq!(idle.len(), 1);
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::TimedOut));
        client.write_all(b"x").unwrap();
        let Ready::Conn(server) = idle.wait(SHORT).unwrap() else {
            panic!("the parked connection")
        };
        assert_eq!(idle.len(), 0);
        // Parked again with input already there: reported at once.
        idle.park(server, true).unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Conn(_)));
    }

    #[test]
    fn full_set_gives_the_connection_back() {
        let (idle, _l, _path, _dir) = setup(1);
        let (a, _a) = UnixStream::pair().unwrap();
        let (b, _b) = UnixStream::pair().unwrap();
        idle.park(a, false).unwrap();
        assert!(idle.park(b, false).is_err());
    }

    #[test]
    fn a_wrong_guess_of_registered_still_parks() {
        let (idle, _l, _path, _dir) = setup(4);
        let (a, mut peer) = UnixStream::pair().unwrap();
        // Never added, said to be: modify fails, then it is added.
        idle.park(a, true).unwrap();
        peer.write_all(b"x").unwrap();
        let Ready::Conn(a) = idle.wait(SHORT).unwrap() else {
            panic!("the parked connection")
        };
        // Added, said not to be: add fails, then it is armed again.
        idle.park(a, false).unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Conn(_)));
    }

    #[test]
    fn idle_connections_are_closed_after_the_limit() {
        let (idle, _l, _path, _dir) = setup(4);
        let (a, mut peer) = UnixStream::pair().unwrap();
        idle.park(a, false).unwrap();
        idle.close_idle_for(Duration::from_secs(60));
        assert_eq!(idle.len(), 1);
        idle.close_idle_for(Duration::ZERO);
        assert_eq!(idle.len(), 0);
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut peer, &mut buf).unwrap(), 0);
        // Its place is reused by the next one; the old one's events (none here) are stale.
        let (b, mut peer_b) = UnixStream::pair().unwrap();
        idle.park(b, false).unwrap();
        peer_b.write_all(b"y").unwrap();
        assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Conn(_)));
    }

    #[test]
    fn waiting_closes_connections_idle_past_the_limit() {
        let (idle, _l, _path, _dir) = setup_closing_after(4, Some(Duration::from_millis(40)));
        let (a, mut peer) = UnixStream::pair().unwrap();
        idle.park(a, false).unwrap();
        // Nothing else happens: the wait wakes to look, and closes it.
        assert!(matches!(
            idle.wait(Some(Duration::from_millis(300))).unwrap(),
            Ready::TimedOut
        ));
        assert_eq!(idle.len(), 0);
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut peer, &mut buf).unwrap(), 0);
    }

    #[test]
    fn wake_all_wakes_every_waiting_thread() {
        // One thread counted: all four wait in `epoll_wait`. Four: one does, three park.
        for counted in [1, 4] {
            let (idle, _l, _path, _dir) = setup_for_threads(4, None, counted);
            let idle = Arc::new(idle);
            let threads: Vec<_> = (0..4).map(|_| waiting(&idle)).collect();
            std::thread::sleep(Duration::from_millis(50));
            let began = Instant::now();
            idle.wake_all();
            for t in threads {
                let (ready, at) = t.join().unwrap();
                assert!(matches!(ready, Ready::Woken));
                // Sooner than a parked thread's own look (`PARK`, 1 s).
                let took = at.duration_since(began);
                assert!(took < Duration::from_millis(800), "{counted}: {took:?}");
            }
            // And from now on.
            assert!(matches!(idle.wait(SHORT).unwrap(), Ready::Woken));
        }
    }

    #[test]
    fn a_parked_thread_takes_the_event_the_other_left_waiting() {
        let (idle, l, path, _dir) = setup_for_threads(4, None, 2);
        let idle = Arc::new(idle);
        let (kept, mut peer) = UnixStream::pair().unwrap();
        idle.park(kept, false).unwrap();
        // One thread takes the turn and waits in `epoll_wait`, the other parks.
        let first = waiting(&idle);
        std::thread::sleep(Duration::from_millis(50));
        let second = waiting(&idle);
        std::thread::sleep(Duration::from_millis(50));
        // The one in `epoll_wait` takes the new connection and is gone (to serve it); the
        // kept connection's input then waits with nobody in `epoll_wait`, and the watch wakes
        // the parked thread within a few milliseconds, not after its own second.
        let _client = UnixStream::connect(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let sent = Instant::now();
        peer.write_all(b"x").unwrap();
        let mut got = [first.join().unwrap(), second.join().unwrap()];
        got.sort_by_key(|(_, at)| *at);
        assert!(matches!(got[0].0, Ready::Listener), "{:?}", got[0].0);
        assert!(matches!(got[1].0, Ready::Conn(_)), "{:?}", got[1].0);
        let took = got[1].1.duration_since(sent);
        assert!(took < Duration::from_millis(500), "{took:?}");
        drop(l);
    }
}
