//! Mints development tokens: `orderflow-token --tenant <uuid> --role admin [--sub NAME] [--ttl-hours N]`.

use std::process::ExitCode;
use std::time::Duration;

use auth::{JwtKeys, Role};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!(
                "orderflow-token: {message}\nusage: orderflow-token --role ROLE [--tenant UUID] [--sub NAME] [--ttl-hours N]"
            );
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut tenant = None;
    let mut role = None;
    let mut sub = "dev".to_string();
    let mut ttl_hours: u64 = 12;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tenant" => tenant = Some(value.parse::<uuid::Uuid>().map_err(|e| format!("--tenant: {e}"))?),
            "--role" => role = Some(value.parse::<Role>()?),
            "--sub" => sub = value,
            "--ttl-hours" => ttl_hours = value.parse().map_err(|e| format!("--ttl-hours: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let role = role.ok_or("--role is required")?;
    if role != Role::Operator && tenant.is_none() {
        return Err(format!("--tenant is required for role {role}"));
    }
    let env = settings::Env::from_process().map_err(|e| e.to_string())?;
    let secret = env.secret(auth::JWT_SECRET_VAR, auth::DEV_JWT_SECRET).map_err(|e| e.to_string())?;
    let keys = JwtKeys::new(secret.expose().as_bytes());
    Ok(keys.mint(&sub, tenant, role, Duration::from_secs(ttl_hours * 3600)))
}
