//! The limit on failed order lookups per client, so that guessing ids is not cheap: who a
//! client is (its peer address), how many unknown ids it may ask for (a GCRA budget from
//! `governor`, keyed by client), which clients are blocked now and until when, and the
//! housekeeping that keeps both maps from growing with every address ever seen.
//!
//! Only a failed lookup (a 404 `not_found`) takes from a client's budget; a found order costs
//! nothing. Once a failure finds the budget empty, that lookup and every later one of that
//! client, found or not, is answered 429 `too_many_lookups` with `Retry-After` until the
//! budget has a failure to give again (governor's `NotUntil`). The budget cannot be read
//! without being spent (`check_key` takes a cell), so a lookup is not checked against it
//! beforehand: it is checked against the blocked clients, which costs one map read, and the
//! budget is spent only once the lookup has failed.
//!
//! The client is the peer's IP address as the socket gives it, never `X-Forwarded-For` (any
//! client can write that header); behind a proxy every client is the proxy. An IPv6 client is
//! its /64 (one host is commonly given a whole /64), an IPv4-mapped IPv6 address its IPv4
//! address. Loopback clients are exempt unless told otherwise, so that the benchmarks, which
//! ask for unknown ids from 127.0.0.1 on purpose, measure the service and not the limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, MonotonicClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::infra::metrics::names;

/// Failed lookups a client may make per minute, once its burst is spent.
pub const FAILURES_PER_MINUTE: u32 = 60;

/// Failed lookups a client may make in a row before the per-minute rate applies.
pub const FAILURES_BURST: u32 = 20;

/// How often the clients whose budget is full again and whose block has ended are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How the limit is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupLimitSettings {
    /// Failed lookups per client and minute; 0 turns the limit off.
    pub failures_per_minute: u32,
    /// Failed lookups a client may make in a row (at least 1).
    pub burst: u32,
    /// Whether loopback clients (127.0.0.0/8, ::1) are exempt.
    pub exempt_loopback: bool,
}

impl Default for LookupLimitSettings {
    fn default() -> Self {
        Self {
            failures_per_minute: FAILURES_PER_MINUTE,
            burst: FAILURES_BURST,
            exempt_loopback: true,
        }
    }
}

/// Who a limited client is: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

/// A lookup refused: the client must wait this long before its next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// How long until the client's budget has a failure to give again.
    pub retry_after: Duration,
}

/// The limit on failed lookups per client; cheap to clone (one reference count), and off
/// when built with 0 failures per minute.
#[derive(Clone)]
pub struct LookupLimit {
    /// The limit's state; `None` when it is off.
    inner: Option<Arc<Limiter>>,
}

/// The state of a limit that is on.
struct Limiter {
    /// Each client's budget of failures.
    failures: RateLimiter<Client, DashMapStateStore<Client>, MonotonicClock>,
    /// Clients whose budget was found empty, and until when they are refused.
    blocked: DashMap<Client, Instant>,
    /// Whether loopback clients are exempt.
    exempt_loopback: bool,
    /// When the maps are next swept.
    next_sweep: Mutex<Instant>,
}

impl LookupLimit {
    /// The limit as set; off when `failures_per_minute` is 0.
    pub fn new(settings: LookupLimitSettings) -> Self {
        let inner = NonZeroU32::new(settings.failures_per_minute).map(|rate| {
            let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_minute(rate).allow_burst(burst);
            Arc::new(Limiter {
                failures: RateLimiter::dashmap_with_clock(quota, MonotonicClock),
                blocked: DashMap::new(),
                exempt_loopback: settings.exempt_loopback,
                next_sweep: Mutex::new(Instant::now() + SWEEP_EVERY),
            })
        });
        Self { inner }
    }

    /// The client a request from `peer` counts against, or `None` when it is not limited:
    /// the limit is off, the peer is unknown (a router served without connection info), or
    /// it is a loopback peer and those are exempt.
    pub fn client(&self, peer: Option<SocketAddr>) -> Option<Client> {
        let limiter = self.inner.as_ref()?;
        let ip = peer?.ip().to_canonical();
        if limiter.exempt_loopback && ip.is_loopback() {
            return None;
        }
        Some(Client(match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => IpAddr::V6((v6.to_bits() & (u128::MAX << 64)).into()),
        }))
    }

    /// Whether `client` may look an order up now: refused while it is blocked.
    pub fn check(&self, client: Client) -> Result<(), Limited> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        let Some(until) = limiter.blocked.get(&client).map(|entry| *entry.value()) else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            return Err(refused(until - now));
        }
        limiter.blocked.remove_if(&client, |_, until| *until <= now);
        Ok(())
    }

    /// Takes one failure from `client`'s budget; refused, and the client blocked until the
    /// budget has one again, when it is empty.
    pub fn failed(&self, client: Client) -> Result<(), Limited> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.sweep_if_due();
        match limiter.failures.check_key(&client) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let until = not_until.earliest_possible();
                limiter.blocked.insert(client, until);
                Err(refused(not_until.wait_time_from(MonotonicClock.now())))
            }
        }
    }

    /// How many clients the limit holds state for (budgets not full, blocks not ended, and
    /// those not swept yet).
    pub fn tracked(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |limiter| limiter.failures.len() + limiter.blocked.len())
    }

    /// Forgets the clients whose budget is full again and whose block has ended.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.inner {
            limiter.sweep(Instant::now());
        }
    }
}

impl Limiter {
    /// Sweeps when [`SWEEP_EVERY`] has passed since the last sweep, unless another lookup is
    /// sweeping already.
    fn sweep_if_due(&self) {
        let now = Instant::now();
        let Ok(mut next) = self.next_sweep.try_lock() else {
            return;
        };
        if *next > now {
            return;
        }
        *next = now + SWEEP_EVERY;
        drop(next);
        self.sweep(now);
    }

    /// Forgets the budgets that are full again (a fresh one is the same) and the blocks that
    /// ended before `now`.
    fn sweep(&self, now: Instant) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        self.blocked.retain(|_, until| *until > now);
        self.blocked.shrink_to_fit();
    }
}

/// A refusal to wait `retry_after`, counted in `http_lookups_limited_total`.
fn refused(retry_after: Duration) -> Limited {
    metrics::counter!(names::HTTP_LOOKUPS_LIMITED).increment(1);
    Limited { retry_after }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("an IP address"), 40_000))
    }

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_64() {
        let limit = LookupLimit::new(LookupLimitSettings::default());
        let v4 = Client(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(limit.client(peer("203.0.113.7")), Some(v4));
        assert_eq!(limit.client(peer("::ffff:203.0.113.7")), Some(v4));
        let net = Client(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0)));
        assert_eq!(limit.client(peer("2001:db8:1:2::1")), Some(net));
        assert_eq!(limit.client(peer("2001:db8:1:2:ffff::9")), Some(net));
        assert_ne!(limit.client(peer("2001:db8:1:3::1")), Some(net));
        for loopback in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(limit.client(peer(loopback)), None, "{loopback}");
        }
        assert_eq!(limit.client(None), None, "an unknown peer");
        let strict = LookupLimit::new(LookupLimitSettings {
            exempt_loopback: false,
            ..LookupLimitSettings::default()
        });
        assert!(strict.client(peer("::1")).is_some());
        let off = LookupLimit::new(LookupLimitSettings {
            failures_per_minute: 0,
            ..LookupLimitSettings::default()
        });
        assert_eq!(off.client(peer("203.0.113.7")), None);
    }

    #[test]
    fn a_blocked_client_is_refused_until_its_budget_refills() {
        // One failure per 10 ms, two in a row.
        let limit = LookupLimit::new(LookupLimitSettings {
            failures_per_minute: 6000,
            burst: 2,
            exempt_loopback: true,
        });
        let client = limit.client(peer("198.51.100.1")).expect("limited");
        assert_eq!(limit.failed(client), Ok(()));
        assert_eq!(limit.failed(client), Ok(()));
        assert_eq!(limit.check(client), Ok(()), "spent, but not refused yet");
        let refused = limit.failed(client).expect_err("the budget is empty");
        assert!(
            refused.retry_after > Duration::ZERO
                && refused.retry_after <= Duration::from_millis(10),
            "{refused:?}"
        );
        assert!(limit.check(client).is_err(), "blocked");
        std::thread::sleep(Duration::from_millis(15));
        assert_eq!(limit.check(client), Ok(()), "the block has ended");
        assert_eq!(limit.failed(client), Ok(()), "one failure refilled");
        assert!(limit.failed(client).is_err(), "and only one");
    }

    #[test]
    fn sweeping_forgets_clients_whose_budget_is_full_again() {
        let limit = LookupLimit::new(LookupLimitSettings {
            failures_per_minute: 6000,
            burst: 1,
            exempt_loopback: true,
        });
        for host in 1..=200u8 {
            let client = limit
                .client(peer(&format!("192.0.2.{host}")))
                .expect("limited");
            let _ = limit.failed(client);
            let _ = limit.failed(client);
        }
        assert_eq!(limit.tracked(), 400, "200 budgets and 200 blocks");
        limit.sweep();
        assert_eq!(limit.tracked(), 400, "all still recent");
        std::thread::sleep(Duration::from_millis(25));
        limit.sweep();
        assert_eq!(limit.tracked(), 0);
    }
}
