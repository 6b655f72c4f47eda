//! `approve`: ApproveDraft end to end (draft -> inventory Reserve -> order CreateOrder -> draft
//! approved) with inventory, order and draft in-process. Drafts are created beforehand through
//! CreateDraft; then (a) approvals across many SKUs, (b) 64 approvers on drafts sharing one hot SKU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use proto::draft::v1 as pb;
use proto::draft::v1::draft_service_client::DraftServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::Options;
use crate::catalog::{self, Product};
use crate::drive::{self, Outcome, Run};
use crate::figures::{CpuReading, Table, per_second, thousands};
use crate::stack::{self, Bearer, Services, Stack};

const SKUS: usize = 1000;
const HOT_SKU: &str = "HOT-00001";
const HOT_APPROVERS: usize = 64;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Table>> {
    let stack = Stack::start(Services { inventory: true, order: true, draft: true, ..Default::default() }).await?;
    let mut result = measure(options, &stack).await;
    if let Ok(tables) = &mut result
        && let Some(last) = tables.last_mut()
    {
        last.note(format!("sequential scans in this run's database: {}", stack.sequential_reads().await));
    }
    stack.stop().await?;
    result
}

async fn measure(options: &Options, stack: &Stack) -> anyhow::Result<Vec<Table>> {
    let inventory = stack.inventory_grpc.clone().ok_or_else(|| anyhow::anyhow!("inventory not started"))?;
    let draft_url = stack.draft_grpc.clone().ok_or_else(|| anyhow::anyhow!("draft not started"))?;
    let inventory = stack::channels(&inventory, 1).await?.remove(0);
    let drafts = stack::channels(&draft_url, 4).await?;
    let tenant = Uuid::new_v4();
    let mut products = catalog::numbered(SKUS, 1_000_000);
    products.push(Product { sku: HOT_SKU.into(), name: "Hot item".into(), stock: 10_000_000, ..products[0].clone() });
    catalog::seed(inventory.clone(), tenant, &products).await?;
    let agent = Bearer::new(Some(tenant), testkit::Role::Agent)?;
    let window = options.window(10.0);
    let concurrency = options.concurrency.unwrap_or(32);
    let seconds = (window.warmup + window.measure).as_secs_f64();

    // (a) Spread: each draft has one to three of the 1,000 SKUs.
    let spread_count = 300 + (1200.0 * seconds).ceil() as usize;
    let (spread_ids, create_rate) = create_drafts(&drafts, &agent, spread_count, spread_items).await?;
    // Approve a few hundred first, then statistics, so the runs see a database in service.
    let (prewarm_ids, spread_ids) = {
        let mut ids = spread_ids;
        let rest = ids.split_off(ids.len().min(300));
        (ids, rest)
    };
    let prewarm = drive::Window { warmup: Duration::ZERO, measure: Duration::from_secs(30) };
    approve_all(&drafts, &agent, concurrency, prewarm, prewarm_ids).await;
    stack.analyze().await?;
    let cpu = CpuReading::now();
    let spread = approve_all(&drafts, &agent, concurrency, window, spread_ids).await;
    let cpu_spread = CpuReading::now().since(&cpu);
    let mut a = Table::new(format!(
        "approve (a): ApproveDraft across {} SKUs, {concurrency} concurrent approvers, {:.0} s",
        thousands(SKUS as u64),
        window.measure.as_secs_f64()
    ));
    let spread_exhausted = spread.exhausted;
    rows(&mut a, spread, 1000.0, Some(50.0));
    a.note(format!("CPU during the run: {}", cpu_spread));
    a.note(format!(
        "{} drafts created beforehand through CreateDraft at {} (16 callers)",
        thousands(spread_count as u64),
        per_second(create_rate)
    ));
    if spread_exhausted {
        a.note("the prepared drafts ran out before the window ended; the rate is over the time they lasted");
    }

    // (a') The same approvals offered at a fixed rate: latency at that rate, each measured from
    // when its request was due (a stall counts for every request it held up).
    let rate = options.rate.unwrap_or(1000.0);
    let paced_count = (rate * seconds * 1.05).ceil() as usize;
    let (paced_ids, _) = create_drafts(&drafts, &agent, paced_count, |n| spread_items(spread_count + n)).await?;
    stack.analyze().await?;
    let cpu = CpuReading::now();
    let paced = approve_paced(&drafts, &agent, rate, window, paced_ids).await;
    let cpu_paced = CpuReading::now().since(&cpu);
    let mut a_paced = Table::new(format!(
        "approve (a'): ApproveDraft across {} SKUs offered at {}/s (open loop), {:.0} s",
        thousands(SKUS as u64),
        thousands(rate as u64),
        window.measure.as_secs_f64()
    ));
    let send_lag = paced.max_send_lag;
    rows(&mut a_paced, paced, rate, Some(50.0));
    a_paced.note(format!("CPU during the run: {}", cpu_paced));
    a_paced.note(format!("the sender fell behind its schedule by at most {}", crate::figures::ms(send_lag)));

    // (b) Hot: every draft holds the hot SKU and one other.
    let hot_count = (700.0 * seconds).ceil() as usize;
    let (hot_ids, _) = create_drafts(&drafts, &agent, hot_count, |n| {
        vec![(HOT_SKU.to_string(), 1), (format!("SKU-{:05}", (n * 13) % SKUS), 1)]
    })
    .await?;
    stack.analyze().await?;
    let cpu = CpuReading::now();
    let hot = approve_all(&drafts, &agent, HOT_APPROVERS, window, hot_ids).await;
    let cpu_hot = CpuReading::now().since(&cpu);
    let hot_level = catalog::level(inventory, tenant, HOT_SKU).await?;
    let orders = stack.scalar("SELECT count(*) FROM orders.orders").await?;
    let mut b = Table::new(format!(
        "approve (b): {HOT_APPROVERS} concurrent approvers, every draft holds one hot SKU, {:.0} s",
        window.measure.as_secs_f64()
    ));
    let hot_exhausted = hot.exhausted;
    let hot_ok = hot.ok_total;
    rows(&mut b, hot, 500.0, None);
    b.check(
        "hot SKU reserved = hot approvals (no oversell, none lost)",
        format!("{} / {}", thousands(hot_level.reserved as u64), thousands(hot_ok)),
        hot_level.reserved as u64 == hot_ok,
    );
    let approved = stack.scalar("SELECT count(*) FROM draft.drafts WHERE status = 'approved'").await?;
    let distinct = stack.scalar("SELECT count(DISTINCT (tenant_id, source_id)) FROM orders.orders").await?;
    b.check(
        "orders = approved drafts = distinct draft ids on orders (one order each)",
        format!("{} / {} / {}", thousands(orders as u64), thousands(approved as u64), thousands(distinct as u64)),
        orders == approved && orders == distinct,
    );
    b.note(format!("CPU during the run: {}", cpu_hot));
    if hot_exhausted {
        b.note("the prepared drafts ran out before the window ended; the rate is over the time they lasted");
    }
    Ok(vec![a, a_paced, b])
}

/// Draft `n` of the spread runs: one to three of the 1,000 SKUs.
fn spread_items(n: usize) -> Vec<(String, i64)> {
    let lines = 1 + n % 3;
    (0..lines).map(|line| (format!("SKU-{:05}", (n * 7 + line * 331) % SKUS), 1 + (n + line) as i64 % 2)).collect()
}

fn rows(table: &mut Table, mut run: Run, target: f64, p99_target_ms: Option<f64>) {
    table.rate_at_least("approvals/s", run.rate(), target);
    table.latency("latency p50", run.latencies.percentile(50.0));
    match p99_target_ms {
        Some(target) => table.latency_under("latency p99", run.latencies.percentile(99.0), target),
        None => table.latency("latency p99", run.latencies.percentile(99.0)),
    }
    table.info("refused for a real shortage", thousands(run.shortages));
    table.zero("errors (anything but a shortage)", run.errors);
    if run.errors > 0 {
        table.note(format!("errors: {}", run.error_summary()));
    }
}

/// Creates `count` drafts through CreateDraft (16 at a time); returns their ids and the rate.
async fn create_drafts(
    channels: &[Channel],
    agent: &Bearer,
    count: usize,
    items: impl Fn(usize) -> Vec<(String, i64)>,
) -> anyhow::Result<(Vec<String>, f64)> {
    let started = Instant::now();
    let calls = (0..count).map(|n| {
        let mut client = DraftServiceClient::new(channels[n % channels.len()].clone());
        let request = agent.request(pb::CreateDraftRequest {
            customer: Some(pb::Customer {
                name: "Ada Obi".into(),
                phone_e164: format!("+23480{:08}", n),
                ..Default::default()
            }),
            items: items(n)
                .into_iter()
                .map(|(sku, quantity)| pb::ItemInput { sku, quantity, text: String::new() })
                .collect(),
            ..Default::default()
        });
        async move { client.create_draft(request).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<Result<String, tonic::Status>> = futures::stream::iter(calls).buffer_unordered(16).collect().await;
    let ids = ids.into_iter().collect::<Result<Vec<_>, _>>()?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    Ok((ids, rate))
}

/// Approves the drafts in order, one due every `1 / rate` seconds whatever the earlier ones do.
async fn approve_paced(
    channels: &[Channel],
    agent: &Bearer,
    rate: f64,
    window: drive::Window,
    ids: Vec<String>,
) -> Run {
    let ids = Arc::new(ids);
    let (channels, agent) = (channels.to_vec(), agent.clone());
    drive::open_loop(rate, window, 4096, move |n, _due| {
        let id = ids.get(n as usize).cloned();
        let mut client = DraftServiceClient::new(channels[n as usize % channels.len()].clone());
        let agent = agent.clone();
        async move {
            let Some(id) = id else { return Outcome::Error("ran out of prepared drafts".into()) };
            Outcome::of_grpc(client.approve_draft(agent.request(pb::ApproveDraftRequest { id })).await)
        }
    })
    .await
}

/// Approves the drafts in order with `concurrency` callers until the window ends or they run out.
async fn approve_all(
    channels: &[Channel],
    agent: &Bearer,
    concurrency: usize,
    window: drive::Window,
    ids: Vec<String>,
) -> Run {
    let ids = Arc::new(ids);
    let (channels, agent) = (channels.to_vec(), agent.clone());
    drive::closed_loop(concurrency, window, move |n| {
        let id = ids.get(n as usize)?.clone();
        let mut client = DraftServiceClient::new(channels[n as usize % channels.len()].clone());
        let request = agent.request(pb::ApproveDraftRequest { id });
        Some(async move { Outcome::of_grpc(client.approve_draft(request).await) })
    })
    .await
}
