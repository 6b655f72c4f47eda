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

        /// A batch call's entries, each checked as the single call would check it: the valid ones
        /// go to `commit` together, in order, and each invalid one keeps its refusal. One answer
        /// per entry, in the entries' order.
        pub async fn answer_entries<T, U, F, Fut>(
            checked: Vec<Result<T, tonic::Status>>,
            commit: F,
        ) -> Vec<Result<U, tonic::Status>>
        where
            F: FnOnce(Vec<T>) -> Fut,
            Fut: std::future::Future<Output = Vec<Result<U, tonic::Status>>>,
        {
            let mut valid = Vec::with_capacity(checked.len());
            let mut refusals = Vec::with_capacity(checked.len());
            for entry in checked {
                match entry {
                    Ok(job) => {
                        valid.push(job);
                        refusals.push(None);
                    }
                    Err(status) => refusals.push(Some(status)),
                }
            }
            let mut committed = commit(valid).await.into_iter();
            refusals
                .into_iter()
                .map(|refusal| match refusal {
                    Some(status) => Err(status),
                    None => committed
                        .next()
                        .unwrap_or_else(|| Err(tonic::Status::internal("a batch entry was left without an answer"))),
                })
                .collect()
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[tokio::test]
            async fn valid_entries_are_committed_together_and_every_entry_is_answered_in_place() {
                let checked = vec![Ok(1), Err(tonic::Status::invalid_argument("bad")), Ok(3), Ok(4)];
                let mut seen = Vec::new();
                let answers = answer_entries(checked, |valid: Vec<i32>| {
                    seen = valid.clone();
                    async move { valid.into_iter().map(|v| Ok(v * 10)).collect() }
                })
                .await;
                assert_eq!(seen, [1, 3, 4], "one commit, the valid entries in order");
                let answers: Vec<Result<i32, tonic::Code>> =
                    answers.into_iter().map(|a| a.map_err(|s| s.code())).collect();
                assert_eq!(answers, [Ok(10), Err(tonic::Code::InvalidArgument), Ok(30), Ok(40)]);
            }

            #[tokio::test]
            async fn a_commit_that_answers_too_few_leaves_no_entry_unanswered() {
                let answers = answer_entries(vec![Ok::<i32, tonic::Status>(1), Ok(2)], |_valid: Vec<i32>| async {
                    vec![Ok::<i32, tonic::Status>(7)]
                })
                .await;
                assert_eq!(answers[0].as_ref().ok(), Some(&7));
                assert_eq!(answers[1].as_ref().map_err(|s| s.code()).err(), Some(tonic::Code::Internal));
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
