//! The order service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(order::IDENTITY, order::startup::build)
}
