//! The inventory service binary: wiring only; everything lives in the library crate.

fn main() -> anyhow::Result<()> {
    service_runtime::run(inventory::IDENTITY, inventory::startup::build)
}
