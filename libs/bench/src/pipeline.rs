//! `pipeline`: signed WhatsApp text webhooks through ingest, its outbox relay, JetStream, the
//! draft service's message consumer (parser, catalog matcher) into persisted drafts, with
//! inventory and order running too. Every message comes from its own customer, so each makes
//! its own draft.
//!
//! Latency is from the webhook's scheduled send time to the draft, two ways: the draft row's
//! `created_at` (the consumer transaction's start, so a lower bound: the commit comes after it)
//! and the moment a poller first sees the committed row (polling every 10 ms, so an upper bound).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use crate::Options;
use crate::catalog::{self, Product};
use crate::drive::{self, Run, Window};
use crate::figures::{CpuReading, Latencies, Table, ms, per_second, thousands};
use crate::stack::{self, Services, Stack};
use crate::webhook::{self, WebhookPoster};

const PHONE_NUMBER_ID: &str = "106540352242922";
/// Offered in the capacity phase: above the 1,500/s target, so the figure can show it.
const CAPACITY_RATE: f64 = 2000.0;
const POLL_EVERY: Duration = Duration::from_millis(10);

const TEXTS: &[&str] = &[
    "Hi! 2 gold hoops size 7 and the silver chain pls",
    "1 beaded bracelet please",
    "I want 3 gold hoops size 8",
    "2 silver chains and 1 beaded bracelet",
];

fn products() -> Vec<Product> {
    let product = |sku: &str, name: &str, size: Option<&str>, price_minor: i64| Product {
        sku: sku.into(),
        name: name.into(),
        attributes: size.map(|s| [("size".to_string(), s.to_string())].into_iter().collect()).unwrap_or_default(),
        price_minor,
        stock: 10_000_000,
    };
    vec![
        product("HOOP-G-7", "Gold Hoop Earrings", Some("7"), 1299),
        product("HOOP-G-8", "Gold Hoop Earrings", Some("8"), 1399),
        product("CHAIN-S", "Silver Chain Necklace", None, 3000),
        product("BRACE-B", "Beaded Bracelet", None, 800),
        product("RING-R-6", "Rose Gold Ring", Some("6"), 2200),
        product("STUD-P", "Pearl Stud Earrings", None, 1800),
    ]
}

fn customer_key(wa_id: u64) -> String {
    format!("whatsapp:{PHONE_NUMBER_ID}:{wa_id}")
}

fn message(phase: &str, wa_id: u64, n: u64) -> Vec<u8> {
    webhook::whatsapp_text(
        PHONE_NUMBER_ID,
        &wa_id.to_string(),
        "Ada Obi",
        &format!("wamid.pipe{phase}{n}"),
        TEXTS[n as usize % TEXTS.len()],
    )
}

/// Maps the bench's monotonic clock to wall-clock time, which the draft rows are stamped with.
#[derive(Clone, Copy)]
struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    fn now() -> Self {
        Self { instant: Instant::now(), wall: SystemTime::now() }
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.instant)
    }
}

fn offset(time: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(time)
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Table>> {
    let stack = Stack::start(Services { ingest: true, inventory: true, order: true, draft: true }).await?;
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
    let inventory = stack.inventory_grpc.clone().ok_or_else(|| anyhow::anyhow!("inventory not started"))?;
    let tenant = Uuid::new_v4();
    webhook::register_whatsapp(&grpc, tenant, PHONE_NUMBER_ID).await?;
    catalog::seed(stack::channels(&inventory, 1).await?.remove(0), tenant, &products()).await?;
    let poster = WebhookPoster::new(addr, options.client);
    let window = options.window(10.0);

    // Warm-up: the consumer exists, the catalog snapshot is loaded, every text makes a draft.
    let warm_started = Instant::now();
    let warm = 200;
    let warm_run = send(
        &poster,
        "w",
        2_347_000_000_000,
        400.0,
        Window { warmup: Duration::ZERO, measure: Duration::from_millis(500) },
        None,
    )
    .await;
    if warm_run.ok_total < warm {
        anyhow::bail!("warm-up webhooks failed: {}", warm_run.error_summary());
    }
    wait_for_drafts(stack, tenant, warm, Duration::from_secs(60)).await.map_err(|seen| {
        anyhow::anyhow!("warm-up: only {seen} of {warm} messages became drafts (do the texts still parse?)")
    })?;
    let warm_took = warm_started.elapsed();
    stack.analyze().await?;

    // (a) Latency at a fixed rate.
    let rate = options.rate.unwrap_or(1000.0);
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let poller = tokio::spawn(poll(stack.admin.clone(), tenant, pending.clone(), stop.clone()));
    let before = count_drafts(stack, tenant).await?;
    let clock = Clock::now();
    let cpu = CpuReading::now();
    let run_a = send(&poster, "a", 2_348_000_000_000, rate, window, Some((pending.clone(), clock))).await;
    let cpu_a = CpuReading::now().since(&cpu);
    let sent_a = run_a.ok_total;
    let complete = wait_for_drafts(stack, tenant, before + sent_a, Duration::from_secs(60)).await;
    // Let the poller see the last rows, then stop it.
    let settle = Instant::now() + Duration::from_secs(5);
    while !pending.lock().map(|p| p.is_empty()).unwrap_or(true) && Instant::now() < settle {
        tokio::time::sleep(POLL_EVERY).await;
    }
    stop.cancel();
    let (mut stamped, mut visible) = poller.await.map_err(|e| anyhow::anyhow!("poller: {e}"))?;
    let measured_from = clock.wall(clock.instant + window.warmup);
    let made_a = drafts_between(stack, tenant, measured_from, measured_from + window.measure).await?;

    let mut a = Table::new(format!(
        "pipeline (a): webhook -> draft at {}/s open loop, {:.0} s, all services in-process",
        thousands(rate as u64),
        window.measure.as_secs_f64()
    ));
    a.info("drafts/s (drafts stamped in the window)", per_second(made_a as f64 / window.measure.as_secs_f64()));
    a.latency("sent -> draft row created_at: p50 (lower bound)", stamped.percentile(50.0));
    a.latency("sent -> draft row created_at: p99 (lower bound)", stamped.percentile(99.0));
    a.latency("sent -> draft committed, seen by 10 ms poll: p50", visible.percentile(50.0));
    a.latency_under("sent -> draft committed, seen by 10 ms poll: p99", visible.percentile(99.0), 100.0);
    a.latency("sent -> draft committed: max", visible.max());
    a.zero("webhooks refused", run_a.errors);
    let missing = match complete {
        Ok(_) => 0,
        Err(seen) => (before + sent_a).saturating_sub(seen),
    };
    a.zero("messages without a draft after 60 s", missing);
    a.info("webhook answer p99 (ingest, everything running)", ms_or_na(run_a));
    a.note(format!("CPU during the run: {}", cpu_a));
    a.note(format!(
        "warm-up: {warm} messages at 400/s became drafts within {} (consumer, catalog snapshot)",
        ms(warm_took)
    ));

    // (b) Capacity: offered above the target; drafts/s is what the draft side sustains.
    let before = count_drafts(stack, tenant).await?;
    let clock = Clock::now();
    let cpu = CpuReading::now();
    let mut run_b = send(&poster, "b", 2_349_000_000_000, CAPACITY_RATE, window, None).await;
    let cpu_b = CpuReading::now().since(&cpu);
    let ended = Instant::now();
    let sent_b = run_b.ok_total;
    let backlog = (before + sent_b).saturating_sub(count_drafts(stack, tenant).await?);
    let drained = wait_for_drafts(stack, tenant, before + sent_b, Duration::from_secs(120)).await;
    let drain_took = ended.elapsed();
    let measured_from = clock.wall(clock.instant + window.warmup);
    let made_b = drafts_between(stack, tenant, measured_from, measured_from + window.measure).await?;
    let mut b = Table::new(format!(
        "pipeline (b): sustained drafts/s with {}/s offered, {:.0} s",
        thousands(CAPACITY_RATE as u64),
        window.measure.as_secs_f64()
    ));
    b.rate_at_least(
        "drafts/s sustained (drafts stamped in the window)",
        made_b as f64 / window.measure.as_secs_f64(),
        1500.0,
    );
    b.info("webhooks accepted/s", per_second(run_b.rate()));
    b.info("webhook answer p99", run_b.latencies.percentile(99.0).map(ms).unwrap_or_default());
    b.zero("webhooks refused", run_b.errors);
    b.info("messages not yet drafts when sending stopped", thousands(backlog));
    match drained {
        Ok(_) => b.info("backlog drained", format!("{} after sending stopped", ms(drain_took))),
        Err(seen) => b.zero("messages without a draft after 120 s", (before + sent_b).saturating_sub(seen)),
    }
    b.note(format!("CPU during the run: {}", cpu_b));
    Ok(vec![a, b])
}

fn ms_or_na(mut run: Run) -> String {
    run.latencies.percentile(99.0).map(ms).unwrap_or_else(|| "n/a".into())
}

/// Customer key -> (scheduled send time, measured?) of messages whose draft has not been seen.
type Pending = Arc<Mutex<HashMap<String, (SystemTime, bool)>>>;

async fn send(
    poster: &WebhookPoster,
    phase: &'static str,
    first_wa_id: u64,
    rate: f64,
    window: Window,
    track: Option<(Pending, Clock)>,
) -> Run {
    let poster = poster.clone();
    let measure_from = Instant::now() + window.warmup;
    drive::open_loop(rate, window, 4096, move |n, due| {
        let wa_id = first_wa_id + n;
        if let Some((pending, clock)) = &track
            && let Ok(mut pending) = pending.lock()
        {
            pending.insert(customer_key(wa_id), (clock.wall(due), due >= measure_from));
        }
        let poster = poster.clone();
        let body = message(phase, wa_id, n);
        async move { poster.post_whatsapp(body).await }
    })
    .await
}

/// Finds the drafts of the oldest pending customers every 10 ms; returns the measured latencies
/// to the row's `created_at` and to the poll that first saw it.
async fn poll(
    admin: sqlx::PgPool,
    tenant: Uuid,
    pending: Pending,
    stop: tokio_util::sync::CancellationToken,
) -> (Latencies, Latencies) {
    let mut stamped = Latencies::default();
    let mut visible = Latencies::default();
    while !stop.is_cancelled() {
        // The oldest pending customers first, at most 200 a poll: the poll must stay cheap when the
        // pipeline falls behind, or it would take the CPU the pipeline needs.
        let keys: Vec<String> = match pending.lock() {
            Ok(pending) => {
                let mut oldest: Vec<(&String, &(SystemTime, bool))> = pending.iter().collect();
                oldest.sort_by_key(|(_, (sent, _))| *sent);
                oldest.into_iter().take(200).map(|(key, _)| key.clone()).collect()
            }
            Err(_) => break,
        };
        if !keys.is_empty() {
            let polled_at = SystemTime::now();
            let found: Vec<(String, OffsetDateTime)> = sqlx::query_as(
                // One index probe per key (the open-draft-per-customer index), whatever the plan
                // of a plain `= ANY` would be on a table whose statistics are minutes old.
                "SELECT d.customer_key, d.created_at FROM unnest($2::text[]) AS k(key)
                 JOIN LATERAL (SELECT customer_key, created_at FROM draft.drafts
                               WHERE tenant_id = $1 AND customer_key = k.key AND status = 'pending_review') d ON true",
            )
            .bind(tenant)
            .bind(&keys)
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
            if let Ok(mut pending) = pending.lock() {
                for (key, created_at) in found {
                    if let Some((sent, measured)) = pending.remove(&key)
                        && measured
                    {
                        let sent = offset(sent);
                        stamped.record((created_at - sent).try_into().unwrap_or(Duration::ZERO));
                        visible.record((offset(polled_at) - sent).try_into().unwrap_or(Duration::ZERO));
                    }
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    (stamped, visible)
}

async fn count_drafts(stack: &Stack, tenant: Uuid) -> anyhow::Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM draft.drafts WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&stack.admin)
        .await?;
    Ok(count as u64)
}

async fn drafts_between(stack: &Stack, tenant: Uuid, from: SystemTime, to: SystemTime) -> anyhow::Result<u64> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM draft.drafts WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(tenant)
    .bind(offset(from))
    .bind(offset(to))
    .fetch_one(&stack.admin)
    .await?;
    Ok(count as u64)
}

/// Waits until the tenant has `expected` drafts; `Err(seen)` after `timeout`.
async fn wait_for_drafts(stack: &Stack, tenant: Uuid, expected: u64, timeout: Duration) -> Result<u64, u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = count_drafts(stack, tenant).await.unwrap_or(0);
        if seen >= expected {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
