//! `orders`: the order service alone. CreateOrder as the draft approval calls it, status updates
//! on confirmed orders, then ListOrders and OrderSummary on a tenant with 100,000 orders.

use std::time::Instant;

use proto::common::v1::Money;
use proto::order::v1 as pb;
use proto::order::v1::order_service_client::OrderServiceClient;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::Options;
use crate::drive::{self, Outcome, Run};
use crate::figures::{CpuReading, Latencies, Table, ms, thousands};
use crate::stack::{self, Bearer, Services, Stack};

/// Orders of the tenant the list and summary figures are taken on.
const LISTED_ORDERS: i64 = 100_000;
const CALLS_PER_FILTER: usize = 200;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Table>> {
    let stack = Stack::start(Services { order: true, ..Default::default() }).await?;
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
    let url = stack.order_grpc.clone().ok_or_else(|| anyhow::anyhow!("order not started"))?;
    let channels = stack::channels(&url, 4).await?;
    let window = options.window(10.0);
    let mut tables = Vec::new();

    // CreateOrder: the draft approval's call, with the service role and a fresh idempotency key.
    let create_concurrency = options.concurrency.unwrap_or(32);
    let tenant = Uuid::new_v4();
    let service = Bearer::new(Some(tenant), testkit::Role::Service)?;
    // Some orders first, then statistics, so the run sees a database in service.
    let warm = Uuid::new_v4();
    load_orders(&stack.admin, warm, 5000, Mix::Realistic).await?;
    {
        let channels = channels.clone();
        // Another tenant: the loaded one's codes were not drawn from its code counter.
        let warm_service = Bearer::new(Some(Uuid::new_v4()), testkit::Role::Service)?;
        let prewarm = drive::Window { warmup: std::time::Duration::ZERO, measure: std::time::Duration::from_secs(1) };
        drive::closed_loop(create_concurrency, prewarm, move |n| {
            let mut client = OrderServiceClient::new(channels[n as usize % channels.len()].clone());
            let request = warm_service.request(create_request(n));
            Some(async move { Outcome::of_grpc(client.create_order(request).await) })
        })
        .await;
    }
    stack.analyze().await?;
    let cpu = CpuReading::now();
    let created = {
        let channels = channels.clone();
        drive::closed_loop(create_concurrency, window, move |n| {
            let mut client = OrderServiceClient::new(channels[n as usize % channels.len()].clone());
            let request = service.request(create_request(n));
            Some(async move { Outcome::of_grpc(client.create_order(request).await) })
        })
        .await
    };
    let cpu_create = CpuReading::now().since(&cpu);
    let mut table = Table::new(format!(
        "orders (a): CreateOrder, {create_concurrency} concurrent callers, {:.0} s",
        window.measure.as_secs_f64()
    ));
    write_rows(&mut table, "orders created/s", created, 1500.0);
    table.note(format!("CPU during the run: {}", cpu_create));
    tables.push(table);

    // UpdateOrderStatus confirmed -> processing, each order once.
    let update_concurrency = options.concurrency.unwrap_or(32);
    let tenant = Uuid::new_v4();
    let prepared = (4000.0 * (window.warmup + window.measure).as_secs_f64()).ceil() as i64;
    let loading = Instant::now();
    load_orders(&stack.admin, tenant, prepared, Mix::AllConfirmed).await?;
    let loaded_in = loading.elapsed();
    let ids: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM orders.orders WHERE tenant_id = $1 ORDER BY random()")
            .bind(tenant)
            .fetch_all(&stack.admin)
            .await?
            .into_iter()
            .map(|id| id.to_string())
            .collect(),
    );
    let agent = Bearer::new(Some(tenant), testkit::Role::Agent)?;
    let cpu = CpuReading::now();
    let updated = {
        let channels = channels.clone();
        drive::closed_loop(update_concurrency, window, move |n| {
            let order_id = ids.get(n as usize)?.clone();
            let mut client = OrderServiceClient::new(channels[n as usize % channels.len()].clone());
            let request = agent.request(pb::UpdateOrderStatusRequest {
                order_id,
                status: pb::OrderStatus::Processing as i32,
                reason: "packing".into(),
                expected_version: 0,
                ..Default::default()
            });
            Some(async move { Outcome::of_grpc(client.update_order_status(request).await) })
        })
        .await
    };
    let cpu_update = CpuReading::now().since(&cpu);
    let mut table = Table::new(format!(
        "orders (b): UpdateOrderStatus confirmed -> processing, {update_concurrency} concurrent callers, {:.0} s",
        window.measure.as_secs_f64()
    ));
    let exhausted = updated.exhausted;
    write_rows(&mut table, "status updates/s", updated, 2500.0);
    table.note(format!("CPU during the run: {}", cpu_update));
    table.note(format!(
        "{} confirmed orders prepared by SQL (then vacuumed and analyzed) in {}",
        thousands(prepared as u64),
        ms(loaded_in)
    ));
    if exhausted {
        table.note("the prepared orders ran out before the window ended; the rate is over the time they lasted");
    }
    tables.push(table);

    tables.push(listing(stack, channels[0].clone()).await?);
    Ok(tables)
}

fn usd(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "USD".into() })
}

/// A CreateOrder as the draft approval sends it: one to three lines, a customer, a reservation.
fn create_request(n: u64) -> pb::CreateOrderRequest {
    let key = format!("bench-draft-{}", Uuid::new_v4());
    let items = (0..1 + n % 3)
        .map(|line| pb::OrderItem {
            sku: format!("SKU-{:05}", (n * 7 + line * 131) % 1000),
            name: format!("Item {}", (n * 7 + line * 131) % 1000),
            unit_price: usd(1000 + ((n + line) % 40) as i64 * 125),
            quantity: 1 + ((n + line) % 3) as i64,
            line_total: None,
        })
        .collect();
    pb::CreateOrderRequest {
        idempotency_key: key.clone(),
        items,
        shipping: usd(500),
        customer: Some(pb::Customer {
            name: "Ada Obi".into(),
            phone_e164: format!("+23480{:08}", n % 100_000_000),
            channel: "whatsapp".into(),
            ..Default::default()
        }),
        reservation_reference: format!("draft:{key}:v1"),
        currency: "USD".into(),
        ..Default::default()
    }
}

fn write_rows(table: &mut Table, figure: &str, mut run: Run, target: f64) {
    table.rate_at_least(figure, run.rate(), target);
    table.latency("latency p50", run.latencies.percentile(50.0));
    table.latency("latency p99", run.latencies.percentile(99.0));
    table.zero("errors", run.errors + run.shortages);
    if run.errors > 0 {
        table.note(format!("errors: {}", run.error_summary()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// Every order confirmed and paid: the status-update benchmark's input.
    AllConfirmed,
    /// A shop's history: statuses, payments, sources, totals and names spread out over 90 days.
    Realistic,
}

/// Inserts `n` orders (with one to three lines each) for `tenant` straight into the order
/// service's tables, in one statement. Codes are `ORD-000001`... and unique per tenant; this
/// tenant gets no CreateOrder afterwards, so its code sequence is never needed.
async fn load_orders(admin: &PgPool, tenant: Uuid, n: i64, mix: Mix) -> anyhow::Result<()> {
    sqlx::query("SELECT setseed(0.42)").execute(admin).await?;
    sqlx::query(
        r#"
WITH src AS MATERIALIZED (
    SELECT i, gen_random_uuid() AS id, 1 + i % 3 AS lines,
           random() AS r_status, random() AS r_pay, random() AS r_source, random() AS r_age,
           random() AS r_first, random() AS r_last, random() AS r_ship
    FROM generate_series(1, $2::bigint) AS i
), shaped AS (
    SELECT src.*,
           'ORD-' || lpad(i::text, 6, '0') AS code,
           CASE WHEN $3 THEN 'confirmed'
                WHEN r_status < 0.12 THEN 'pending_payment'
                WHEN r_status < 0.22 THEN 'confirmed'
                WHEN r_status < 0.30 THEN 'processing'
                WHEN r_status < 0.40 THEN 'shipped'
                WHEN r_status < 0.85 THEN 'delivered'
                WHEN r_status < 0.88 THEN 'returned'
                ELSE 'cancelled' END AS status,
           CASE WHEN NOT $3 AND r_source < 0.2 THEN 'tiktok_shop' ELSE 'draft' END AS source,
           (ARRAY['Ada','Chinedu','Ngozi','Emeka','Fatima','Tunde','Amaka','Bola','Kemi','Ifeanyi',
                  'Zainab','Segun','Yemi','Obinna','Aisha','Femi','Funmi','Kelechi','Halima','Dayo',
                  'Grace','Samuel','Mary','John','Esther','David','Ruth','Peter','Joy','Daniel',
                  'Blessing','Michael','Precious','Victor','Favour','Paul','Mercy','Musa','Sade','Uche'])
               [1 + floor(r_first * 40)::int]
           || ' ' ||
           (ARRAY['Obi','Okafor','Adeyemi','Bello','Eze','Okonkwo','Balogun','Nwosu','Ibrahim','Afolabi',
                  'Okeke','Adebayo','Mohammed','Onyeka','Ogunleye','Chukwu','Danjuma','Olawale','Nnamdi','Usman',
                  'Mensah','Owusu','Boateng','Asante','Kamau','Otieno','Mwangi','Njoroge','Banda','Phiri',
                  'Dlamini','Nkosi','Khumalo','Mokoena','Diallo','Traore','Kone','Diop','Ndiaye','Sow'])
               [1 + floor(r_last * 40)::int] AS name,
           '+23480' || lpad((i * 7919 % 100000000)::text, 8, '0') AS phone,
           (SELECT sum((1 + (i + p) % 3) * (500 + ((i * 31 + p * 17) % 200) * 100))
            FROM generate_series(1, 1 + i % 3) AS p)::bigint AS subtotal,
           CASE WHEN r_ship < 0.5 THEN 0 WHEN r_ship < 0.8 THEN 500 ELSE 1500 END AS shipping,
           now() - r_age * interval '90 days' AS created_at
    FROM src
), orders_in AS (
    INSERT INTO orders.orders (id, tenant_id, code, status, payment_status, source, source_id,
        reservation_reference, currency, subtotal_minor, discount_minor, tax_minor, shipping_minor,
        total_minor, paid_minor, refunded_minor, customer, notes, search_text, version, created_at, updated_at)
    SELECT id, $1, code, status,
           CASE WHEN status = 'pending_payment' AND r_pay < 0.1 THEN 'failed'
                WHEN status = 'pending_payment' THEN 'pending'
                WHEN status = 'returned' THEN 'refunded'
                WHEN status = 'cancelled' AND r_pay < 0.5 THEN 'pending'
                WHEN status = 'cancelled' THEN 'refunded'
                ELSE 'paid' END,
           source,
           CASE WHEN source = 'draft' THEN gen_random_uuid()::text ELSE (576460752303423488 + i)::text END,
           CASE WHEN source = 'draft' THEN 'draft:' || id || ':v1' ELSE 'order:' || id END,
           'USD', subtotal, 0, 0, shipping, subtotal + shipping,
           CASE WHEN status IN ('pending_payment') OR (status = 'cancelled' AND r_pay < 0.5) THEN 0
                ELSE subtotal + shipping END,
           CASE WHEN status = 'returned' OR (status = 'cancelled' AND r_pay >= 0.5) THEN subtotal + shipping
                ELSE 0 END,
           jsonb_build_object('name', name, 'phone_e164', phone, 'email', NULL,
                              'channel', CASE WHEN source = 'tiktok_shop' THEN 'tiktok_shop' ELSE 'whatsapp' END,
                              'channel_customer_id', substr(phone, 2)),
           '', lower(code || ' ' || name || ' ' || phone), 1, created_at, created_at
    FROM shaped
    RETURNING 1
)
INSERT INTO orders.order_items (order_id, position, sku, name, unit_price_minor, quantity, line_total_minor)
SELECT id, p, 'SKU-' || lpad(((i * 31 + p * 17) % 1000)::text, 5, '0'), 'Item ' || ((i * 31 + p * 17) % 1000),
       500 + ((i * 31 + p * 17) % 200) * 100, 1 + (i + p) % 3,
       (1 + (i + p) % 3) * (500 + ((i * 31 + p * 17) % 200) * 100)
FROM src, generate_series(1, src.lines) AS p
"#,
    )
    .bind(tenant)
    .bind(n)
    .bind(mix == Mix::AllConfirmed)
    .execute(admin)
    .await?;
    // A shop's orders arrive over months and autovacuum keeps up with them; a bulk load of this
    // size sets off a one-off vacuum and analyze of the new rows. Run them now, so the calls
    // measured neither share the machine with that nor have plans that depend on when it ran.
    sqlx::query("VACUUM (ANALYZE) orders.orders").execute(admin).await?;
    sqlx::query("VACUUM (ANALYZE) orders.order_items").execute(admin).await?;
    Ok(())
}

/// ListOrders (one page of 50, each single filter) and OrderSummary on a 100,000-order tenant.
async fn listing(stack: &Stack, channel: Channel) -> anyhow::Result<Table> {
    let tenant = Uuid::new_v4();
    let loading = Instant::now();
    load_orders(&stack.admin, tenant, LISTED_ORDERS, Mix::Realistic).await?;
    let loaded_in = loading.elapsed();
    let viewer = Bearer::new(Some(tenant), testkit::Role::Viewer)?;
    let mut client = OrderServiceClient::new(channel);
    let day = 24 * 3600;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = |seconds: i64| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let filters: Vec<(&str, pb::OrderFilter)> = vec![
        ("no filter", pb::OrderFilter::default()),
        ("status = shipped", pb::OrderFilter { statuses: vec![pb::OrderStatus::Shipped as i32], ..Default::default() }),
        (
            "payment status = refunded",
            pb::OrderFilter { payment_statuses: vec![pb::PaymentStatus::Refunded as i32], ..Default::default() },
        ),
        ("source = tiktok_shop", pb::OrderFilter { source: pb::OrderSource::TiktokShop as i32, ..Default::default() }),
        (
            "created 30-23 days ago",
            pb::OrderFilter { created_from: at(now - 30 * day), created_to: at(now - 23 * day), ..Default::default() },
        ),
        ("search name \"okafor\"", pb::OrderFilter { search: "okafor".into(), ..Default::default() }),
        ("search full name \"kemi mensah\"", pb::OrderFilter { search: "kemi mensah".into(), ..Default::default() }),
    ];
    let mut table = Table::new(format!(
        "orders (c): ListOrders (page of 50, newest first) and OrderSummary, tenant with {} orders",
        thousands(LISTED_ORDERS as u64)
    ));
    let cpu = CpuReading::now();
    for (name, filter) in &filters {
        let mut latencies = Latencies::default();
        let mut shortest_page = usize::MAX;
        for _ in 0..CALLS_PER_FILTER {
            let started = Instant::now();
            let page = client
                .list_orders(viewer.request(pb::ListOrdersRequest {
                    filter: Some(filter.clone()),
                    sort: pb::SortBy::CreatedDesc as i32,
                    page_size: 50,
                    page_token: String::new(),
                }))
                .await?
                .into_inner();
            latencies.record(started.elapsed());
            shortest_page = shortest_page.min(page.orders.len());
        }
        table.latency(format!("ListOrders {name}: p50"), latencies.percentile(50.0));
        table.latency_under(
            format!("ListOrders {name}: p99 ({shortest_page} orders)"),
            latencies.percentile(99.0),
            20.0,
        );
    }
    for (name, filter) in [&filters[0], &filters[1], &filters[5]] {
        let mut latencies = Latencies::default();
        let mut count = 0;
        for _ in 0..50 {
            let started = Instant::now();
            count = client
                .order_summary(viewer.request(pb::OrderSummaryRequest { filter: Some(filter.clone()) }))
                .await?
                .into_inner()
                .count;
            latencies.record(started.elapsed());
        }
        table.latency(
            format!("OrderSummary {name} ({} orders): p50", thousands(count as u64)),
            latencies.percentile(50.0),
        );
        table.latency_under(format!("OrderSummary {name}: p99"), latencies.percentile(99.0), 100.0);
    }
    table.note(format!("CPU during the calls: {}", CpuReading::now().since(&cpu)));
    table.note(format!(
        "{} orders with 1-3 lines loaded by INSERT ... SELECT generate_series, vacuumed and analyzed in {}; {} calls per filter, \
         50 per summary, one at a time",
        thousands(LISTED_ORDERS as u64),
        ms(loaded_in),
        CALLS_PER_FILTER
    ));
    Ok(table)
}
