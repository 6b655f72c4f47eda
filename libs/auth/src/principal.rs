//! The authenticated caller and the role rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// Tenant roles rank viewer < agent < manager < admin. `Service` is another orderflow service acting
/// for the tenant in its token; `Operator` runs the platform and belongs to no tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Agent,
    Manager,
    Admin,
    Service,
    Operator,
}

impl Role {
    fn tenant_rank(self) -> Option<u8> {
        match self {
            Role::Viewer => Some(0),
            Role::Agent => Some(1),
            Role::Manager => Some(2),
            Role::Admin => Some(3),
            Role::Service | Role::Operator => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Service => "service",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            "manager" => Ok(Role::Manager),
            "admin" => Ok(Role::Admin),
            "service" => Ok(Role::Service),
            "operator" => Ok(Role::Operator),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// The caller of a gRPC method, as proven by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (or, for the service role, the calling service).
    pub subject: String,
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    /// For the service role: the user whose call the service is serving, when there is one.
    pub on_behalf_of: Option<String>,
}

impl Principal {
    /// The tenant to act on, for a tenant user at least `min` or a service.
    pub fn tenant_with(&self, min: Role) -> Result<Uuid, Error> {
        let needed = min.as_str();
        let allowed = match (self.role.tenant_rank(), min.tenant_rank()) {
            (Some(actual), Some(required)) => actual >= required,
            // A service acts for the tenant up to agent level (reserve, create, approve); what a
            // manager or admin decides (cancel, restock, settings) needs a person.
            (None, Some(required)) => self.role == Role::Service && required <= Role::Agent.tenant_rank().unwrap_or(1),
            (None, None) => false,
            (Some(_), None) => false,
        };
        if !allowed {
            return Err(Error::RoleTooWeak { actual: self.role, needed });
        }
        self.tenant_id.ok_or(Error::NoTenant)
    }

    /// Reading tenant data: viewer and up, or a service.
    pub fn reader(&self) -> Result<Uuid, Error> {
        self.tenant_with(Role::Viewer)
    }

    /// Changing tenant data: agent and up, or a service.
    pub fn writer(&self) -> Result<Uuid, Error> {
        self.tenant_with(Role::Agent)
    }

    /// Only another orderflow service (e.g. CreateOrder from the draft approval).
    pub fn service(&self) -> Result<Uuid, Error> {
        match self.role {
            Role::Service => self.tenant_id.ok_or(Error::NoTenant),
            actual => Err(Error::RoleTooWeak { actual, needed: "service" }),
        }
    }

    /// Platform-wide operations (the channel registry).
    pub fn operator(&self) -> Result<(), Error> {
        match self.role {
            Role::Operator => Ok(()),
            actual => Err(Error::RoleTooWeak { actual, needed: "operator" }),
        }
    }

    /// A service's principal for one entry of a batch call, serving `user` (empty: nobody).
    /// Only a service may name the user per entry; for anyone else it is an error.
    pub fn for_entry(&self, user: &str) -> Result<Principal, Error> {
        self.service()?;
        let user = user.trim();
        Ok(Principal { on_behalf_of: (!user.is_empty()).then(|| user.to_string()), ..self.clone() })
    }

    /// The actor recorded in history rows: the user, and the service when one acted for them.
    pub fn actor(&self) -> (Option<&str>, Option<&str>) {
        match self.role {
            Role::Service => (self.on_behalf_of.as_deref(), Some(self.subject.as_str())),
            _ => (Some(self.subject.as_str()), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal { subject: "u".into(), tenant_id: Some(Uuid::nil()), role, on_behalf_of: None }
    }

    #[test]
    fn role_table() {
        use Role::*;
        // (caller, required, allowed)
        let table = [
            (Viewer, Viewer, true),
            (Viewer, Agent, false),
            (Agent, Agent, true),
            (Agent, Manager, false),
            (Manager, Agent, true),
            (Admin, Manager, true),
            (Admin, Admin, true),
            (Manager, Admin, false),
            (Service, Agent, true),
            (Service, Manager, false),
            (Service, Admin, false),
            (Operator, Viewer, false),
        ];
        for (caller, required, allowed) in table {
            assert_eq!(principal(caller).tenant_with(required).is_ok(), allowed, "{caller} needing {required}");
        }
    }

    #[test]
    fn service_and_operator_are_exact() {
        assert!(principal(Role::Admin).service().is_err());
        assert!(principal(Role::Service).service().is_ok());
        assert!(principal(Role::Admin).operator().is_err());
        assert!(principal(Role::Operator).operator().is_ok());
    }

    #[test]
    fn only_a_service_names_the_user_of_a_batch_entry() {
        assert!(principal(Role::Admin).for_entry("mallory").is_err());
        let entry = principal(Role::Service).for_entry(" alice ").unwrap();
        assert_eq!(entry.actor(), (Some("alice"), Some("u")));
        assert_eq!(principal(Role::Service).for_entry("").unwrap().actor(), (None, Some("u")));
    }

    #[test]
    fn tenant_role_without_tenant_is_refused() {
        let mut p = principal(Role::Admin);
        p.tenant_id = None;
        assert_eq!(p.reader(), Err(Error::NoTenant));
    }
}
