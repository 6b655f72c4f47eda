//! Human order codes (`ORD-000042`): one Postgres sequence per tenant, so codes increase per
//! tenant, are never reused, and cost no lock (a rolled-back order leaves a gap, which is fine).

use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::PgPool;
use uuid::Uuid;

use super::DbError;

#[derive(Default)]
pub struct OrderCodes {
    known: Mutex<HashSet<Uuid>>,
}

fn sequence_name(tenant_id: Uuid) -> String {
    format!("order_code_{}", tenant_id.simple())
}

pub fn format_code(number: i64) -> String {
    format!("ORD-{number:06}")
}

impl OrderCodes {
    pub async fn next(&self, pool: &PgPool, tenant_id: Uuid) -> Result<String, DbError> {
        let name = sequence_name(tenant_id);
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).contains(&tenant_id);
        if !known {
            // Concurrent creators of a tenant's first order may race on CREATE; the loser's
            // "already exists" is fine.
            match sqlx::query(&format!("CREATE SEQUENCE IF NOT EXISTS {name}")).execute(pool).await {
                Ok(_) => {}
                Err(err) if db::classify(&err) == db::DbErrorKind::UniqueViolation => {}
                Err(err) => return Err(err.into()),
            }
            self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant_id);
        }
        let number: i64 = sqlx::query_scalar(&format!("SELECT nextval('{name}')")).fetch_one(pool).await?;
        Ok(format_code(number))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_zero_padded() {
        assert_eq!(super::format_code(42), "ORD-000042");
        assert_eq!(super::format_code(1_234_567), "ORD-1234567");
    }
}
