//! The real-disk runner: an `Engine<RealFs>` whose periodic work (`tick`) runs on a background
//! thread, as the interval fsync thread of seed 000 and the checkpointer of seed 001 do.
//!
//! This is the only thread in the engine crate, and it exists only for `RealFs`: under SimFs the
//! harness calls `tick` against virtual time, so simulated runs stay single-threaded and replayable.
//! The engine is behind a mutex, so a tick and a write never interleave.

use crate::error::Result;
use crate::store::Engine;
use powercut_vfs::RealFs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// An engine on a real disk with a background ticker.
#[derive(Debug)]
pub struct Background {
    engine: Arc<Mutex<Engine<RealFs>>>,
    stop: StopOnDrop,
    last_error: Arc<Mutex<Option<String>>>,
    thread: JoinHandle<()>,
}

/// Stops the ticker when the runner is dropped without `finish`.
#[derive(Debug)]
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not hide the engine: it stays usable for diagnosis.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Background {
    /// Start ticking `engine` every `period` of real time.
    pub fn start(engine: Engine<RealFs>, period: Duration) -> Background {
        let engine = Arc::new(Mutex::new(engine));
        let stop = Arc::new(AtomicBool::new(false));
        let last_error = Arc::new(Mutex::new(None));
        let thread = {
            let (engine, stop, last_error) = (engine.clone(), stop.clone(), last_error.clone());
            std::thread::spawn(move || {
                // Bounded by `stop`, which `finish` sets before joining.
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(period);
                    if let Err(e) = lock(&engine).tick() {
                        *lock(&last_error) = Some(e.to_string());
                    }
                }
            })
        };
        Background { engine, stop: StopOnDrop(stop), last_error, thread }
    }

    /// The engine, for puts, gets and deletes.
    pub fn engine(&self) -> MutexGuard<'_, Engine<RealFs>> {
        lock(&self.engine)
    }

    /// The last error a background tick hit, if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Stop the ticker and close the engine (which syncs).
    pub fn finish(self) -> Result<()> {
        let Background { engine, stop, thread, .. } = self;
        drop(stop);
        let _ = thread.join();
        match Arc::try_unwrap(engine) {
            Ok(m) => m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).close(),
            Err(shared) => lock(&shared).sync_now(),
        }
    }
}
