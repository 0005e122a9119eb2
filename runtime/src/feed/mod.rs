//! The live feed runtime: one thread per `[[feed]]`, reading its venue's WebSockets on
//! io_uring ([`uring_feed`], the default) or tokio ([`tokio_feed`]), each message stamped,
//! recorded, parsed and handed to the core thread as one batch ([`thread`]); one symbol's
//! connections kept alive and rotated ([`link`]); REST snapshots and trade history off the
//! hot path ([`rest`]), retried with [`backoff`].

mod backoff;
mod link;
mod rest;
mod spawn;
mod stats;
mod thread;
mod tokio_feed;
mod uring_feed;

pub(crate) use spawn::{spawn_feed, start_inline_feed, FeedHandle, FeedSpawn, InlineFeed};
pub(crate) use stats::FeedStats;
pub(crate) use stats::LiveCounters;
pub(crate) use uring_feed::{Round, PARK_TIMEOUT};
