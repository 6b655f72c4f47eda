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

impl WebhookBatches {
    async fn store(&self, submissions: &[Submission]) -> Result<Vec<Outcome>, webhooks::Error> {
        let started = Instant::now();
        let result = webhooks::store_batch(&self.pool, &self.namespace, submissions).await;
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(submissions.len() as f64);
        if let Ok(outcomes) = &result {
            for (submission, outcome) in submissions.iter().zip(outcomes) {
                self.metrics.count_events(submission.platform, outcome);
            }
        }
        result
    }
}

impl BatchProcessor for WebhookBatches {
    type Job = Submission;
    type Output = Result<Outcome, Arc<webhooks::Error>>;

    async fn process(&self, submissions: Vec<Submission>) -> Vec<Self::Output> {
        match self.store(&submissions).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // One bad submission must not fail the others it shared a transaction with: store each
            // alone (an outage would fail them all anyway, so only for internal errors).
            Err(webhooks::Error::Internal(detail)) if submissions.len() > 1 => {
                tracing::warn!(%detail, webhooks = submissions.len(), "batch failed; storing its webhooks one by one");
                let mut outcomes = Vec::with_capacity(submissions.len());
                for submission in submissions.chunks(1) {
                    outcomes.push(match self.store(submission).await {
                        Ok(mut single) => {
                            single.pop().ok_or_else(|| Arc::new(webhooks::Error::Internal("no outcome".into())))
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "storing a webhook failed");
                            Err(Arc::new(err))
                        }
                    });
                }
                outcomes
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
