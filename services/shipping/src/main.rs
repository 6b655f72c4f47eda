//! The shipping service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(shipping::IDENTITY, shipping::startup::build)
}
