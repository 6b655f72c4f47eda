//! The draft service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(draft::IDENTITY, draft::startup::build)
}
