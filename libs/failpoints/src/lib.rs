//! Named fail points: places in the code where a test can make the process stop, to show that a
//! crash at exactly that step loses nothing and duplicates nothing.
//!
//! Armed from the environment when a real binary is spawned
//! (`ORDERFLOW_FAILPOINTS="draft.approve.after_reserve=exit"`) or in-process with [`arm`]. A
//! disarmed point costs one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Exit the process at once, as a kill would (no destructors, no flushing).
    Exit,
    /// Panic the current task (in-process tests).
    Panic,
}

static ANY_ARMED: AtomicBool = AtomicBool::new(false);

fn registry() -> &'static Mutex<HashMap<String, Action>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Action>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut points = HashMap::new();
        if let Ok(spec) = std::env::var("ORDERFLOW_FAILPOINTS") {
            for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
                let (name, action) = item.split_once('=').unwrap_or((item, "exit"));
                let action = if action.trim() == "panic" { Action::Panic } else { Action::Exit };
                points.insert(name.trim().to_string(), action);
            }
        }
        if !points.is_empty() {
            ANY_ARMED.store(true, Ordering::Relaxed);
        }
        Mutex::new(points)
    })
}

/// Reads `ORDERFLOW_FAILPOINTS`; call once at start-up so [`hit`] sees it.
pub fn init_from_env() {
    let _ = registry();
}

/// Arms a point in this process.
pub fn arm(name: &str, action: Action) {
    registry().lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), action);
    ANY_ARMED.store(true, Ordering::Relaxed);
}

pub fn disarm(name: &str) {
    registry().lock().unwrap_or_else(|p| p.into_inner()).remove(name);
}

/// Whether any point is armed: lets hot paths skip building a point's name.
pub fn any_armed() -> bool {
    ANY_ARMED.load(Ordering::Relaxed)
}

/// Stops the process or task here if the point `name` is armed.
pub fn hit(name: &str) {
    if !ANY_ARMED.load(Ordering::Relaxed) {
        return;
    }
    let action = registry().lock().unwrap_or_else(|p| p.into_inner()).get(name).copied();
    match action {
        None => {}
        Some(Action::Exit) => {
            eprintln!("failpoint {name}: exiting");
            std::process::exit(137);
        }
        Some(Action::Panic) => panic!("failpoint {name}"),
    }
}
