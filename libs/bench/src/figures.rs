//! Latency samples, percentiles, CPU shares and the result tables the bench prints.

use std::collections::BTreeMap;
use std::time::Duration;

/// Latency samples in microseconds; percentiles by nearest rank.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.micros.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0-100), or `None` without samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.micros.is_empty() {
            return None;
        }
        self.sort();
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        Some(Duration::from_micros(self.micros[index]))
    }

    pub fn max(&mut self) -> Option<Duration> {
        self.percentile(100.0)
    }
}

pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

fn ms_opt(duration: Option<Duration>) -> String {
    duration.map(ms).unwrap_or_else(|| "n/a".to_string())
}

pub fn per_second(rate: f64) -> String {
    format!("{}/s", thousands(rate.round() as u64))
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    NotMet,
    Info,
}

#[derive(Debug, Clone)]
struct Row {
    figure: String,
    value: String,
    target: String,
    verdict: Verdict,
}

/// One scenario's results: figure, value, target, met or not.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), rows: Vec::new(), notes: Vec::new() }
    }

    fn push(&mut self, figure: impl Into<String>, value: String, target: String, verdict: Verdict) {
        self.rows.push(Row { figure: figure.into(), value, target, verdict });
    }

    /// A figure without a target.
    pub fn info(&mut self, figure: impl Into<String>, value: impl Into<String>) {
        self.push(figure, value.into(), String::new(), Verdict::Info);
    }

    /// A rate that should reach `target` per second.
    pub fn rate_at_least(&mut self, figure: impl Into<String>, rate: f64, target: f64) {
        let verdict = if rate >= target { Verdict::Met } else { Verdict::NotMet };
        self.push(figure, per_second(rate), format!(">= {}", per_second(target)), verdict);
    }

    /// A latency that should stay under `target_ms`.
    pub fn latency_under(&mut self, figure: impl Into<String>, latency: Option<Duration>, target_ms: f64) {
        let verdict = match latency {
            Some(l) if l.as_secs_f64() * 1000.0 < target_ms => Verdict::Met,
            _ => Verdict::NotMet,
        };
        self.push(figure, ms_opt(latency), format!("< {target_ms} ms"), verdict);
    }

    pub fn latency(&mut self, figure: impl Into<String>, latency: Option<Duration>) {
        self.info(figure, ms_opt(latency));
    }

    /// A count that should be zero (errors, lost messages).
    pub fn zero(&mut self, figure: impl Into<String>, count: u64) {
        let verdict = if count == 0 { Verdict::Met } else { Verdict::NotMet };
        self.push(figure, thousands(count), "0".to_string(), verdict);
    }

    /// A yes/no check.
    pub fn check(&mut self, figure: impl Into<String>, value: impl Into<String>, ok: bool) {
        self.push(figure, value.into(), "holds".to_string(), if ok { Verdict::Met } else { Verdict::NotMet });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// `(met, not met)` among the rows with a target.
    pub fn tally(&self) -> (usize, usize) {
        let met = self.rows.iter().filter(|r| r.verdict == Verdict::Met).count();
        let missed = self.rows.iter().filter(|r| r.verdict == Verdict::NotMet).count();
        (met, missed)
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// The rows that missed their target, as `figure: value (target)`.
    pub fn misses(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::NotMet)
            .map(|r| format!("{}: {} (target {})", r.figure, r.value, r.target))
            .collect()
    }

    pub fn print(&self) {
        let headers = ["figure", "value", "target", "result"];
        let verdict = |v: Verdict| match v {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT MET",
            Verdict::Info => "",
        };
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| [r.figure.clone(), r.value.clone(), r.target.clone(), verdict(r.verdict).to_string()])
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |row: [&str; 4]| {
            format!(
                "  {:<w0$} | {:>w1$} | {:<w2$} | {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        };
        println!();
        println!("== {} ==", self.title);
        println!("{}", line(headers));
        println!("  {}", "-".repeat(widths.iter().sum::<usize>() + 3 * 3 + widths[3].max(7) - widths[3]));
        for row in &cells {
            println!("{}", line([&row[0], &row[1], &row[2], &row[3]]));
        }
        for note in &self.notes {
            println!("  * {note}");
        }
    }
}

/// CPU time of this process, of Postgres, of nats-server and of the whole machine between two
/// readings of `/proc`, as shares of all cores. Client and servers share this process, so its
/// share is the bench and the services together.
#[derive(Debug, Clone)]
pub struct CpuReading {
    machine_total: u64,
    machine_idle: u64,
    machine_softirq: u64,
    by_name: BTreeMap<&'static str, u64>,
    this_process: u64,
}

const WATCHED: &[&str] = &["postgres", "nats-server"];

fn proc_ticks(stat: &str) -> Option<(String, u64)> {
    // `pid (comm) state ... utime stime ...`: comm may hold spaces, so split after the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After the comm: state is field 3 of the full line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

impl CpuReading {
    pub fn now() -> Self {
        let mut machine_total = 0;
        let mut machine_idle = 0;
        let mut machine_softirq = 0;
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().next()
        {
            let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest time is already in user).
            machine_total = values.iter().take(8).sum();
            machine_idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
            machine_softirq = values.get(6).copied().unwrap_or(0);
        }
        let mut by_name: BTreeMap<&'static str, u64> = WATCHED.iter().map(|n| (*n, 0)).collect();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
                if let Some((comm, ticks)) = proc_ticks(&stat)
                    && let Some(watched) = WATCHED.iter().find(|w| **w == comm)
                {
                    *by_name.entry(watched).or_default() += ticks;
                }
            }
        }
        let this_process =
            std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| proc_ticks(&s)).map(|(_, t)| t).unwrap_or(0);
        Self { machine_total, machine_idle, machine_softirq, by_name, this_process }
    }

    /// "this process 60%, nats-server 17%, postgres 74%, softirq 12%, other 20%; busy 183% of
    /// 200%" since `earlier`. "other" is everything else: kernel threads (fsync, block I/O) and any
    /// other process on the machine, such as someone else's build.
    pub fn since(&self, earlier: &CpuReading) -> String {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let total = self.machine_total.saturating_sub(earlier.machine_total).max(1);
        let percent = |ticks: u64| ticks as f64 / total as f64 * cores * 100.0;
        let idle = self.machine_idle.saturating_sub(earlier.machine_idle);
        let busy = percent(total.saturating_sub(idle));
        let this = percent(self.this_process.saturating_sub(earlier.this_process));
        let softirq = percent(self.machine_softirq.saturating_sub(earlier.machine_softirq));
        let mut accounted = this + softirq;
        let mut parts = vec![format!("this process {this:.0}%")];
        for (name, ticks) in &self.by_name {
            // Processes that exited in between make a difference negative; saturate to zero.
            let share = percent(ticks.saturating_sub(*earlier.by_name.get(name).unwrap_or(&0)));
            accounted += share;
            parts.push(format!("{name} {share:.0}%"));
        }
        parts.push(format!("softirq {softirq:.0}%"));
        parts.push(format!("other {:.0}%", (busy - accounted).max(0.0)));
        format!("{}; machine busy {busy:.0}% of {:.0}%", parts.join(", "), cores * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(latencies.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(latencies.max(), Some(Duration::from_millis(100)));
        assert_eq!(Latencies::default().percentile(50.0), None);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn proc_stat_lines_with_spaces_in_the_name_parse() {
        let line = "42 (postgres: wal writer) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15";
        assert_eq!(proc_ticks(line), Some(("postgres: wal writer".to_string(), 11 + 12)));
    }
}
