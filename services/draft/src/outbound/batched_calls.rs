//! The approval's calls to inventory and the order service, coalesced: approvals under way at the
//! same time share one ReserveMany and one CreateOrders call per tenant, instead of a call each.
//! At 1,000 approvals a second, gRPC (HTTP/2 framing, socket writes and the tasks behind them)
//! was about a third of the services' CPU, and these two calls were two of an approval's three.
//!
//! Calls queue as a group commit's requests do ([`db::GroupCommit`]): a worker takes whatever is
//! waiting, so with nothing in flight a call goes out alone at once, and while one is in flight
//! the next gathers. Every entry is idempotent (the reservation reference, the draft id as the
//! order's key), so a batch that failed as a whole is retried whole by the shared retry policy,
//! and an entry that failed on its own with a transient error is retried alone.

use std::collections::HashMap;
use std::sync::Arc;

use db::{BatchProcessor, GroupCommit};
use uuid::Uuid;

use super::calls::CallError;
use super::drafts::DraftRecord;
use super::inventory::InventoryClient;
use super::orders::OrderClient;
use crate::approve::Worker;
use crate::domain::draft::Item;

pub struct ReserveCall {
    pub tenant_id: Uuid,
    pub user: Option<String>,
    pub reference: String,
    pub items: Vec<Item>,
}

pub struct OrderCall {
    pub draft: DraftRecord,
    pub user: Option<String>,
    pub reference: String,
}

/// Queues for the two calls, and the worker futures to spawn.
pub struct BatchedCalls {
    pub reserves: GroupCommit<ReserveCalls>,
    pub orders: GroupCommit<OrderCalls>,
}

impl BatchedCalls {
    pub fn new(
        inventory: InventoryClient,
        orders: OrderClient,
        workers: usize,
        max_batch: usize,
    ) -> (Self, Vec<Worker>) {
        // A batch call takes at most this many entries; a bigger one would be refused whole.
        let max_batch = max_batch.min(proto::common::v1::MAX_BATCH_ENTRIES);
        let (reserves, reserve_workers) = GroupCommit::new(Arc::new(ReserveCalls { inventory }), workers, max_batch);
        let (orders, order_workers) = GroupCommit::new(Arc::new(OrderCalls { orders }), workers, max_batch);
        let mut all: Vec<Worker> = Vec::new();
        all.extend(reserve_workers.into_iter().map(|w| Box::pin(w) as Worker));
        all.extend(order_workers.into_iter().map(|w| Box::pin(w) as Worker));
        (Self { reserves, orders }, all)
    }
}

/// The indexes of `tenants`, grouped by tenant (a batch call acts for one tenant).
fn by_tenant(tenants: impl Iterator<Item = Uuid>) -> HashMap<Uuid, Vec<usize>> {
    let mut groups: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (index, tenant_id) in tenants.enumerate() {
        groups.entry(tenant_id).or_default().push(index);
    }
    groups
}

pub struct ReserveCalls {
    inventory: InventoryClient,
}

impl BatchProcessor for ReserveCalls {
    type Job = ReserveCall;
    type Output = Result<(), CallError>;

    async fn process(&self, jobs: Vec<ReserveCall>) -> Vec<Self::Output> {
        let groups = by_tenant(jobs.iter().map(|j| j.tenant_id));
        let answers = futures::future::join_all(groups.into_iter().map(|(tenant_id, indexes)| {
            let jobs = &jobs;
            async move {
                let entries: Vec<(Option<&str>, &str, &[Item])> = indexes
                    .iter()
                    .map(|&i| (jobs[i].user.as_deref(), jobs[i].reference.as_str(), jobs[i].items.as_slice()))
                    .collect();
                let answer = self.inventory.reserve_many(tenant_id, &entries).await;
                let results = settle(answer, entries.len(), |k| {
                    let (user, reference, items) = entries[k];
                    self.inventory.reserve(tenant_id, user, reference, items)
                })
                .await;
                indexes.into_iter().zip(results).collect::<Vec<_>>()
            }
        }))
        .await;
        in_order(jobs.len(), answers)
    }
}

pub struct OrderCalls {
    orders: OrderClient,
}

impl BatchProcessor for OrderCalls {
    type Job = OrderCall;
    type Output = Result<(Uuid, String), CallError>;

    async fn process(&self, jobs: Vec<OrderCall>) -> Vec<Self::Output> {
        let groups = by_tenant(jobs.iter().map(|j| j.draft.tenant_id));
        let answers = futures::future::join_all(groups.into_iter().map(|(tenant_id, indexes)| {
            let jobs = &jobs;
            async move {
                let entries: Vec<(&DraftRecord, Option<&str>, &str)> = indexes
                    .iter()
                    .map(|&i| (&jobs[i].draft, jobs[i].user.as_deref(), jobs[i].reference.as_str()))
                    .collect();
                let answer = self.orders.create_orders(tenant_id, &entries).await;
                let results = settle(answer, entries.len(), |k| {
                    let (draft, user, reference) = entries[k];
                    self.orders.create_order(draft, user, reference)
                })
                .await;
                indexes.into_iter().zip(results).collect::<Vec<_>>()
            }
        }))
        .await;
        in_order(jobs.len(), answers)
    }
}

/// One result per entry from a batch call's answer. A failure of the whole call was already
/// retried by the shared policy and fails every entry; an entry that failed on its own with a
/// transient error gets one more try alone, through `single` (its index).
async fn settle<T, F, Fut>(
    answer: Result<Vec<Result<T, CallError>>, CallError>,
    entries: usize,
    single: F,
) -> Vec<Result<T, CallError>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    match answer {
        Err(err) => (0..entries).map(|_| Err(err.clone())).collect(),
        Ok(mut results) => {
            for (k, result) in results.iter_mut().enumerate() {
                if matches!(result, Err(CallError::Unavailable { .. })) {
                    *result = single(k).await;
                }
            }
            results
        }
    }
}

/// The per-tenant answers put back in the jobs' order.
fn in_order<T>(len: usize, answers: Vec<Vec<(usize, Result<T, CallError>)>>) -> Vec<Result<T, CallError>> {
    let mut slots: Vec<Option<Result<T, CallError>>> = (0..len).map(|_| None).collect();
    for (index, result) in answers.into_iter().flatten() {
        slots[index] = Some(result);
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| Err(CallError::Unavailable { dependency: "draft", message: "no answer".into() }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_grouped_per_tenant_and_answered_in_the_jobs_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let groups = by_tenant([a, b, a, b, b].into_iter());
        assert_eq!(groups[&a], [0, 2]);
        assert_eq!(groups[&b], [1, 3, 4]);

        // Answers come back per tenant, in whatever order the calls ended.
        let answers: Vec<Vec<(usize, Result<u32, CallError>)>> =
            vec![vec![(1, Ok(11)), (3, Ok(13)), (4, Ok(14))], vec![(0, Ok(10)), (2, Ok(12))]];
        let ordered: Vec<u32> = in_order(5, answers).into_iter().map(|r| r.expect("answered")).collect();
        assert_eq!(ordered, [10, 11, 12, 13, 14]);
    }

    fn unavailable() -> CallError {
        CallError::Unavailable { dependency: "inventory", message: "busy".into() }
    }

    fn refused() -> CallError {
        CallError::Refused { dependency: "inventory", code: tonic::Code::FailedPrecondition, message: "short".into() }
    }

    #[tokio::test]
    async fn only_entries_that_failed_alone_and_transiently_are_tried_again_alone() {
        let tried = std::sync::Mutex::new(Vec::new());
        let single = |k: usize| {
            tried.lock().unwrap().push(k);
            async move { Ok::<u32, CallError>(100 + k as u32) }
        };
        let answer = Ok(vec![Ok(0), Err(unavailable()), Err(refused()), Err(unavailable())]);
        let results = settle(answer, 4, single).await;
        assert_eq!(*tried.lock().unwrap(), [1, 3], "a refusal (a shortage) is final; a success is kept");
        assert!(matches!(results[0], Ok(0)));
        assert!(matches!(results[1], Ok(101)));
        assert!(matches!(results[2], Err(CallError::Refused { .. })));
        assert!(matches!(results[3], Ok(103)));

        // The whole call failed (after the shared retries): every entry fails, none is retried alone.
        tried.lock().unwrap().clear();
        let results = settle(Err(unavailable()), 3, single).await;
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| matches!(r, Err(CallError::Unavailable { .. }))));
        assert!(tried.lock().unwrap().is_empty());
    }

    #[test]
    fn a_job_left_without_an_answer_is_unavailable_not_lost() {
        let answers: Vec<Vec<(usize, Result<u32, CallError>)>> = vec![vec![(0, Ok(10))]];
        let results = in_order(2, answers);
        assert!(matches!(results[1], Err(CallError::Unavailable { .. })), "{:?}", results[1]);
    }
}
