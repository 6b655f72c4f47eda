//! `orderflow-bench`: throughput and latency of the services, measured in this process.
//!
//! Every scenario starts the services it needs in-process (`startup::build`, as the tests do)
//! against the real Postgres and NATS on this machine, each run on a fresh test database and bus
//! namespace (`testkit::TestEnv`), which it drops when it is done. The load generator runs in the
//! same process: client and services share the machine's cores (two here), so every figure is
//! what the services achieve while a client takes its share of the CPU. The bench prints
//! figures; it asserts nothing.
//!
//! ```text
//! orderflow-bench <ingest|reserve|orders|approve|pipeline|all> [--rate N] [--seconds S]
//!                 [--concurrency C] [--client raw|reqwest] [--without-spans]
//! ```

mod approve;
mod catalog;
mod drive;
mod figures;
mod ingest;
mod orders;
mod pipeline;
mod reserve;
mod stack;
mod webhook;

use std::time::{Duration, Instant};

use figures::Table;
use webhook::ClientKind;

const USAGE: &str = "\
usage: orderflow-bench <scenario> [--rate N] [--seconds S] [--concurrency C] [--client raw|reqwest]
                       [--without-spans]

scenarios:
  ingest     signed WhatsApp webhooks into ingest: max throughput with C connections (default 64),
             then latency at a fixed rate (--rate, default 2,000/s, open loop)
  reserve    inventory Reserve over 1,000 SKUs (C callers, default 64) and on one hot SKU (64 callers);
             catalog search on 10,000 SKUs
  orders     CreateOrder and UpdateOrderStatus (C callers, default 32); ListOrders and
             OrderSummary on a tenant with 100,000 orders
  approve    ApproveDraft across many SKUs: C callers (default 32), then offered at --rate (default
             1,000/s, open loop); then 64 approvers on drafts sharing one hot SKU
  pipeline   webhook -> draft end to end at --rate (default 1,000/s), then at 2,000/s offered
  all        every scenario in turn, 4 s windows unless --seconds is given

By default the services run under their production subscriber (telemetry::init: JSON logs at
the default level, formatted into a sink here; the OpenTelemetry layer only when
OTEL_EXPORTER_OTLP_ENDPOINT is set, so setting it measures the cost of exporting spans).
--without-spans installs no subscriber at all: spans and logs cost nothing.

--seconds is each measured window (default 10; a 1 s warm-up comes first and is not measured).
Services run with their production settings; their environment variables (e.g. INGEST_MAX_BATCH,
ORDERFLOW_DB_MAX_CONNECTIONS) are read from the bench's environment.";

/// The command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub rate: Option<f64>,
    pub seconds: Option<f64>,
    pub concurrency: Option<usize>,
    pub client: ClientKind,
    /// No tracing subscriber at all (spans are no-ops), instead of the test subscriber.
    pub without_spans: bool,
    /// Shorter default windows (`all`).
    pub short: bool,
}

impl Options {
    /// A 1 s warm-up, then the measured window (`--seconds`, else `default` or 4 s in `all`).
    pub fn window(&self, default: f64) -> drive::Window {
        let seconds = self.seconds.unwrap_or(if self.short { 4.0 } else { default });
        drive::Window { warmup: Duration::from_secs(1), measure: Duration::from_secs_f64(seconds.max(0.5)) }
    }
}

fn parse(args: &[String]) -> Result<(String, Options), String> {
    let mut scenario = None;
    let mut options = Options {
        rate: None,
        seconds: None,
        concurrency: None,
        client: ClientKind::Raw,
        without_spans: false,
        short: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value")).cloned();
        match arg.as_str() {
            "--rate" => options.rate = Some(value("--rate")?.parse().map_err(|_| "--rate takes a number")?),
            "--seconds" => options.seconds = Some(value("--seconds")?.parse().map_err(|_| "--seconds takes a number")?),
            "--concurrency" => {
                options.concurrency = Some(value("--concurrency")?.parse().map_err(|_| "--concurrency takes a number")?)
            }
            "--client" => {
                options.client = ClientKind::parse(&value("--client")?).ok_or("--client is raw or reqwest")?;
            }
            "--without-spans" => options.without_spans = true,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other if scenario.is_none() => scenario = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let scenario = scenario.ok_or("which scenario?")?;
    Ok((scenario, options))
}

async fn run_scenario(name: &str, options: &Options) -> anyhow::Result<Vec<Table>> {
    match name {
        "ingest" => ingest::run(options).await,
        "reserve" => reserve::run(options).await,
        "orders" => orders::run(options).await,
        "approve" => approve::run(options).await,
        "pipeline" => pipeline::run(options).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

async fn machine_header(options: &Options) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let before = figures::CpuReading::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = figures::CpuReading::now().since(&before);
    let postgres = match stack::admin_pool("postgres", 1).await {
        Ok(pool) => {
            let settings: Result<Vec<(String, String)>, _> = sqlx::query_as(
                "SELECT name, setting FROM pg_settings
                 WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections') ORDER BY name",
            )
            .fetch_all(&pool)
            .await;
            // Leftover test databases are not idle for Postgres: the autovacuum launcher divides
            // its naptime among all databases and starts a worker in each in turn.
            let others: Result<i64, _> = sqlx::query_scalar(
                "SELECT count(*) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')",
            )
            .fetch_one(&pool)
            .await;
            pool.close().await;
            let settings = settings
                .map(|s| s.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            match others {
                Ok(0) | Err(_) => settings,
                Ok(n) => format!(
                    "{settings}; {n} other database(s) in the cluster, which autovacuum visits in turn: \
                     drop leftover test databases for comparable figures (README, Benchmarks)"
                ),
            }
        }
        Err(err) => format!("unreachable: {err}"),
    };
    println!("orderflow-bench: {cores} cores; the load generator and the services share them (one process)");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  before starting (1 s): {idle}; load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("  Postgres: {postgres}");
    println!("  kernel writeback: {}", kernel_writeback());
    println!("  webhook client: {}", options.client.describe());
    println!(
        "  tracing: {}",
        if options.without_spans {
            "no subscriber (--without-spans): spans are no-ops"
        } else {
            "the services' own subscriber (JSON logs at their default level, formatted into a sink; \
             OpenTelemetry spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set, as in production)"
        }
    );
}

/// How much dirty page cache Linux lets build up before it starts writing back. With the default
/// ratio (10% of memory) nothing is written until pages are 30 s old, and then a table file's
/// pages go out at once: bursts of up to 127 MB that held every WAL flush queued behind them on
/// the development machine's disk (README, Benchmarks).
fn kernel_writeback() -> String {
    let read = |name: &str| std::fs::read_to_string(format!("/proc/sys/vm/{name}")).ok();
    describe_writeback(
        read("dirty_background_bytes").as_deref(),
        read("dirty_background_ratio").as_deref(),
        read("dirty_expire_centisecs").as_deref(),
    )
}

/// [`kernel_writeback`]'s line from the three `/proc/sys/vm` values (None: unreadable). A non-zero
/// `dirty_background_bytes` overrides the ratio, as in the kernel.
fn describe_writeback(bytes: Option<&str>, ratio: Option<&str>, expire: Option<&str>) -> String {
    let expire = expire.map_or("?", str::trim);
    match (bytes.map(str::trim), ratio.map(str::trim)) {
        (Some(bytes), _) if bytes != "0" => {
            let mib = bytes.parse::<u64>().unwrap_or(0) / (1024 * 1024);
            let mode = if mib <= 64 { "written back steadily" } else { "large enough for bursts that stall commits" };
            format!("vm.dirty_background_bytes={bytes} ({mib} MiB), vm.dirty_expire_centisecs={expire}: {mode}")
        }
        (Some(_), Some(ratio)) => format!(
            "vm.dirty_background_ratio={ratio}%, vm.dirty_expire_centisecs={expire}: dirty pages wait until \
             they expire and go out in bursts that stall commits; set vm.dirty_background_bytes as on a \
             database host (RUNBOOK, Slow writes)"
        ),
        _ => "unknown (no /proc/sys/vm)".to_string(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario, mut options) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}\n");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    // Installed first, so testkit's own (try_init) subscriber is not. The guard lives to the end.
    let _telemetry = if options.without_spans {
        let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
        None
    } else {
        // ORDERFLOW_BENCH_LOG=path keeps the services' log lines (e.g. an approval's step timings).
        let installed = match std::env::var("ORDERFLOW_BENCH_LOG")
            .ok()
            .and_then(|path| std::fs::File::create(path).ok())
        {
            Some(file) => {
                telemetry::init_with_writer("orderflow-bench", telemetry::LogFormat::Json, std::sync::Mutex::new(file))
            }
            None => telemetry::init_with_writer("orderflow-bench", telemetry::LogFormat::Json, std::io::sink),
        };
        installed.map_err(|err| eprintln!("orderflow-bench: {err}")).ok()
    };
    testkit::init_logs();
    machine_header(&options).await;
    let scenarios: Vec<&str> = match scenario.as_str() {
        "all" => {
            options.short = true;
            vec!["ingest", "reserve", "orders", "approve", "pipeline"]
        }
        one => vec![one],
    };
    let mut summary = Vec::new();
    let mut failed = false;
    for name in scenarios {
        let started = Instant::now();
        println!("\n# {name}");
        match run_scenario(name, &options).await {
            Ok(tables) => {
                for table in &tables {
                    table.print();
                }
                println!("\n  ({name} took {:.1} s, setup included)", started.elapsed().as_secs_f64());
                summary.extend(tables);
            }
            Err(err) => {
                failed = true;
                eprintln!("\n{name} failed: {err:#}");
            }
        }
    }
    if summary.len() > 1 {
        println!("\n== summary ==");
        for table in &summary {
            let (met, missed) = table.tally();
            println!("  {:<100} {met} met, {missed} not met", table.title());
            for miss in table.misses() {
                println!("      not met: {miss}");
            }
        }
    }
    if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}

#[cfg(test)]
mod tests {
    use super::describe_writeback;

    #[test]
    fn a_small_byte_cap_is_steady_writeback() {
        let line = describe_writeback(Some("16777216\n"), Some("0\n"), Some("3000\n"));
        assert_eq!(
            line,
            "vm.dirty_background_bytes=16777216 (16 MiB), vm.dirty_expire_centisecs=3000: written back steadily"
        );
    }

    #[test]
    fn a_large_byte_cap_still_warns_of_bursts() {
        let line = describe_writeback(Some("2147483648"), Some("0"), Some("3000"));
        assert!(line.starts_with("vm.dirty_background_bytes=2147483648 (2048 MiB)"), "{line}");
        assert!(line.ends_with("large enough for bursts that stall commits"), "{line}");
    }

    #[test]
    fn the_default_ratio_points_to_the_runbook() {
        let line = describe_writeback(Some("0"), Some("10"), Some("3000"));
        assert!(line.starts_with("vm.dirty_background_ratio=10%, vm.dirty_expire_centisecs=3000:"), "{line}");
        assert!(line.contains("set vm.dirty_background_bytes") && line.contains("RUNBOOK"), "{line}");
    }

    #[test]
    fn no_proc_sys_vm_says_unknown() {
        assert_eq!(describe_writeback(None, None, None), "unknown (no /proc/sys/vm)");
    }
}
