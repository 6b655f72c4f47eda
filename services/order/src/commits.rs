//! CreateOrder and status changes go through group commits (`db::GroupCommit`): concurrent calls
//! share one transaction per batch, and each is answered with its own outcome only after the
//! commit that holds its work. A refused move (not found, stale version, illegal) is refused
//! alone inside the batch; a batch the database refuses as a whole (a row it will not take) is
//! run again one call per transaction, so only the bad call fails.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use db::{BatchProcessor, GroupCommit};
use uuid::Uuid;

use crate::outbound::DbError;
use crate::outbound::codes::OrderCodes;
use crate::outbound::creation::{self, Creation};
use crate::outbound::orders::{Actor, ChangeError, NewOrder, OrderRecord, source_str};
use crate::outbound::transitions::{self, MoveRequest};

/// How many committers each flow runs and how many calls a batch holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitConfig {
    pub create_committers: usize,
    pub create_max_batch: usize,
    pub status_committers: usize,
    pub status_max_batch: usize,
}

/// A CreateOrder call, validated.
pub struct CreateJob {
    pub new: NewOrder,
    pub actor: Actor,
    /// The W3C trace context of the request, carried into its `order.created` event.
    pub trace: BTreeMap<String, String>,
}

/// The order a CreateOrder call gets, and whether that call created it.
#[derive(Debug, Clone)]
pub struct Created {
    pub order: OrderRecord,
    pub new: bool,
}

pub struct CreateBatches {
    /// The service's main pool, for the order-code sequences' one-off DDL: the batch pool's
    /// connections are the workers' own.
    pub pool: sqlx::PgPool,
    pub connections: db::BatchConnections,
    pub namespace: bus::Namespace,
    pub codes: Arc<OrderCodes>,
}

type Key<'a> = (Uuid, &'static str, &'a str);

fn key(job: &CreateJob) -> Key<'_> {
    (job.new.tenant_id, source_str(job.new.source), job.new.source_id.as_str())
}

impl CreateBatches {
    /// Creates the batch's orders in one transaction. The first call of a source id writes; a
    /// later one in the same batch gets its order, as a retry would.
    async fn create(&self, jobs: &[CreateJob]) -> Result<Vec<Created>, DbError> {
        let mut tenants: Vec<Uuid> = jobs.iter().map(|j| j.new.tenant_id).collect();
        tenants.sort_unstable();
        tenants.dedup();
        for tenant in tenants {
            self.codes.ensure(&self.pool, tenant).await?;
        }
        let mut first: HashMap<Key<'_>, usize> = HashMap::with_capacity(jobs.len());
        let leader: Vec<usize> = jobs.iter().enumerate().map(|(i, job)| *first.entry(key(job)).or_insert(i)).collect();
        let leaders: Vec<usize> = (0..jobs.len()).filter(|&i| leader[i] == i).collect();

        // No look-up first: the insert skips a source id that has an order and returns that order,
        // at the price of a code left unused by a retry (codes may have gaps; a round trip in
        // every batch costs more than the rare retry).
        // No transaction either: the codes come from sequences, which no transaction takes back,
        // and the insert is one statement (orders, their children and their events), atomic on
        // its own. BEGIN and COMMIT would be two round trips more per batch.
        let mut connection = self.connections.take().await?;
        let code_tenants: Vec<Uuid> = leaders.iter().map(|&i| jobs[i].new.tenant_id).collect();
        let codes = OrderCodes::take(connection.alone(), &code_tenants).await?;
        let creations: Vec<Creation<'_>> = leaders
            .iter()
            .zip(codes)
            .map(|(&i, code)| Creation { code, new: &jobs[i].new, actor: &jobs[i].actor, trace: Some(&jobs[i].trace) })
            .collect();
        let written = creation::insert(connection.alone(), &self.namespace, &creations).await?;
        connection.keep();

        let mut outcomes: Vec<Option<Created>> = vec![None; jobs.len()];
        for (&i, (order, new)) in leaders.iter().zip(written) {
            outcomes[i] = Some(Created { order, new });
        }
        for i in 0..jobs.len() {
            if leader[i] != i {
                outcomes[i] = outcomes[leader[i]].as_ref().map(|c| Created { order: c.order.clone(), new: false });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| DbError::Internal("a created order went missing".into())))
            .collect()
    }
}

impl BatchProcessor for CreateBatches {
    type Job = CreateJob;
    type Output = Result<Created, DbError>;

    async fn process(&self, jobs: Vec<CreateJob>) -> Vec<Self::Output> {
        match self.create(&jobs).await {
            Ok(created) => created.into_iter().map(Ok).collect(),
            Err(DbError::Internal(detail)) if jobs.len() > 1 => {
                tracing::warn!(%detail, orders = jobs.len(), "order batch failed; creating its orders one by one");
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in jobs.chunks(1) {
                    let outcome = self.create(job).await.and_then(|mut one| {
                        one.pop().ok_or_else(|| DbError::Internal("a created order went missing".into()))
                    });
                    if let Err(err) = &outcome {
                        tracing::error!(error = %err, "creating an order failed");
                    }
                    outcomes.push(outcome);
                }
                outcomes
            }
            Err(err) => {
                tracing::error!(error = %err, orders = jobs.len(), "creating orders failed");
                jobs.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }
}

pub struct StatusBatches {
    pub connections: db::BatchConnections,
    pub namespace: bus::Namespace,
}

impl StatusBatches {
    async fn apply(&self, requests: &[MoveRequest]) -> Result<Vec<Result<OrderRecord, ChangeError>>, DbError> {
        let mut connection = self.connections.take().await?;
        let mut tx = connection.begin().await?;
        let outcomes = transitions::apply_many(&mut tx, &self.namespace, requests).await?;
        tx.commit().await?;
        connection.keep();
        Ok(outcomes)
    }
}

impl BatchProcessor for StatusBatches {
    type Job = MoveRequest;
    type Output = Result<OrderRecord, ChangeError>;

    async fn process(&self, requests: Vec<MoveRequest>) -> Vec<Self::Output> {
        match self.apply(&requests).await {
            Ok(outcomes) => outcomes,
            Err(DbError::Internal(detail)) if requests.len() > 1 => {
                tracing::warn!(%detail, moves = requests.len(), "status batch failed; applying its moves one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in requests.chunks(1) {
                    let outcome = match self.apply(request).await {
                        Ok(mut one) => one.pop().unwrap_or(Err(ChangeError::NotFound)),
                        Err(err) => {
                            tracing::error!(error = %err, "changing an order's status failed");
                            Err(ChangeError::Database(err))
                        }
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
            Err(err) => {
                tracing::error!(error = %err, moves = requests.len(), "changing order statuses failed");
                requests.iter().map(|_| Err(ChangeError::Database(err.clone()))).collect()
            }
        }
    }
}

/// The queues in front of the committers. Dropping every clone stops them once they drain.
#[derive(Clone)]
pub struct Commits {
    creates: GroupCommit<CreateBatches>,
    creator: Arc<CreateBatches>,
    moves: GroupCommit<StatusBatches>,
    mover: Arc<StatusBatches>,
}

fn shutting_down() -> DbError {
    DbError::Unavailable("the order service is shutting down".into())
}

impl Commits {
    /// `pool`: the service's main pool; `batch_pool`: its batch pool (`db::connect_batches`).
    pub fn start(
        tasks: &mut service_runtime::Tasks,
        pool: sqlx::PgPool,
        batch_pool: sqlx::PgPool,
        namespace: bus::Namespace,
        codes: Arc<OrderCodes>,
        config: CommitConfig,
    ) -> Self {
        let creator = Arc::new(CreateBatches {
            pool,
            connections: db::BatchConnections::new(batch_pool.clone()),
            namespace: namespace.clone(),
            codes,
        });
        let (creates, workers) = GroupCommit::new(creator.clone(), config.create_committers, config.create_max_batch);
        for worker in workers {
            tasks.spawn("order create committer", async move {
                worker.await;
                Ok(())
            });
        }
        let mover = Arc::new(StatusBatches { connections: db::BatchConnections::new(batch_pool), namespace });
        let (moves, workers) = GroupCommit::new(mover.clone(), config.status_committers, config.status_max_batch);
        for worker in workers {
            tasks.spawn("order status committer", async move {
                worker.await;
                Ok(())
            });
        }
        Self { creates, creator, moves, mover }
    }

    /// Creates the order unless its source id has one; returns once the commit holding it is done.
    pub async fn create(&self, job: CreateJob) -> Result<Created, DbError> {
        self.creates.submit(job).await.map_err(|_| shutting_down())?
    }

    /// Creates orders a caller gathered (CreateOrders) in one batch of their own, without the
    /// queue: queued, the entries of one call could be split between workers, the later ones
    /// waiting for the first one's commit. One outcome each, in order.
    pub async fn create_all(&self, jobs: Vec<CreateJob>) -> Vec<Result<Created, DbError>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        self.creator.process(jobs).await
    }

    /// Applies a requested status change; returns once the commit holding it is done.
    pub async fn transition(&self, request: MoveRequest) -> Result<OrderRecord, ChangeError> {
        self.moves.submit(request).await.map_err(|_| ChangeError::Database(shutting_down()))?
    }

    /// Applies many status changes in one transaction of their own, in the order given (a bulk
    /// update): each succeeds or fails on its own.
    pub async fn transition_all(&self, requests: Vec<MoveRequest>) -> Vec<Result<OrderRecord, ChangeError>> {
        self.mover.process(requests).await
    }
}
