//! `reserve`: inventory's Reserve spread over 1,000 SKUs and contended on one hot SKU, and
//! catalog search on a 10,000-SKU catalog. Inventory alone.

use std::time::{Duration, Instant};

use proto::inventory::v1 as pb;
use proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use uuid::Uuid;

use crate::Options;
use crate::catalog::{self, Product};
use crate::drive::{self, Outcome, Run};
use crate::figures::{CpuReading, Latencies, Table, ms, thousands};
use crate::stack::{self, Bearer, Services, Stack};

const SPREAD_SKUS: usize = 1000;
const HOT_SKU: &str = "HOT-00001";
const HOT_CALLERS: usize = 64;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Table>> {
    let stack = Stack::start(Services { inventory: true, ..Default::default() }).await?;
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
    let url = stack.inventory_grpc.clone().ok_or_else(|| anyhow::anyhow!("inventory not started"))?;
    let channels = stack::channels(&url, 4).await?;
    let tenant = Uuid::new_v4();
    let mut products = catalog::numbered(SPREAD_SKUS, 1_000_000);
    products.push(Product { sku: HOT_SKU.into(), name: "Hot item".into(), stock: 10_000_000, ..products[0].clone() });
    let seeding = Instant::now();
    catalog::seed(channels[0].clone(), tenant, &products).await?;
    let seeded_in = seeding.elapsed();
    let agent = Bearer::new(Some(tenant), testkit::Role::Agent)?;
    let window = options.window(10.0);
    let concurrency = options.concurrency.unwrap_or(64);

    let reserve = move |channels: &[tonic::transport::Channel], n: u64, kind: &'static str, sku: String| {
        let mut client = InventoryServiceClient::new(channels[n as usize % channels.len()].clone());
        let request = agent.request(pb::ReserveRequest {
            reference: format!("bench:{kind}:{n}"),
            items: vec![pb::ReserveItem { sku, quantity: 1, location: String::new() }],
        });
        async move { Outcome::of_grpc(client.reserve(request).await) }
    };

    // A second of reservations, then statistics, so the runs see a database in service.
    {
        let (channels, reserve) = (channels.clone(), reserve.clone());
        let prewarm = drive::Window { warmup: Duration::ZERO, measure: Duration::from_secs(1) };
        drive::closed_loop(concurrency, prewarm, move |n| {
            let sku = format!("SKU-{:05}", fastrand::usize(..SPREAD_SKUS));
            Some(reserve(&channels, n, "prewarm", sku))
        })
        .await;
    }
    stack.analyze().await?;

    let cpu = CpuReading::now();
    let spread = {
        let (channels, reserve) = (channels.clone(), reserve.clone());
        drive::closed_loop(concurrency, window, move |n| {
            let sku = format!("SKU-{:05}", fastrand::usize(..SPREAD_SKUS));
            Some(reserve(&channels, n, "spread", sku))
        })
        .await
    };
    let cpu_spread = CpuReading::now().since(&cpu);

    let cpu = CpuReading::now();
    let hot = {
        let (channels, reserve) = (channels.clone(), reserve.clone());
        drive::closed_loop(HOT_CALLERS, window, move |n| Some(reserve(&channels, n, "hot", HOT_SKU.to_string()))).await
    };
    let cpu_hot = CpuReading::now().since(&cpu);
    let hot_level = catalog::level(channels[0].clone(), tenant, HOT_SKU).await?;
    let batches = batch_sizes(stack).await.unwrap_or_else(|e| format!("n/a ({e})"));

    let mut spread_table = Table::new(format!(
        "reserve (a): spread over {} SKUs, {concurrency} concurrent callers, {:.0} s",
        thousands(SPREAD_SKUS as u64),
        window.measure.as_secs_f64()
    ));
    rows(&mut spread_table, spread, 2000.0);
    spread_table.note(format!("CPU during the run: {}", cpu_spread));
    spread_table.note(format!("seeding {} SKUs through the API took {}", products.len(), ms(seeded_in)));

    let mut hot_table = Table::new(format!(
        "reserve (b): one hot SKU, {HOT_CALLERS} concurrent callers, {:.0} s",
        window.measure.as_secs_f64()
    ));
    let hot_granted = hot.ok_total;
    rows(&mut hot_table, hot, 500.0);
    hot_table.check(
        "hot SKU reserved = reservations granted (no oversell, none lost)",
        format!("{} / {}", thousands(hot_level.reserved as u64), thousands(hot_granted)),
        hot_level.reserved as u64 == hot_granted,
    );
    hot_table.info("reservations per transaction (group commit, both runs)", batches);
    hot_table.note(format!("CPU during the run: {}", cpu_hot));

    let search = search(&url).await?;
    Ok(vec![spread_table, hot_table, search])
}

fn rows(table: &mut Table, mut run: Run, target: f64) {
    table.rate_at_least("reservations/s", run.rate(), target);
    table.latency("latency p50", run.latencies.percentile(50.0));
    table.latency("latency p99", run.latencies.percentile(99.0));
    table.info("refused for a real shortage", thousands(run.shortages));
    table.zero("errors (anything but a shortage)", run.errors);
    if run.errors > 0 {
        table.note(format!("errors: {}", run.error_summary()));
    }
}

/// Reservations per transaction: the reservations of one batch share `created_at` (`now()`).
async fn batch_sizes(stack: &Stack) -> anyhow::Result<String> {
    let (mean, max): (f64, i64) = sqlx::query_as(
        "SELECT coalesce(avg(n), 0)::float8, coalesce(max(n), 0)
         FROM (SELECT count(*) AS n FROM inventory.reservations GROUP BY created_at) batches",
    )
    .fetch_one(&stack.admin)
    .await?;
    Ok(format!("mean {mean:.1}, max {max}"))
}

/// SearchCatalog on a 10,000-SKU catalog: the first call (which builds the tenant's index) and
/// 200 more, one at a time.
async fn search(url: &str) -> anyhow::Result<Table> {
    let channel = stack::channels(url, 1).await?.remove(0);
    let tenant = Uuid::new_v4();
    let products = catalog::shop(10_000);
    catalog::seed(channel.clone(), tenant, &products).await?;
    let viewer = Bearer::new(Some(tenant), testkit::Role::Viewer)?;
    let mut client = InventoryServiceClient::new(channel);
    let (cold, _) = search_once(&mut client, &viewer, catalog::SEARCHES[0]).await?;
    let mut latencies = Latencies::default();
    let mut empty = 0;
    for i in 0..200 {
        let (latency, found) =
            search_once(&mut client, &viewer, catalog::SEARCHES[i % catalog::SEARCHES.len()]).await?;
        latencies.record(latency);
        if found == 0 {
            empty += 1;
        }
    }
    let mut table = Table::new("reserve (c): catalog search, 10,000 SKUs, 200 calls one at a time");
    table.info("first search (builds the tenant's index)", ms(cold));
    table.latency("search p50", latencies.percentile(50.0));
    table.latency_under("search p99", latencies.percentile(99.0), 10.0);
    table.info("searches that found nothing", thousands(empty));
    Ok(table)
}

async fn search_once(
    client: &mut InventoryServiceClient<tonic::transport::Channel>,
    viewer: &Bearer,
    query: &str,
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let response =
        client.search_catalog(viewer.request(pb::SearchCatalogRequest { query: query.to_string(), limit: 10 })).await?;
    Ok((started.elapsed(), response.into_inner().matches.len()))
}
