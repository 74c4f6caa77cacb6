//! kmsim: a deterministic discrete-event simulator of AWS KMS and the services that use it.
pub mod actors;
pub mod cli;
pub mod engine;
pub mod report;
pub mod run;
pub mod scenario;
