//! The faults `flowcore sim` injects, alone or mixed, while its market keeps running.
//!
//! A plan names each fault with how often it fires, counted in played messages, so a plan
//! gives the same faults at the same places of the recording on every run:
//!
//! ```text
//! --faults drop=20000,gap=5000,malformed=7000,utf8=30000,fragment=9000,pings=11000,
//!          rest=13000,refuse=40000,stall=25000,shutdown=30000
//! ```
//! A fault fires when the count of played messages reaches a multiple of its period (plus
//! an offset per kind, so that two plans with equal periods do not always coincide) and
//! hits every client of the venue whose message was just played.

use std::fmt;
use std::time::Duration;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Leave one depth diff out of the stream (a sequence gap).
    Gap,
    /// Send a text frame that is not JSON (extra; nothing real is replaced).
    Malformed,
    /// Send a text frame that is not UTF-8: the client must fail the connection.
    BadUtf8,
    /// Send the next messages as fragments of odd sizes.
    Fragment,
    /// Send a storm of pings.
    PingStorm,
    /// The next REST requests fail (503) or answer slowly.
    RestFailure,
    /// Drop every client of the venue and refuse connections for a while.
    Refuse,
    /// Fall silent on a connection, leaving it open: no data, no ping, no pong, nothing
    /// read; the socket is dropped only after [`STALL_FOR`].
    Stall,
    /// Send a `serverShutdown` notice, then drop the connection after
    /// [`SHUTDOWN_GRACE`] (the stream keeps flowing meanwhile).
    Shutdown,
}

impl FaultKind {
    /// Every kind, in plan order.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Drop,
        FaultKind::Gap,
        FaultKind::Malformed,
        FaultKind::BadUtf8,
        FaultKind::Fragment,
        FaultKind::PingStorm,
        FaultKind::RestFailure,
        FaultKind::Refuse,
        FaultKind::Stall,
        FaultKind::Shutdown,
    ];

    /// The name in a plan.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Gap => "gap",
            FaultKind::Malformed => "malformed",
            FaultKind::BadUtf8 => "utf8",
            FaultKind::Fragment => "fragment",
            FaultKind::PingStorm => "pings",
            FaultKind::RestFailure => "rest",
            FaultKind::Refuse => "refuse",
            FaultKind::Stall => "stall",
            FaultKind::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        FaultKind::ALL
            .iter()
            .position(|k| *k == self)
            .expect("in ALL")
    }
}

/// Messages sent fragmented after a [`FaultKind::Fragment`].
pub const FRAGMENTED_MESSAGES: u32 = 64;
/// Fragment sizes, cycled (odd, and one larger than a typical message).
pub const FRAGMENT_SIZES: [usize; 5] = [1, 7, 13, 4093, 3];
/// Pings in a [`FaultKind::PingStorm`].
pub const STORM_PINGS: u32 = 500;
/// REST requests failed by one [`FaultKind::RestFailure`]: one 503, one slow answer.
pub const REST_FAILURES: u32 = 2;
/// How long a slow REST answer waits.
pub const SLOW_REST: Duration = Duration::from_millis(1500);
/// How long a [`FaultKind::Refuse`] refuses connections.
pub const REFUSE_FOR: Duration = Duration::from_millis(600);

/// How long a [`FaultKind::Stall`] keeps a silent connection open.
pub const STALL_FOR: Duration = Duration::from_secs(20);
/// How long after its `serverShutdown` notice a connection is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Which faults fire, and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Period in played messages, per kind (index of [`FaultKind::ALL`]); 0 = never.
    every: [u64; FaultKind::ALL.len()],
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// True when nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.every.iter().all(|&e| e == 0)
    }

    /// Plans `kind` every `every` played messages.
    pub fn with(mut self, kind: FaultKind, every: u64) -> Self {
        self.every[kind.index()] = every;
        self
    }

    /// The faults due once `played` messages have been played.
    pub fn due(&self, played: u64) -> impl Iterator<Item = FaultKind> + '_ {
        FaultKind::ALL.iter().copied().filter(move |k| {
            let every = self.every[k.index()];
            // Offsets of a few hundred messages keep equal periods apart.
            let offset = 211 * k.index() as u64;
            every != 0 && played > offset && (played - offset).is_multiple_of(every)
        })
    }
}

impl std::str::FromStr for FaultPlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut plan = FaultPlan::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, every) = part
                .split_once('=')
                .ok_or_else(|| format!("fault {part:?}: expected KIND=EVERY_N_MESSAGES"))?;
            let kind = FaultKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    format!("fault {name:?}: expected one of {}", names.join(", "))
                })?;
            let every: u64 =
                every.parse().ok().filter(|&e| e > 0).ok_or_else(|| {
                    format!("fault {part:?}: the period must be a positive count")
                })?;
            plan = plan.with(kind, every);
        }
        Ok(plan)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = FaultKind::ALL
            .iter()
            .filter(|k| self.every[k.index()] != 0)
            .map(|k| format!("{}={}", k.name(), self.every[k.index()]))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How many faults of each kind fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: [u64; FaultKind::ALL.len()],
}

impl FaultCounts {
    /// Counts one fault.
    pub fn add(&mut self, kind: FaultKind) {
        self.counts[kind.index()] += 1;
    }

    /// Faults of `kind` so far.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Every fault so far.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| format!("{} {}", self.get(*k), k.name()))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_print_and_fire_on_their_periods() {
        let plan: FaultPlan = "drop=100,gap=50".parse().unwrap();
        assert_eq!(plan.to_string(), "drop=100,gap=50");
        let fired: Vec<(u64, FaultKind)> = (0..=500)
            .flat_map(|n| plan.due(n).map(move |k| (n, k)))
            .collect();
        assert_eq!(
            fired,
            [
                (100, FaultKind::Drop),
                (200, FaultKind::Drop),
                (261, FaultKind::Gap),
                (300, FaultKind::Drop),
                (311, FaultKind::Gap),
                (361, FaultKind::Gap),
                (400, FaultKind::Drop),
                (411, FaultKind::Gap),
                (461, FaultKind::Gap),
                (500, FaultKind::Drop),
            ]
        );
        for bad in ["drop", "drop=0", "boom=3", "gap=x"] {
            assert!(bad.parse::<FaultPlan>().is_err(), "{bad}");
        }
        assert!("".parse::<FaultPlan>().unwrap().is_empty());
    }
}
