//! Accepting webhooks durably and fast: requests queue here and a few committers each store
//! whatever is waiting in one transaction (group commit). Nobody is answered before the commit
//! that holds their events; under light load a batch is one request, so latency stays low.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::metrics::IngestMetrics;
use crate::outbound::webhooks::{self, Outcome, Submission};

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Outcome, Arc<webhooks::Error>>>,
}

/// Hands submissions to the committers. Dropping every clone stops them after the queue drains.
#[derive(Clone)]
pub struct Acceptor {
    queue: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Store(Arc<webhooks::Error>),
    #[error("ingest is shutting down")]
    ShuttingDown,
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
        let (queue, receiver) = mpsc::channel::<Job>(max_batch * committers.max(1) * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..committers.max(1) {
            let committer = Committer {
                receiver: receiver.clone(),
                pool: pool.clone(),
                namespace: namespace.clone(),
                max_batch: max_batch.max(1),
                metrics: metrics.clone(),
            };
            tasks.spawn("webhook committer", async move {
                committer.run().await;
                Ok(())
            });
        }
        Self { queue }
    }

    /// Stores the submission durably; returns once its transaction committed.
    pub async fn accept(&self, submission: Submission) -> Result<Outcome, Error> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { submission, reply }).await.map_err(|_| Error::ShuttingDown)?;
        match answer.await {
            Ok(result) => result.map_err(Error::Store),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}

struct Committer {
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
    pool: sqlx::PgPool,
    namespace: bus::Namespace,
    max_batch: usize,
    metrics: IngestMetrics,
}

impl Committer {
    async fn run(self) {
        loop {
            let batch = {
                let mut receiver = self.receiver.lock().await;
                let Some(first) = receiver.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < self.max_batch {
                    match receiver.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                batch
            };
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<Job>) {
        let started = Instant::now();
        let (submissions, replies): (Vec<Submission>, Vec<_>) =
            batch.into_iter().map(|j| (j.submission, j.reply)).unzip();
        let result = webhooks::store_batch(&self.pool, &self.namespace, &submissions).await;
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(submissions.len() as f64);
        match result {
            Ok(outcomes) => {
                for ((reply, outcome), submission) in replies.into_iter().zip(outcomes).zip(&submissions) {
                    self.metrics.count_events(submission.platform, &outcome);
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, webhooks = submissions.len(), "storing webhooks failed");
                let err = Arc::new(err);
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}
