//! Generated protobuf messages and gRPC stubs, one module per `orderflow.<service>.v1` package.
//! Each module also carries the encoded descriptor set its server serves through reflection.

macro_rules! service_package {
    ($name:ident, $package:literal, $descriptor:literal) => {
        pub mod $name {
            /// This service's protos and their imports, for gRPC reflection.
            pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $descriptor));
            // Generated: a oneof holding a whole message (CreateOrdersResult's order) is large.
            #[allow(clippy::large_enum_variant)]
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

service_package!(ingest, "orderflow.ingest.v1", "ingest_descriptor.bin");
service_package!(draft, "orderflow.draft.v1", "draft_descriptor.bin");
service_package!(inventory, "orderflow.inventory.v1", "inventory_descriptor.bin");
service_package!(order, "orderflow.order.v1", "order_descriptor.bin");

pub mod common {
    pub mod v1 {
        tonic::include_proto!("orderflow.common.v1");

        /// The most entries a batch call (ReserveMany, CreateOrders) takes; more is INVALID_ARGUMENT.
        pub const MAX_BATCH_ENTRIES: usize = 256;

        impl EntryFailure {
            /// An entry's refusal, as the single call would have answered it.
            pub fn from_status(status: &tonic::Status) -> Self {
                Self { code: status.code() as i32, message: status.message().to_string() }
            }

            pub fn to_status(&self) -> tonic::Status {
                tonic::Status::new(tonic::Code::from_i32(self.code), self.message.clone())
            }
        }
    }
}

/// Services whose gRPC API is not written yet serve health and reflection only.
pub mod shipping {
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shipping_descriptor.bin"));
}
pub mod notifier {
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/notifier_descriptor.bin"));
}
