//! Per-thread pools of spare buffers: a type that allocates the same
//! buffers for every request (the environ's variables, a response's header
//! list) gives them back when dropped, and the thread's next one takes
//! them, so a steady stream of requests allocates none.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread's spare buffers.
pub(crate) type Pool<T> = RefCell<Vec<T>>;

/// Spare buffers from this thread's `pool`, if it has any.
pub(crate) fn take<T: 'static>(pool: &'static LocalKey<Pool<T>>) -> Option<T> {
    pool.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .ok()
        .flatten()
}

/// Keeps `spare` in this thread's `pool` unless it holds `max` already.
pub(crate) fn give_back<T: 'static>(pool: &'static LocalKey<Pool<T>>, max: usize, spare: T) {
    // During thread exit the pool may be gone: `spare` is then dropped.
    let _ = pool.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < max {
                p.push(spare);
            }
        }
    });
}
