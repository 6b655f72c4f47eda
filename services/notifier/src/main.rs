//! The notifier service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(notifier::IDENTITY, notifier::startup::build)
}
