//! Generated protobuf messages and gRPC stubs, one module per `orderflow.<service>.v1` package.

/// The encoded `FileDescriptorSet` of every orderflow proto, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orderflow_descriptor.bin"));

pub mod ingest {
    pub mod v1 {
        tonic::include_proto!("orderflow.ingest.v1");
    }
}
