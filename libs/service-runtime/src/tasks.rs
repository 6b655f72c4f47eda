//! The long-running tasks of a service, supervised together.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Every task of one running service. If one ends with an error, all are stopped.
pub struct Tasks {
    token: CancellationToken,
    set: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Tasks {
    pub fn new(token: CancellationToken) -> Self {
        Self { token, set: JoinSet::new() }
    }

    /// The token every task watches; cancelling it stops the service.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.set.spawn(async move { (name, task.await) });
    }

    /// Waits for the token (or a task failing), then joins everything against `deadline`.
    pub async fn run_until_stopped(mut self, deadline: Duration) -> anyhow::Result<()> {
        let mut failure = None;
        tokio::select! {
            _ = self.token.cancelled() => {}
            Some(joined) = self.set.join_next() => {
                failure = describe(joined);
                if let Some(err) = &failure {
                    tracing::error!(error = %err, "a task stopped; shutting the service down");
                }
                self.token.cancel();
            }
        }
        let drained = tokio::time::timeout(deadline, async {
            while let Some(joined) = self.set.join_next().await {
                if let Some(err) = describe(joined) {
                    tracing::error!(error = %err, "task failed during shutdown");
                    failure.get_or_insert(err);
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(?deadline, remaining = self.set.len(), "shutdown deadline passed; aborting tasks");
            self.set.abort_all();
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn describe(joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>) -> Option<anyhow::Error> {
    match joined {
        Ok((_, Ok(()))) => None,
        Ok((name, Err(err))) => Some(err.context(format!("task {name}"))),
        Err(err) => Some(anyhow::anyhow!("task panicked or was aborted: {err}")),
    }
}
