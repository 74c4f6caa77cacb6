//! Starting from a real account: CloudTrail logs ([`Trail`]) and the JSON the AWS CLI prints
//! for the account as it is now ([`estate::Estate`]) become a scenario. Both end in one list
//! of understood events at their instants, which [`Trail::scenario`] writes as a scenario.

#![forbid(unsafe_code)]

mod cloudtrail;
pub mod estate;
mod ordered;
mod split;

pub use cloudtrail::{ImportError, MAX_EVENTS, MAX_LINE, NothingToImport, Trail};
