//! Request rates per Cognito quota category: a token bucket each, which
//! every call of this module waits on before it is sent.
//!
//! Cognito limits requests per second per account and region, by category
//! of operation (`UserPoolRead` is 15/s by default), and answers
//! `TooManyRequestsException` past it. Bounding how many calls are in flight
//! does not bound their rate: against a fast endpoint four workers make
//! hundreds of calls a second. So `gc` over hundreds of pools, or `user list`
//! fanning out one `ListUsersInGroup` per group, wait here for their turn
//! instead of being throttled, and the SDK's backoff is left for the
//! account's other clients.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The quota categories of the operations cognigate calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Category {
    UserPoolRead,
    UserPoolUpdate,
    UserPoolClientRead,
    UserPoolClientUpdate,
    UserList,
    UserRead,
    UserUpdate,
    UserCreation,
    /// Operations without a category of their own here (rare, one-off calls).
    Other,
}

impl Category {
    /// The category of a Cognito operation, by the quota table of Cognito's
    /// developer guide.
    pub(crate) fn of(operation: &str) -> Self {
        match operation {
            "DescribeUserPool"
            | "ListUserPools"
            | "DescribeUserPoolDomain"
            | "ListGroups"
            | "GetGroup"
            | "DescribeManagedLoginBrandingByClient"
            | "DescribeResourceServer"
            | "ListResourceServers" => Self::UserPoolRead,
            "CreateUserPool"
            | "UpdateUserPool"
            | "DeleteUserPool"
            | "CreateUserPoolDomain"
            | "UpdateUserPoolDomain"
            | "DeleteUserPoolDomain"
            | "CreateGroup"
            | "CreateManagedLoginBranding" => Self::UserPoolUpdate,
            "DescribeUserPoolClient" | "ListUserPoolClients" | "ListUserPoolClientSecrets" => Self::UserPoolClientRead,
            "CreateUserPoolClient"
            | "UpdateUserPoolClient"
            | "DeleteUserPoolClient"
            | "AddUserPoolClientSecret"
            | "DeleteUserPoolClientSecret" => Self::UserPoolClientUpdate,
            "ListUsers" | "ListUsersInGroup" => Self::UserList,
            "AdminGetUser" | "AdminListGroupsForUser" => Self::UserRead,
            "AdminSetUserPassword" | "AdminDeleteUser" | "AdminAddUserToGroup" | "AdminRemoveUserFromGroup" => {
                Self::UserUpdate
            }
            "AdminCreateUser" => Self::UserCreation,
            _ => Self::Other,
        }
    }

    /// Requests per second cognigate allows itself: about two thirds of
    /// Cognito's default quota, leaving room for the account's other clients.
    pub(crate) fn rate(self) -> f64 {
        match self {
            Self::UserPoolRead | Self::UserPoolUpdate | Self::UserPoolClientRead | Self::UserPoolClientUpdate => 10.0,
            Self::UserList => 20.0,
            Self::UserRead => 80.0,
            Self::UserUpdate => 16.0,
            Self::UserCreation => 30.0,
            Self::Other => 5.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// One token bucket per category, shared by every request of a process.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    buckets: Mutex<HashMap<Category, Bucket>>,
}

impl Pace {
    /// How long the next request of `category` must wait, taking its token.
    /// A bucket holds at most one second of requests, so a burst never
    /// exceeds the rate Cognito counts over a second.
    fn reserve(&self, category: Category, now: Instant) -> Duration {
        let rate = category.rate();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(category).or_insert(Bucket { tokens: rate, refilled: now });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        // Taking the token even when it is not there yet queues the caller
        // behind those already waiting.
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
    }

    /// Waits for a token of the operation's category.
    pub(crate) async fn wait(&self, operation: &str) {
        let delay = self.reserve(Category::of(operation), Instant::now());
        if !delay.is_zero() {
            tracing::debug!(operation, ?delay, "pacing to stay under Cognito's request rate quota");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_a_second_of_requests_then_one_per_interval() {
        let pace = Pace::default();
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(pace.reserve(Category::UserPoolRead, start), Duration::ZERO);
        }
        // The 11th and 12th wait 0.1 s and 0.2 s; another category is not held up.
        assert_eq!(pace.reserve(Category::UserPoolRead, start), Duration::from_millis(100));
        assert_eq!(pace.reserve(Category::UserPoolRead, start), Duration::from_millis(200));
        assert_eq!(pace.reserve(Category::UserList, start), Duration::ZERO);
        // A second later the debt is paid and eight tokens are back.
        let later = start + Duration::from_secs(1);
        assert_eq!(pace.reserve(Category::UserPoolRead, later), Duration::ZERO);
    }

    #[test]
    fn operations_fall_into_their_categories() {
        assert_eq!(Category::of("DescribeUserPool"), Category::UserPoolRead);
        assert_eq!(Category::of("ListUsersInGroup"), Category::UserList);
        assert_eq!(Category::of("DeleteUserPoolClient"), Category::UserPoolClientUpdate);
        assert_eq!(Category::of("Nope"), Category::Other);
    }
}
