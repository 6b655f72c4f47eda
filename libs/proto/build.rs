//! Compiles every `.proto` under `/proto` with protox (pure Rust), so a fresh machine needs only cargo.

use std::path::{Path, PathBuf};

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

const SERVICES: &[&str] = &["ingest", "draft", "order", "inventory", "shipping", "notifier"];

fn add_with_dependencies(set: &prost_types::FileDescriptorSet, name: &str, out: &mut Vec<String>) {
    if out.iter().any(|n| n == name) {
        return;
    }
    out.push(name.to_string());
    if let Some(file) = set.file.iter().find(|f| f.name() == name) {
        for dependency in &file.dependency {
            add_with_dependencies(set, dependency, out);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Each service's reflection serves its own package (and what it imports), so grpcurl and
    // grpcio need no .proto files and see only the APIs that server really has.
    for service in SERVICES {
        let package = format!("orderflow.{service}.");
        let own = descriptors.file.iter().filter(|f| f.package().starts_with(&package));
        let mut names: Vec<String> = Vec::new();
        for file in own {
            add_with_dependencies(&descriptors, file.name(), &mut names);
        }
        let set = prost_types::FileDescriptorSet {
            file: descriptors.file.iter().filter(|f| names.iter().any(|n| n == f.name())).cloned().collect(),
        };
        std::fs::write(out_dir.join(format!("{service}_descriptor.bin")), prost::Message::encode_to_vec(&set))?;
    }
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
