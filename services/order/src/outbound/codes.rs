//! Human order codes (`ORD-000042`): one Postgres sequence per tenant, so codes increase per
//! tenant, are never reused, and cost no lock (a rolled-back order leaves a gap, which is fine).

use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::{PgConnection, PgPool};
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
    /// Creates the tenant's sequence unless this process already knows it exists. On the pool,
    /// not in a transaction: a concurrent creator's "already exists" must not abort one.
    pub async fn ensure(&self, pool: &PgPool, tenant_id: Uuid) -> Result<(), DbError> {
        if self.known.lock().unwrap_or_else(|p| p.into_inner()).contains(&tenant_id) {
            return Ok(());
        }
        // Concurrent creators of a tenant's first order may race on CREATE; the loser's
        // "already exists" is fine.
        match sqlx::query(&format!("CREATE SEQUENCE IF NOT EXISTS {}", sequence_name(tenant_id))).execute(pool).await {
            Ok(_) => {}
            Err(err) if db::classify(&err) == db::DbErrorKind::UniqueViolation => {}
            Err(err) => return Err(err.into()),
        }
        self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant_id);
        Ok(())
    }

    /// The next code of one tenant.
    pub async fn next(&self, pool: &PgPool, tenant_id: Uuid) -> Result<String, DbError> {
        self.ensure(pool, tenant_id).await?;
        let mut conn = pool.acquire().await?;
        let mut codes = Self::take(&mut conn, &[tenant_id]).await?;
        codes.pop().ok_or_else(|| DbError::Internal("no order code".into()))
    }

    /// One code per entry of `tenants` (a tenant may repeat), in one round trip; every
    /// tenant's sequence must exist (`ensure`). Sequences are not transactional: a code taken
    /// inside a transaction that rolls back is a gap.
    pub async fn take(conn: &mut PgConnection, tenants: &[Uuid]) -> Result<Vec<String>, DbError> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = tenants.iter().map(|t| sequence_name(*t)).collect();
        let numbers: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(s.name::regclass) FROM UNNEST($1::text[]) WITH ORDINALITY AS s(name, n) ORDER BY s.n",
        )
        .bind(&names)
        .fetch_all(conn)
        .await?;
        Ok(numbers.into_iter().map(format_code).collect())
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
