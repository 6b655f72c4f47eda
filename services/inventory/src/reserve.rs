//! Reserve requests from the API go through a group commit: concurrent reservations (64 callers
//! on one hot SKU) share transactions, so the hot row is locked once per batch instead of once
//! per request, and all-or-nothing holds per request inside the batch.
//!
//! A ReserveMany call is a batch already (the draft service gathered it): it is committed as
//! it came, without the queue. Queued, its entries could be taken by different workers (one
//! takes the first entry the moment it arrives, and the rest wait for that batch to commit),
//! and it would wait behind batches it has nothing to do with.

use std::sync::Arc;

use db::{BatchConnections, BatchProcessor, GroupCommit};

use crate::outbound::DbError;
use crate::outbound::stock::{self, Reservation, ReserveError, ReserveJob};

pub struct ReserveBatches {
    pub connections: BatchConnections,
    pub namespace: bus::Namespace,
}

impl BatchProcessor for ReserveBatches {
    type Job = ReserveJob;
    type Output = Result<Reservation, ReserveError>;

    async fn process(&self, jobs: Vec<ReserveJob>) -> Vec<Self::Output> {
        let result = async {
            let mut connection = self.connections.take().await.map_err(DbError::from)?;
            let mut tx = connection.begin().await.map_err(DbError::from)?;
            let outcomes = stock::reserve_batch(&mut tx, &self.namespace, &jobs).await?;
            tx.commit().await.map_err(DbError::from)?;
            connection.keep();
            Ok::<_, DbError>(outcomes)
        }
        .await;
        match result {
            Ok(outcomes) => outcomes,
            Err(err) => {
                tracing::error!(error = %err, reservations = jobs.len(), "reservation batch failed");
                let err = Arc::new(err);
                jobs.iter().map(|_| Err(ReserveError::Database(err.clone()))).collect()
            }
        }
    }
}

/// The two ways into a reservation batch.
#[derive(Clone)]
pub struct Reserver {
    queue: GroupCommit<ReserveBatches>,
    batches: Arc<ReserveBatches>,
}

impl Reserver {
    /// The reserver and the queue's workers, to spawn.
    pub fn new(
        batches: ReserveBatches,
        committers: usize,
        max_batch: usize,
    ) -> (Self, Vec<impl std::future::Future<Output = ()> + Send + 'static>) {
        let batches = Arc::new(batches);
        let (queue, workers) = GroupCommit::new(batches.clone(), committers, max_batch);
        (Self { queue, batches }, workers)
    }

    /// One reservation, sharing a batch with whatever else is queued.
    pub async fn reserve(&self, job: ReserveJob) -> Result<Result<Reservation, ReserveError>, db::ShuttingDown> {
        self.queue.submit(job).await
    }

    /// Reservations gathered by the caller, in one batch of their own; one outcome each, in order.
    pub async fn reserve_all(&self, jobs: Vec<ReserveJob>) -> Vec<Result<Reservation, ReserveError>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        self.batches.process(jobs).await
    }
}
