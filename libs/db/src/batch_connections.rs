//! The connections a group commit's batches run on, kept between batches.
//!
//! sqlx tests a connection with a round trip each time it goes back to the pool. A stage that
//! commits hundreds of batches a second paid that round trip once per batch, on both sides of the
//! socket. Here a batch that committed keeps its connection for the next batch; one that failed,
//! or a connection left unused for [`TRUSTED_IDLE`], goes back to the pool, which tests it (and
//! closes it if Postgres went away). At most one connection per concurrent batch is kept, so
//! a stage holds no more connections than it has workers: the batch pool must have at least as
//! many connections as the service has batch workers, and nothing else should wait on it.

use std::sync::Mutex;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::pool::TRUSTED_IDLE;

/// One stage's kept connections; share it between the stage's workers.
pub struct BatchConnections {
    pool: PgPool,
    kept: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

/// The connection of one batch. Dropped without [`BatchConnection::keep`], it goes back to the
/// pool (a transaction left open is rolled back there).
pub struct BatchConnection<'a> {
    conn: PoolConnection<Postgres>,
    home: &'a BatchConnections,
}

impl BatchConnections {
    /// `pool`: the service's batch pool ([`crate::connect_batches`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool, kept: Mutex::new(Vec::new()) }
    }

    /// A kept connection used within the last [`TRUSTED_IDLE`], else one from the pool. Kept
    /// connections idle for longer go back to the pool (which tests them on the way in), all of
    /// them, not only the one on top: under steady load the newest is always taken, and the
    /// others would otherwise stay out of the pool for good.
    pub async fn take(&self) -> Result<BatchConnection<'_>, sqlx::Error> {
        let fresh = {
            let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            kept.retain(|(_, since)| since.elapsed() < TRUSTED_IDLE);
            kept.pop()
        };
        match fresh {
            Some((conn, _)) => Ok(BatchConnection { conn, home: self }),
            None => Ok(BatchConnection { conn: self.pool.acquire().await?, home: self }),
        }
    }

    /// How many connections are kept now (for tests).
    pub fn kept(&self) -> usize {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

impl BatchConnection<'_> {
    /// Starts the batch's transaction.
    pub async fn begin(&mut self) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        sqlx::Connection::begin(&mut *self.conn).await
    }

    /// The connection outside any transaction, for a batch that is a single statement: it
    /// commits on its own, and BEGIN and COMMIT would be two more round trips.
    pub fn alone(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The batch committed: the connection is kept for the next one. Call it only then: a
    /// connection whose batch failed may be broken or mid-transaction.
    pub fn keep(self) {
        let BatchConnection { conn, home } = self;
        home.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((conn, Instant::now()));
    }
}
