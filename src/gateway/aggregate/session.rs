//! The sessions of an aggregated route: the gateway's own `Mcp-Session-Id`
//! for the client, each mapped to the sessions it holds with the members
//! (opened at `initialize`, or on first use for a member that was down then),
//! the names it has shown the client, and the requests in flight (so a
//! cancellation reaches the member serving it).
//!
//! A client of the stateless revision has no session: its requests share one
//! per user and client, so members that still need a session get one.
//!
//! Sessions live in this replica's memory: a route served by several
//! replicas needs session affinity (as any stateful MCP server does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use serde_json::Value;

/// A session unused for this long is forgotten (its member sessions are
/// left to expire at the members).
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// Sessions kept per route; past it, the least recently used one goes.
const MAX_SESSIONS: usize = 100_000;
/// Requests in flight remembered per session (for routing cancellations).
const MAX_IN_FLIGHT: usize = 1024;

/// Locks a mutex; a panic elsewhere while it was held leaves plain data
/// that is still consistent, so it is used as it is.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The gateway's link to one member within a session. Shared (an `Arc`)
/// by the requests using it, and its header values made once, so a call
/// copies and validates nothing of it.
#[derive(Debug)]
pub(super) struct Link {
    /// The member's `Mcp-Session-Id`, if it gave one (and it is a valid header value).
    pub(super) session_id: Option<HeaderValue>,
    /// The protocol version the member agreed to, as a header value.
    pub(super) version: Option<HeaderValue>,
    /// The member's `initialize` result capabilities.
    pub(super) capabilities: Value,
}

impl Link {
    pub(super) fn new(session_id: Option<&str>, version: &str, capabilities: Value) -> Self {
        Self {
            session_id: session_id.and_then(|id| HeaderValue::from_str(id).ok()),
            version: HeaderValue::from_str(version).ok(),
            capabilities,
        }
    }
}

/// Where the names shown to the client come from.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// Shown name → (member, the member's own name).
    pub(super) tools: HashMap<String, (usize, String)>,
    pub(super) prompts: HashMap<String, (usize, String)>,
    /// Resource URI → member.
    pub(super) resources: HashMap<String, usize>,
    /// (member, URI template), in the order listed.
    pub(super) templates: Vec<(usize, String)>,
}

#[derive(Debug)]
pub(super) struct Session {
    /// The `initialize` params of the client (its version, capabilities and
    /// name), sent to each member the session opens.
    pub(super) init_params: Value,
    /// The protocol version agreed with the client.
    pub(super) version: String,
    links: Mutex<Vec<Option<Arc<Link>>>>,
    pub(super) names: Mutex<Names>,
    in_flight: Mutex<HashMap<String, usize>>,
    touched: Mutex<Instant>,
}

impl Session {
    pub(super) fn new(members: usize, init_params: Value, version: String) -> Self {
        Self {
            init_params,
            version,
            links: Mutex::new(vec![None; members]),
            names: Mutex::new(Names::default()),
            in_flight: Mutex::new(HashMap::new()),
            touched: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn link(&self, member: usize) -> Option<Arc<Link>> {
        lock(&self.links).get(member).cloned().flatten()
    }

    pub(super) fn set_link(&self, member: usize, link: Option<Arc<Link>>) {
        if let Some(slot) = lock(&self.links).get_mut(member) {
            *slot = link;
        }
    }

    /// The members this session is linked to, with their links.
    pub(super) fn links(&self) -> Vec<(usize, Arc<Link>)> {
        lock(&self.links).iter().enumerate().filter_map(|(i, link)| link.clone().map(|link| (i, link))).collect()
    }

    /// Remembers that the client's request `id` went to `member`.
    pub(super) fn started(&self, id: &Value, member: usize) {
        let mut in_flight = lock(&self.in_flight);
        if in_flight.len() >= MAX_IN_FLIGHT {
            in_flight.clear();
        }
        in_flight.insert(id.to_string(), member);
    }

    /// The member serving the client's request `id`, if known.
    pub(super) fn serving(&self, id: &Value) -> Option<usize> {
        lock(&self.in_flight).get(&id.to_string()).copied()
    }

    fn touch(&self) -> Instant {
        let now = Instant::now();
        *lock(&self.touched) = now;
        now
    }
}

/// The sessions of one aggregated route.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Adds `session` under a new random id, which it returns.
    pub(super) fn insert(&self, session: Session) -> String {
        let id = crate::gateway::crypto::random_token(24);
        let mut map = lock(&self.map);
        // Idle sessions are swept now and then, not on every insert.
        if map.len() % 1024 == 1023 || map.len() >= MAX_SESSIONS {
            map.retain(|_, session| lock(&session.touched).elapsed() < IDLE);
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, session)| *lock(&session.touched)).map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), Arc::new(session));
        id
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<Session>> {
        let session = lock(&self.map).get(id).cloned()?;
        session.touch();
        Some(session)
    }

    pub(super) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.map).remove(id)
    }

    /// The session the stateless requests of `owner` share, made on first use.
    pub(super) fn shared(&self, owner: &str, make: impl FnOnce() -> Session) -> Arc<Session> {
        let key = format!("stateless\0{owner}");
        let mut map = lock(&self.map);
        if let Some(session) = map.get(&key) {
            session.touch();
            return session.clone();
        }
        let session = Arc::new(make());
        map.insert(key, session.clone());
        session
    }
}
