//! The ingest service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(ingest::IDENTITY, ingest::startup::build)
}
