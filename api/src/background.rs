//! Background work has one owner: every loop the app runs beside its requests (samplers,
//! collectors, sweepers, listeners, the send batcher) is started here under a name, and
//! stopped here when the server has drained ([`Background::shutdown`]: cancel, wait a bounded
//! grace, log by name and abort what did not stop).
//!
//! A loop receives the [`CancellationToken`] and selects on it where it waits (its tick, its
//! next message), so it stops between two pieces of work, never in the middle of one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long [`Background::shutdown`] waits for the loops after cancelling them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The app's background tasks. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub struct Background {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    token: CancellationToken,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    /// What the last shutdown found still running after the grace (`None`: not shut down).
    unstopped: Option<Vec<&'static str>>,
}

impl Background {
    pub fn new() -> Background {
        Background::default()
    }

    /// Cancelled when the app stops: loops select on it.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    /// A guard that stops everything when dropped (an app built but never run).
    pub(crate) fn stop_on_drop(&self) -> DropGuard {
        self.inner.token.clone().drop_guard()
    }

    /// Whether the app is stopping (or stopped): nothing new starts then.
    pub fn is_stopping(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Runs `task` under `name`; false (and nothing runs) once the app is stopping.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let mut state = self.state();
        // Checked under the lock that `shutdown` cancels under: a task is either in the set
        // that shutdown waits for, or never started.
        if self.inner.token.is_cancelled() {
            return false;
        }
        let id = state.tasks.spawn(task).id();
        state.names.insert(id, name);
        true
    }

    /// The names of the tasks still running, sorted.
    pub fn running(&self) -> Vec<&'static str> {
        let mut state = self.state();
        while let Some(done) = state.tasks.try_join_next_with_id() {
            let id = done.map_or_else(|e| e.id(), |(id, ())| id);
            state.names.remove(&id);
        }
        let mut names: Vec<&'static str> = state.names.values().copied().collect();
        names.sort_unstable();
        names
    }

    /// What the last [`shutdown`](Background::shutdown) had to abort; `None` before one.
    pub fn unstopped(&self) -> Option<Vec<&'static str>> {
        self.state().unstopped.clone()
    }

    /// Cancels every task and waits up to `grace` for them to end; the ones that did not
    /// are logged by name, aborted and returned.
    pub async fn shutdown(&self, grace: Duration) -> Vec<&'static str> {
        let (mut tasks, mut names) = {
            let mut state = self.state();
            self.inner.token.cancel();
            (std::mem::take(&mut state.tasks), std::mem::take(&mut state.names))
        };
        let deadline = tokio::time::Instant::now() + grace;
        while let Ok(Some(done)) = tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => {
                    if e.is_panic() {
                        let name = names.get(&e.id()).copied().unwrap_or("?");
                        tracing::error!(task = name, "a background task panicked");
                    }
                    e.id()
                }
            };
            names.remove(&id);
        }
        let mut unstopped: Vec<&'static str> = names.into_values().collect();
        unstopped.sort_unstable();
        for name in &unstopped {
            tracing::warn!(
                task = name,
                grace_secs = grace.as_secs_f64(),
                "a background task did not stop; aborting it"
            );
        }
        tasks.abort_all();
        // Aborted tasks end at their next await; one that never yields is left behind.
        let _ = tokio::time::timeout(Duration::from_secs(1), tasks.shutdown()).await;
        self.state().unstopped = Some(unstopped.clone());
        unstopped
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits for the next tick of a loop's `interval`; false when the app is stopping instead.
pub async fn next_tick(interval: &mut tokio::time::Interval, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        _ = interval.tick() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loops_that_watch_the_token_stop_and_the_others_are_named_and_aborted() {
        let background = Background::new();
        let token = background.token();
        assert!(background.spawn("polite", async move { token.cancelled().await }));
        assert!(background.spawn("stubborn", std::future::pending()));
        assert!(background.spawn("done", async {}));
        tokio::task::yield_now().await;
        assert_eq!(background.unstopped(), None);
        assert_eq!(background.shutdown(Duration::from_millis(100)).await, vec!["stubborn"]);
        assert_eq!(background.running(), Vec::<&str>::new());
        assert_eq!(background.unstopped(), Some(vec!["stubborn"]));
        assert!(!background.spawn("late", async {}), "nothing starts once stopping");
    }

    #[tokio::test]
    async fn running_lists_what_has_not_ended() {
        let background = Background::new();
        let token = background.token();
        background.spawn("waits", async move { token.cancelled().await });
        background.spawn("ends", async {});
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(background.running(), vec!["waits"]);
        drop(background.stop_on_drop());
        assert!(background.is_stopping());
        assert_eq!(background.shutdown(Duration::from_secs(1)).await, Vec::<&str>::new());
    }
}
