//! Reserve requests from the API go through a group commit: concurrent reservations (64 callers
//! on one hot SKU) share transactions, so the hot row is locked once per batch instead of once
//! per request, and all-or-nothing holds per request inside the batch.

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

pub type Reserver = GroupCommit<ReserveBatches>;
