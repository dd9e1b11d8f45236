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
//! No system call is spent per request on the registrations. The listener is level-triggered
//! and stays armed (only the turn's holder waits in `epoll_wait`, so a new connection wakes one
//! thread). A connection is registered, edge-triggered, the first time it is parked, and stays
//! in the set until it is closed; its place in the table is its descriptor. An event that comes
//! while a thread serves the connection (its next request arrived before the thread parked it)
//! leaves a note, and parking a connection with a note arms it again, which reports the
//! waiting input at once: an edge is never lost. [`Idle::wake_all`] sets a flag, wakes the
//! parked threads, and writes an eventfd, left readable, which wakes the one in `epoll_wait`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    /// The listener has a connection waiting (or had: another thread may take it first).
    Listener,
    /// An idle connection the web server sent on (or closed), now the caller's, with its
    /// registration (for [`Idle::park`]).
    Conn(T, u32),
    /// [`Idle::wake_all`] was called.
    Woken,
    /// The timeout passed.
    TimedOut,
}

/// The place of the connection with one descriptor number: a generation, bumped for each
/// connection registered under the number, so that a stale event for a closed connection
/// takes nothing from the one that reuses its descriptor.
struct Slot<T> {
    generation: u32,
    state: State<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            generation: 0,
            state: State::Empty,
        }
    }
}

/// Where a registered connection is.
enum State<T> {
    /// No connection (never one, or it was closed here).
    Empty,
    /// Parked, since then.
    Parked(T, Instant),
    /// A thread serves it; `noted`: an event came meanwhile.
    Out { noted: bool },
}

struct Table<T> {
    /// Indexed by descriptor number: as many as the process has descriptors open, at most.
    slots: Vec<Slot<T>>,
    /// Connections parked.
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

/// A connection's interest: input, edge-triggered, for as long as it is registered.
fn conn_flags() -> epoll::EventFlags {
    epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ET
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
            epoll::EventFlags::IN,
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
                len: 0,
                last_sweep: Instant::now(),
            }),
            max,
            close_after: close_after.filter(|d| !d.is_zero()),
        })
    }

    /// Arms the listener (`on`), or leaves it without interest, so that a thread that cannot
    /// accept for a while (too many open files) is not told of the same connection again and
    /// again meanwhile.
    pub(crate) fn arm_listener(&self, listener: impl AsFd, on: bool) -> io::Result<()> {
        let flags = if on {
            epoll::EventFlags::IN
        } else {
            epoll::EventFlags::empty()
        };
        epoll::modify(
            &self.epoll,
            listener,
            epoll::EventData::new_u64(LISTENER),
            flags,
        )?;
        Ok(())
    }

    /// Holds `conn` until the web server sends on it or closes it. Gives it back when `max`
    /// connections are held already, or epoll refuses it: the caller closes it then.
    ///
    /// `registration` is what [`Ready::Conn`] gave with `conn` when it was parked here before
    /// (it stays in the epoll set until it is closed): then parking costs no system call, or
    /// one if its web server sent more while it was out. `None` registers it. A wrong one
    /// costs a second call, not the connection.
    pub(crate) fn park(&self, conn: T, registration: Option<u32>) -> Result<(), T> {
        let fd = conn.as_fd().as_raw_fd();
        let Ok(idx) = u32::try_from(fd) else {
            return Err(conn);
        };
        let mut guard = self.lock();
        let table = &mut *guard;
        if table.len >= self.max {
            return Err(conn);
        }
        let at = idx as usize;
        if at >= table.slots.len() {
            // Descriptors are numbered from the lowest free one: bounded by those open.
            table.slots.resize_with(at + 1, Slot::default);
        }
        let Some(slot) = table.slots.get_mut(at) else {
            return Err(conn);
        };
        let kept = match (registration, &slot.state) {
            (Some(g), State::Out { noted }) if g == slot.generation => Some(*noted),
            _ => None,
        };
        let data = |generation| epoll::EventData::new_u64(token(generation, idx));
        let armed = match kept {
            // Registered, and nothing came while it was out.
            Some(false) => Ok(()),
            // Its web server sent while it was out, and the edge was spent then: arming it
            // again reports the input at once if it is still unread (to another thread,
            // which takes the lock after this one).
            Some(true) => epoll::modify(&*self.epoll, &conn, data(slot.generation), conn_flags()),
            None => {
                slot.generation = slot.generation.wrapping_add(1) & 0x7fff_ffff;
                // Reports the socket at once if input waits already.
                match epoll::add(&*self.epoll, &conn, data(slot.generation), conn_flags()) {
                    Err(rustix::io::Errno::EXIST) => {
                        epoll::modify(&*self.epoll, &conn, data(slot.generation), conn_flags())
                    }
                    other => other,
                }
            }
        };
        if armed.is_err() {
            slot.state = State::Empty;
            return Err(conn);
        }
        slot.state = State::Parked(conn, Instant::now());
        table.len += 1;
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
                        return Ok(Ready::Conn(conn, generation));
                    }
                    // Served by a thread (noted), or stale: closed meanwhile.
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

    /// The connection an event names, if it is parked; if a thread serves it, the event is
    /// noted for when it is parked again.
    fn take(&self, generation: u32, idx: u32) -> Option<T> {
        let mut guard = self.lock();
        let table = &mut *guard;
        let slot = table.slots.get_mut(idx as usize)?;
        if slot.generation != generation {
            return None;
        }
        match std::mem::replace(&mut slot.state, State::Out { noted: true }) {
            State::Parked(conn, _) => {
                slot.state = State::Out { noted: false };
                table.len -= 1;
                Some(conn)
            }
            State::Out { .. } => None,
            State::Empty => {
                slot.state = State::Empty;
                None
            }
        }
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
            let table = &mut *guard;
            for slot in &mut table.slots {
                if matches!(&slot.state, State::Parked(_, since) if now.duration_since(*since) >= limit)
                {
                    if let State::Parked(conn, _) = std::mem::replace(&mut slot.state, State::Empty)
                    {
                        closed.push(conn);
                    }
                }
            }
            table.len -= closed.len();
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
    use std::os::fd::AsRawFd;
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

    /// What `wait` found, with a short timeout.
    fn next(idle: &Idle<UnixStream>) -> Ready<UnixStream> {
        idle.wait(SHORT).unwrap()
    }

    #[test]
    fn listener_then_parked_connection_then_timeout() {
        let (idle, l, path, _dir) = setup(4);
        assert!(matches!(next(&idle), Ready::TimedOut));
        let mut client = UnixStream::connect(&path).unwrap();
        assert!(matches!(next(&idle), Ready::Listener));
        // Level-triggered: told again for as long as a connection waits.
        assert!(matches!(next(&idle), Ready::Listener));
        let (server, _) = l.accept().unwrap();
        assert!(matches!(next(&idle), Ready::TimedOut));

        idle.park(server, None).unwrap();
        assert_eq!(idle.len(), 1);
        assert!(matches!(next(&idle), Ready::TimedOut));
        client.write_all(b"x").unwrap();
        let Ready::Conn(server, registration) = next(&idle) else {
            panic!("the parked connection")
        };
        assert_eq!(idle.len(), 0);
        // Parked again with its input unread, as a thread that has not read it would: the
        // edge was spent, so it is not reported again; its next input is.
        idle.park(server, Some(registration)).unwrap();
        assert!(matches!(next(&idle), Ready::TimedOut));
        client.write_all(b"y").unwrap();
        assert!(matches!(next(&idle), Ready::Conn(..)));
    }

    #[test]
    fn input_that_comes_while_a_thread_serves_the_connection_is_not_lost() {
        let (idle, _l, _path, _dir) = setup(4);
        let (a, mut peer) = UnixStream::pair().unwrap();
        idle.park(a, None).unwrap();
        peer.write_all(b"1").unwrap();
        let Ready::Conn(mut a, registration) = next(&idle) else {
            panic!("the parked connection")
        };
        let mut buf = [0u8; 8];
        assert_eq!(std::io::Read::read(&mut a, &mut buf).unwrap(), 1);
        // The next request comes before the thread parks the connection, and a waiting
        // thread is told of it then: it only leaves a note.
        peer.write_all(b"2").unwrap();
        assert!(matches!(next(&idle), Ready::TimedOut));
        // Parking it with the note reports the waiting input at once.
        idle.park(a, Some(registration)).unwrap();
        let Ready::Conn(mut a, registration) = next(&idle) else {
            panic!("the input that came while it was out")
        };
        assert_eq!(std::io::Read::read(&mut a, &mut buf).unwrap(), 1);
        assert_eq!(&buf[..1], b"2");
        // The note is spent: parked again with nothing unread, it waits.
        idle.park(a, Some(registration)).unwrap();
        assert!(matches!(next(&idle), Ready::TimedOut));
        // Input that comes while it is out and nobody waits stays with epoll until it is
        // parked: reported then.
        peer.write_all(b"3").unwrap();
        let Ready::Conn(a, registration) = next(&idle) else {
            panic!("the parked connection")
        };
        peer.write_all(b"4").unwrap();
        idle.park(a, Some(registration)).unwrap();
        assert!(matches!(next(&idle), Ready::Conn(..)));
    }

    #[test]
    fn full_set_gives_the_connection_back() {
        let (idle, _l, _path, _dir) = setup(1);
        let (a, _a) = UnixStream::pair().unwrap();
        let (b, _b) = UnixStream::pair().unwrap();
        idle.park(a, None).unwrap();
        assert!(idle.park(b, None).is_err());
    }

    #[test]
    fn a_wrong_registration_still_parks() {
        let (idle, _l, _path, _dir) = setup(4);
        let (a, mut peer) = UnixStream::pair().unwrap();
        // Never added, said to be: it is added.
        idle.park(a, Some(7)).unwrap();
        peer.write_all(b"x").unwrap();
        let Ready::Conn(a, _) = next(&idle) else {
            panic!("the parked connection")
        };
        // Added, said not to be: add fails, then it is armed again (and its unread input
        // reported).
        idle.park(a, None).unwrap();
        assert!(matches!(next(&idle), Ready::Conn(..)));
    }

    #[test]
    fn idle_connections_are_closed_after_the_limit() {
        let (idle, _l, _path, _dir) = setup(4);
        let (a, mut peer) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        idle.park(a, None).unwrap();
        idle.close_idle_for(Duration::from_secs(60));
        assert_eq!(idle.len(), 1);
        idle.close_idle_for(Duration::ZERO);
        assert_eq!(idle.len(), 0);
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut peer, &mut buf).unwrap(), 0);
        // The next connection gets its descriptor number, and its place.
        let (b, mut peer_b) = UnixStream::pair().unwrap();
        assert_eq!(b.as_raw_fd(), fd);
        idle.park(b, None).unwrap();
        peer_b.write_all(b"y").unwrap();
        let Ready::Conn(b, registration) = next(&idle) else {
            panic!("the new connection")
        };
        // A connection closed while out leaves its place noted; the next one with its
        // number is registered afresh, and an event of the old one's would be stale.
        drop(b);
        let (c, mut peer_c) = UnixStream::pair().unwrap();
        assert_eq!(c.as_raw_fd(), fd);
        idle.park(c, None).unwrap();
        assert!(matches!(next(&idle), Ready::TimedOut));
        assert!(
            idle.take(registration, u32::try_from(fd).unwrap())
                .is_none()
        );
        assert_eq!(idle.len(), 1);
        peer_c.write_all(b"z").unwrap();
        assert!(matches!(next(&idle), Ready::Conn(..)));
    }

    #[test]
    fn waiting_closes_connections_idle_past_the_limit() {
        let (idle, _l, _path, _dir) = setup_closing_after(4, Some(Duration::from_millis(40)));
        let (a, mut peer) = UnixStream::pair().unwrap();
        idle.park(a, None).unwrap();
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
        idle.park(kept, None).unwrap();
        // One thread takes the turn and waits in `epoll_wait`, the other parks.
        let first = waiting(&idle);
        std::thread::sleep(Duration::from_millis(50));
        let second = waiting(&idle);
        std::thread::sleep(Duration::from_millis(50));
        // The one in `epoll_wait` takes the new connection and is gone (to serve it); the
        // kept connection's input then waits with nobody in `epoll_wait`, and the watch wakes
        // the parked thread within a few milliseconds, not after its own second.
        let _client = UnixStream::connect(&path).unwrap();
        let (got, _) = first.join().unwrap();
        assert!(matches!(got, Ready::Listener), "{got:?}");
        // Accepted, as the thread would.
        let _server = l.accept().unwrap();
        let sent = Instant::now();
        peer.write_all(b"x").unwrap();
        let (got, at) = second.join().unwrap();
        assert!(matches!(got, Ready::Conn(..)), "{got:?}");
        let took = at.duration_since(sent);
        assert!(took < Duration::from_millis(500), "{took:?}");
        drop(l);
    }
}
