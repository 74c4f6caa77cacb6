//! kmsim: a deterministic discrete-event simulator of AWS KMS and the services that use it.
pub mod engine;
