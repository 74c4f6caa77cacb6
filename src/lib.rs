//! kmsim: a deterministic discrete-event simulator of AWS KMS and the services that use it.
//!
//! It answers one question before anyone presses the button: when imported key material is
//! deleted (or expires), what breaks, and when? A scenario ([`scenario`]) describes keys,
//! instances, volumes and a timeline; [`run::run`] builds the actors ([`actors`]) on the
//! deterministic [`engine`] and runs them; [`analysis`] gathers the facts about the run (each
//! resource's standing and latent window, the expectations' verdicts) in one pass; [`report`]
//! words and draws them: a timeline, a JSON Lines trace, cause chains, charts and reports.
//!
//! ```
//! let text = r#"Scenario(
//!     version: 1, name: "doc", start: "2026-03-01T09:00:00Z", horizon: "5d", seed: 1,
//!     keys: [Key(id: "cmk", origin: External)],
//!     instances: [Instance(id: "i-1")],
//!     volumes: [Volume(id: "vol-1", key: "cmk")],
//!     timeline: [
//!         At("0s", ImportKeyMaterial(key: "cmk", material: "m1", expires: Never)),
//!         At("1m", CreateVolume(volume: "vol-1")),
//!         At("2m", AttachVolume(volume: "vol-1", instance: "i-1")),
//!         At("1d", DeleteImportedKeyMaterial(key: "cmk")),
//!         At("2d", DetachVolume(volume: "vol-1")),
//!         At("2d 1h", AttachVolume(volume: "vol-1", instance: "i-1")),
//!     ],
//! )"#;
//! let scenario = kmsim::scenario::parse("doc.ron", text, Default::default()).unwrap();
//! let run = kmsim::run::run(&scenario, &Default::default(), None).unwrap();
//! let summary = kmsim::analysis::summary::summarize(&run);
//! let vol = &summary.resources[0];
//! assert_eq!(vol.breaks[0].broke_at.to_string(), "+2d 1h");
//! assert_eq!(vol.breaks[0].latent_window().unwrap().to_string(), "1d 1h");
//! ```
//!
//! `ARCHITECTURE.md` maps the code.

pub mod actors;
pub mod analysis;
pub mod cli;
pub mod engine;
pub mod import;
pub mod report;
pub mod run;
pub mod scenario;
