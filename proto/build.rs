//! Compiles `streamweaver/v1/*.proto` with `protox` (pure Rust, so no system `protoc`), then
//! generates prost types, tonic services and pbjson (proto3 JSON mapping) serde impls from the
//! same descriptors, and keeps the descriptor set for server reflection.

use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "streamweaver/v1/events.proto",
    "streamweaver/v1/ingest.proto",
    "streamweaver/v1/stream.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }

    let descriptors = protox::compile(PROTOS, [&root])?;
    let descriptor_bytes = descriptors.encode_to_vec();
    std::fs::write(out.join("streamweaver_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        // pbjson_types: the well-known types with proto3 JSON serde impls.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".streamweaver"])?;
    Ok(())
}
