//! Accepting webhooks durably and fast: each request waits for the group commit that stores it
//! (`db::GroupCommit`), so nobody is answered 200 before their events are in Postgres.

use std::sync::Arc;
use std::time::Instant;

use db::{BatchProcessor, GroupCommit};

use crate::metrics::IngestMetrics;
use crate::outbound::webhooks::{self, Outcome, Submission};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Store(Arc<webhooks::Error>),
    #[error("ingest is shutting down")]
    ShuttingDown,
}

/// Stores batches of submissions, one transaction each.
struct WebhookBatches {
    pool: sqlx::PgPool,
    namespace: bus::Namespace,
    metrics: IngestMetrics,
}

impl BatchProcessor for WebhookBatches {
    type Job = Submission;
    type Output = Result<Outcome, Arc<webhooks::Error>>;

    async fn process(&self, submissions: Vec<Submission>) -> Vec<Self::Output> {
        let started = Instant::now();
        let result = webhooks::store_batch(&self.pool, &self.namespace, &submissions).await;
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(submissions.len() as f64);
        match result {
            Ok(outcomes) => {
                for (submission, outcome) in submissions.iter().zip(&outcomes) {
                    self.metrics.count_events(submission.platform, outcome);
                }
                outcomes.into_iter().map(Ok).collect()
            }
            Err(err) => {
                tracing::error!(error = %err, webhooks = submissions.len(), "storing webhooks failed");
                let err = Arc::new(err);
                submissions.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }
}

/// Hands submissions to the committers. Dropping every clone stops them after the queue drains.
#[derive(Clone)]
pub struct Acceptor {
    commits: GroupCommit<WebhookBatches>,
}

impl Acceptor {
    pub fn start(
        tasks: &mut service_runtime::Tasks,
        pool: sqlx::PgPool,
        namespace: bus::Namespace,
        committers: usize,
        max_batch: usize,
        metrics: IngestMetrics,
    ) -> Self {
        let processor = Arc::new(WebhookBatches { pool, namespace, metrics });
        let (commits, workers) = GroupCommit::new(processor, committers, max_batch);
        for worker in workers {
            tasks.spawn("webhook committer", async move {
                worker.await;
                Ok(())
            });
        }
        Self { commits }
    }

    /// Stores the submission durably; returns once its transaction committed.
    pub async fn accept(&self, submission: Submission) -> Result<Outcome, Error> {
        self.commits.submit(submission).await.map_err(|_| Error::ShuttingDown)?.map_err(Error::Store)
    }
}
