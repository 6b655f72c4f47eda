//! `ingest`: signed WhatsApp webhooks into ingest alone (its outbox relay publishing to
//! JetStream). (a) As fast as C keep-alive connections can post; (b) at a fixed rate, open loop.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::Options;
use crate::drive::{self, Run};
use crate::figures::{CpuReading, Table, ms, thousands};
use crate::stack::{Services, Stack};
use crate::webhook::{self, WebhookPoster};

const PHONE_NUMBER_ID: &str = "106540352242922";

/// A fresh text message for request `n` of run `run`: distinct message ids, a thousand customers.
fn body(run: &str, n: u64) -> Vec<u8> {
    let customer = 2348010000000u64 + n % 1000;
    webhook::whatsapp_text(
        PHONE_NUMBER_ID,
        &customer.to_string(),
        "Ada Obi",
        &format!("wamid.bench{run}{n}"),
        "Hello, is the gold hoop still available?",
    )
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Table>> {
    let stack = Stack::start(Services { ingest: true, ..Default::default() }).await?;
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
    let grpc = stack.ingest_grpc.clone().ok_or_else(|| anyhow::anyhow!("ingest not started"))?;
    let addr = stack.ingest_http.ok_or_else(|| anyhow::anyhow!("ingest not started"))?;
    webhook::register_whatsapp(&grpc, Uuid::new_v4(), PHONE_NUMBER_ID).await?;
    let poster = WebhookPoster::new(addr, options.client);
    let window = options.window(10.0);
    let concurrency = options.concurrency.unwrap_or(64);
    // A first 2,000 webhooks, then statistics, so the runs see a database in service.
    let prewarm = drive::Window { warmup: Duration::ZERO, measure: Duration::from_secs(1) };
    let poster_prewarm = poster.clone();
    drive::closed_loop(16, prewarm, move |n| {
        (n < 2000).then(|| {
            let poster = poster_prewarm.clone();
            async move { poster.post_whatsapp(body("w", n)).await }
        })
    })
    .await;
    relay_drain(stack).await?;
    stack.analyze().await?;

    // (a) Maximum throughput.
    let cpu = CpuReading::now();
    let run_a = {
        let poster = poster.clone();
        drive::closed_loop(concurrency, window, move |n| {
            let poster = poster.clone();
            Some(async move { poster.post_whatsapp(body("a", n)).await })
        })
        .await
    };
    let cpu_a = CpuReading::now().since(&cpu);
    let opened_a = poster.connections_opened();
    let (backlog_a, drain_a) = relay_drain(stack).await?;

    // (b) Latency at a fixed rate, open loop.
    let rate = options.rate.unwrap_or(2000.0);
    let cpu = CpuReading::now();
    let run_b = {
        let poster = poster.clone();
        drive::open_loop(rate, window, 4096, move |n, _due| {
            let poster = poster.clone();
            async move { poster.post_whatsapp(body("b", n)).await }
        })
        .await
    };
    let cpu_b = CpuReading::now().since(&cpu);
    let (backlog_b, drain_b) = relay_drain(stack).await?;
    let stored = stack.scalar("SELECT count(*) FROM ingest.webhook_dedupe").await?;
    let published = stack.scalar("SELECT count(*) FROM ingest.outbox WHERE published_at IS NOT NULL").await?;
    let batches = batch_sizes(stack).await;

    let mut a = Table::new(format!(
        "ingest (a): max throughput, {concurrency} keep-alive connections, {:.0} s after {:.0} s warm-up",
        window.measure.as_secs_f64(),
        window.warmup.as_secs_f64()
    ));
    throughput_rows(&mut a, run_a);
    a.info(
        "relay backlog when the load stopped / drained in",
        format!("{} rows / {}", thousands(backlog_a), ms(drain_a)),
    );
    a.note(format!("CPU during the run: {}", cpu_a));
    a.note(format!("client: {}; {opened_a} connections opened", options.client.describe()));

    let mut b = Table::new(format!(
        "ingest (b): fixed rate {}/s open loop, {:.0} s (latency from the scheduled send time)",
        thousands(rate as u64),
        window.measure.as_secs_f64()
    ));
    let mut run_b = run_b;
    b.info("accepted/s", crate::figures::per_second(run_b.rate()));
    b.latency("latency p50", run_b.latencies.percentile(50.0));
    b.latency_under("latency p99", run_b.latencies.percentile(99.0), 25.0);
    b.latency("latency max", run_b.latencies.max());
    b.zero("error answers", run_b.errors + run_b.shortages);
    if run_b.errors > 0 {
        b.note(format!("errors: {}", run_b.error_summary()));
    }
    b.info("sender fell behind schedule by at most", ms(run_b.max_send_lag));
    b.note(format!("{} more connections opened for the bursts", poster.connections_opened() - opened_a));
    b.info(
        "relay backlog when the load stopped / drained in",
        format!("{} rows / {}", thousands(backlog_b), ms(drain_b)),
    );
    b.check(
        "every stored event published (dedupe rows = published outbox rows)",
        format!("{} / {}", thousands(stored as u64), thousands(published as u64)),
        stored == published,
    );
    if let Some(batches) = batches {
        b.info("group commit: webhooks per transaction (both runs)", batches);
    }
    b.note(format!("CPU during the run: {}", cpu_b));
    Ok(vec![a, b])
}

fn throughput_rows(table: &mut Table, mut run: Run) {
    table.rate_at_least("accepted/s (durably stored, 200)", run.rate(), 4000.0);
    table.latency("latency p50", run.latencies.percentile(50.0));
    table.latency("latency p90", run.latencies.percentile(90.0));
    table.latency("latency p99", run.latencies.percentile(99.0));
    table.latency("latency max", run.latencies.max());
    table.zero("error answers", run.errors + run.shortages);
    if run.errors > 0 {
        table.note(format!("errors: {}", run.error_summary()));
    }
}

/// Unpublished outbox rows now, and how long the relay takes to publish them all.
async fn relay_drain(stack: &Stack) -> anyhow::Result<(u64, Duration)> {
    let unpublished = "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL";
    let backlog = stack.scalar(unpublished).await?;
    let started = Instant::now();
    while stack.scalar(unpublished).await? > 0 {
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the ingest outbox did not drain within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((backlog as u64, started.elapsed()))
}

/// Webhooks per transaction, from ingest's raw archive: the webhooks committed together share
/// its `received_at` (`now()` is the transaction's start time).
async fn batch_sizes(stack: &Stack) -> Option<String> {
    let (mean, max): (f64, i64) = sqlx::query_as(
        "SELECT coalesce(avg(n), 0)::float8, coalesce(max(n), 0)
         FROM (SELECT count(*) AS n FROM ingest.raw_payloads GROUP BY received_at) batches",
    )
    .fetch_one(&stack.admin)
    .await
    .ok()?;
    Some(format!("mean {mean:.1}, max {max}"))
}
