//! Same scenario and seed, same bytes; observing a run does not change it.

use kmsim::actors::Obs;
use kmsim::engine::{Record, Sink};
use kmsim::report::{self, trace};
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

use super::all_scenarios;

fn trace_bytes(text: &str, overrides: Overrides) -> Vec<u8> {
    let s = scenario::parse("s", text, overrides).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let mut out = Vec::new();
    trace::write_all(&r, trace::Format::Full, &mut out).unwrap();
    out.extend_from_slice(report::timeline(&r).as_bytes());
    out
}

#[test]
fn repeated_runs_give_byte_identical_traces() {
    for path in all_scenarios() {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = trace_bytes(&text, Overrides::default());
        for _ in 0..3 {
            assert!(first == trace_bytes(&text, Overrides::default()), "{} is not deterministic", path.display());
        }
    }
}

#[test]
fn the_seed_reaches_the_output() {
    let text = std::fs::read_to_string(super::scenarios_dir().join("ebs/ebs-story.ron")).unwrap();
    let a = trace_bytes(&text, Overrides { seed: Some(1), ..Overrides::default() });
    let b = trace_bytes(&text, Overrides { seed: Some(2), ..Overrides::default() });
    assert_ne!(a, b, "key IDs (and so ARNs in messages) come from the seed");
}

struct Counter(usize);

impl Sink<Obs> for Counter {
    fn record(&mut self, _rec: Record<Obs>) {
        self.0 += 1;
    }
}

/// Every bundled scenario, parsed.
fn bundled() -> impl Iterator<Item = (std::path::PathBuf, scenario::Scenario)> {
    all_scenarios().into_iter().map(|path| {
        let text = std::fs::read_to_string(&path).unwrap();
        let s = scenario::parse("s", &text, Overrides::default()).unwrap();
        (path, s)
    })
}

#[test]
fn an_extra_sink_sees_every_record_and_changes_nothing() {
    for (path, s) in bundled() {
        let plain = run(&s, &RunOptions::default(), None).unwrap();
        let mut counter = Counter(0);
        let observed = run(&s, &RunOptions::default(), Some(&mut counter)).unwrap();
        assert_eq!(plain.records, observed.records, "{}", path.display());
        assert_eq!(counter.0, plain.records.len());
    }
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A record's compact trace line and its full line less `time`, `message` and the null fields,
/// both parsed: what the two forms must agree on. The compact line ends the line itself.
fn compact_and_full_less_time_message_and_nulls(
    s: &kmsim::run::Names<'_>,
    rec: &Record<Obs>,
) -> (JsonObject, JsonObject) {
    let (mut full, mut compact) = (Vec::new(), Vec::new());
    trace::write_record(s, rec, &mut full).unwrap();
    trace::write_compact(s, rec, &mut compact).unwrap();
    assert!(compact.ends_with(b"}\n"), "record {}", rec.id);
    let mut want: JsonObject = serde_json::from_slice(&full).unwrap();
    want.retain(|k, v| k != "time" && k != "message" && !v.is_null());
    (serde_json::from_slice(&compact).unwrap(), want)
}

/// A record's CSV row read back (by the `csv` crate, under the header) as the object its
/// compact line would be: empty cells left out, counts as numbers.
fn csv_row_as_object(s: &kmsim::run::Names<'_>, rec: &Record<Obs>) -> JsonObject {
    let mut text = trace::CSV_HEADER.as_bytes().to_vec();
    trace::write_csv_row(s, rec, &mut text).unwrap();
    let mut rows = csv::Reader::from_reader(&*text);
    let header = rows.headers().unwrap().clone();
    let row = rows.records().next().expect("one row").unwrap();
    assert_eq!(row.len(), header.len(), "record {}", rec.id);
    let cell = |(field, value): (&str, &str)| {
        let number = ["seq", "t_ms", "cause", "reason"].contains(&field);
        let value = if number { value.parse::<u64>().unwrap().into() } else { value.into() };
        (field.to_string(), value)
    };
    header.iter().zip(&row).filter(|(_, v)| !v.is_empty()).map(cell).collect()
}

/// The compact trace says what the full one says, less the instant in words, the sentence and
/// the null fields; the CSV trace holds the compact trace's fields, a record a row: for every
/// record of every bundled scenario.
#[test]
fn the_compact_trace_is_the_full_trace_less_time_message_and_nulls_and_csv_the_compact_in_cells() {
    for (path, s) in bundled() {
        let r = run(&s, &RunOptions::default(), None).unwrap();
        for rec in &r.records {
            let (compact, want) = compact_and_full_less_time_message_and_nulls(&r.names, rec);
            assert_eq!(compact, want, "{} record {}", path.display(), rec.id);
            assert_eq!(csv_row_as_object(&r.names, rec), compact, "{} record {} (CSV)", path.display(), rec.id);
        }
    }
}

/// Names that JSON must escape or CSV quote (ids may hold any character but white space) come
/// out escaped in every form, and the compact line and CSV row still match the full line.
#[test]
fn names_that_need_escaping_are_escaped_in_every_form() {
    let text = std::fs::read_to_string(super::scenarios_dir().join("ebs/ebs-story.ron"))
        .unwrap()
        .replace("\"cmk\"", r#""k\"ey\\1""#)
        .replace("\"i-app\"", r#""i\"a,pp""#)
        .replace("\"vol-data\"", r#""vol\\data\u{1}""#);
    let s = scenario::parse("odd-names.ron", &text, Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for rec in &r.records {
        let (got, want) = compact_and_full_less_time_message_and_nulls(&r.names, rec);
        assert_eq!(got, want, "record {}", rec.id);
        assert_eq!(csv_row_as_object(&r.names, rec), got, "record {}", rec.id);
        names.extend(["actor", "key"].iter().filter_map(|f| got.get(*f)?.as_str().map(ToString::to_string)));
    }
    assert_eq!(names, ["i\"a,pp", "k\"ey\\1", "kms", "vol\\data\u{1}"].map(String::from).into());
}

/// Formatting on a second thread writes the same bytes, in the same order, as writing each
/// record in turn; a writer that fails is reported, and the run still completes.
#[test]
fn a_trace_written_in_the_background_is_the_trace_written_in_turn() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    for (path, s) in bundled() {
        let r = run(&s, &RunOptions::default(), None).unwrap();
        for format in [trace::Format::Full, trace::Format::Compact, trace::Format::Csv] {
            let mut in_turn = Vec::new();
            if format == trace::Format::Csv {
                in_turn.extend_from_slice(trace::CSV_HEADER.as_bytes());
            }
            for rec in &r.records {
                match format {
                    trace::Format::Full => trace::write_record(&r.names, rec, &mut in_turn).unwrap(),
                    trace::Format::Compact => trace::write_compact(&r.names, rec, &mut in_turn).unwrap(),
                    trace::Format::Csv => trace::write_csv_row(&r.names, rec, &mut in_turn).unwrap(),
                }
            }
            let mut background = Vec::new();
            let (records, written) =
                trace::in_background(&s, format, &mut background, |h| run(&s, &RunOptions::default(), Some(h)));
            written.unwrap();
            assert_eq!(records.unwrap().records.len(), r.records.len());
            assert!(background == in_turn, "{} ({format:?})", path.display());
        }
        let (records, written) =
            trace::in_background(&s, trace::Format::Compact, Broken, |h| run(&s, &RunOptions::default(), Some(h)));
        assert_eq!(records.unwrap().records.len(), r.records.len());
        assert_eq!(written.unwrap_err().to_string(), "disk full");
    }
}

/// The run loop's look-ahead (prefetching what the next events touch) changes speed only: with
/// it forced on and forced off, every bundled scenario and the 1k fleet make the same records.
#[test]
fn looking_ahead_changes_nothing() {
    use kmsim::engine::{Limits, LookAhead, NoHints};
    let fleet = super::scenarios_dir().join("bench/fleet-1k.ron");
    let fleet = scenario::parse("fleet", &std::fs::read_to_string(&fleet).unwrap(), Overrides::default()).unwrap();
    for (path, s) in bundled().chain([(std::path::PathBuf::from("bench/fleet-1k.ron"), fleet)]) {
        let records = |look_ahead| {
            let (mut sim, mut inputs) = kmsim::run::build(&s);
            sim.set_look_ahead(look_ahead);
            let mut records: Vec<Record<Obs>> = Vec::new();
            let limits = Limits { horizon: s.horizon, max_events: None };
            let stats = sim.run_with(limits, &mut inputs, &mut records, &NoHints).unwrap();
            (stats, records)
        };
        let (on, off) = (records(LookAhead::Always), records(LookAhead::Never));
        assert!(on.0 == off.0 && on.1 == off.1, "{}", path.display());
        assert!(!on.1.is_empty(), "{}", path.display());
    }
}

/// One pass with no record kept gives what the kept records give: the summary, the verdicts
/// and the timeline, for every bundled scenario.
#[test]
fn one_pass_without_the_records_gives_the_same_answers() {
    for (path, s) in bundled() {
        let kept = run(&s, &RunOptions::default(), None).unwrap();
        let wanted = kmsim::analysis::Wanted { timeline: true, report: true, timeline_beside: false };
        let observed = kmsim::analysis::observe(&s, &RunOptions::default(), wanted, None).unwrap();
        assert!(observed.run.records.is_empty(), "{}: nothing kept", path.display());
        assert_eq!(observed.run.stats, kept.stats, "{}", path.display());
        let summary = kmsim::analysis::summary::summarize(&kept);
        assert_eq!(observed.summary, summary, "{}", path.display());
        assert_eq!(observed.verdicts, kmsim::analysis::verdicts::evaluate(&kept, &summary), "{}", path.display());
        let timeline = kmsim::report::timeline_text(&observed.run.names, observed.shown.as_ref().unwrap());
        assert_eq!(timeline, kmsim::report::timeline(&kept), "{}", path.display());
        // The report's files but its trace, byte for byte.
        let (lanes, events) = (observed.lanes.as_ref().unwrap(), observed.shown.as_ref().unwrap());
        let parts = kmsim::report::ReportParts {
            run: &observed.run,
            summary: &observed.summary,
            verdicts: &observed.verdicts,
            lanes,
            events,
        };
        let mut whole = kmsim::report::bundle(&kept, "f.ron");
        whole.retain(|(name, _)| *name != "trace.jsonl");
        assert!(kmsim::report::report_files(&parts, "f.ron") == whole, "{}: the report differs", path.display());
    }
}

/// The one pass hands every record on to the caller's sink (a trace writer), in order, though
/// the timeline holds the last ones back until the run ends: a run past the timeline's whole
/// length (the 1k fleet) and every bundled scenario.
#[test]
fn one_pass_hands_on_every_record_in_order() {
    let fleet = super::scenarios_dir().join("bench/fleet-1k.ron");
    let fleet = scenario::parse("fleet", &std::fs::read_to_string(&fleet).unwrap(), Overrides::default()).unwrap();
    for (path, s) in bundled().chain([(std::path::PathBuf::from("bench/fleet-1k.ron"), fleet)]) {
        let kept = run(&s, &RunOptions::default(), None).unwrap();
        let mut handed: Vec<Record<Obs>> = Vec::new();
        let wanted = kmsim::analysis::Wanted { timeline: true, report: true, timeline_beside: false };
        kmsim::analysis::observe(&s, &RunOptions::default(), wanted, Some(&mut handed)).unwrap();
        assert!(
            handed == kept.records,
            "{}: {} records handed on, {} made",
            path.display(),
            handed.len(),
            kept.records.len()
        );
    }
}

/// The records a timeline shows, chosen on the thread that writes a trace (as `run --report`
/// does), are those the pass chooses itself: a run past the timeline's whole length (the 1k
/// fleet) and every bundled scenario.
#[test]
fn a_timeline_chosen_beside_the_trace_writer_is_the_one_chosen_in_the_pass() {
    let fleet = super::scenarios_dir().join("bench/fleet-1k.ron");
    let fleet = scenario::parse("fleet", &std::fs::read_to_string(&fleet).unwrap(), Overrides::default()).unwrap();
    for (path, s) in bundled().chain([(std::path::PathBuf::from("bench/fleet-1k.ron"), fleet)]) {
        let wanted = kmsim::analysis::Wanted { timeline: true, report: true, timeline_beside: false };
        let in_pass = kmsim::analysis::observe(&s, &RunOptions::default(), wanted, None).unwrap();
        let mut timeline = kmsim::analysis::timeline::TimelineFold::new(&s);
        let beside = |names: &kmsim::run::Names<'_>, rec| timeline.take(names, rec);
        let wanted = kmsim::analysis::Wanted { timeline_beside: true, ..wanted };
        let (observed, written) =
            trace::in_background_beside(&s, trace::Format::Compact, std::io::sink(), beside, |h| {
                kmsim::analysis::observe(&s, &RunOptions::default(), wanted, Some(h))
            });
        written.unwrap();
        let observed = observed.unwrap();
        assert!(observed.shown.is_none(), "{}: the pass leaves the timeline to the caller", path.display());
        let text = |o: &kmsim::analysis::Observed<'_>, shown| kmsim::report::timeline_text(&o.run.names, shown);
        assert_eq!(
            text(&observed, &timeline.select(&observed.run.names)),
            text(&in_pass, in_pass.shown.as_ref().unwrap()),
            "{}",
            path.display()
        );
    }
}

/// A long run's timeline shows its first records, the first failures after them and its last
/// records, says how many it left out, and takes no more than that to print.
#[test]
fn a_long_timeline_shows_its_head_first_failures_and_tail() {
    let text = r#"Scenario(
        version: 1, name: "long", start: "2026-01-01T00:00:00Z", horizon: "2d", seed: 3,
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "web", instances: 100, keys: [("k", 1)], attached: Exponential("2h"), detached: Fixed("1m"))],
        timeline: [
            At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
            At("1d", DeleteImportedKeyMaterial(key: "k")),
        ],
    )"#;
    let s = scenario::parse("long.ron", text, Overrides::default()).unwrap();
    let wanted = kmsim::analysis::Wanted { timeline: true, report: false, timeline_beside: false };
    let observed = kmsim::analysis::observe(&s, &RunOptions::default(), wanted, None).unwrap();
    let timeline = kmsim::report::timeline_text(&observed.run.names, observed.shown.as_ref().unwrap());
    let total = observed.run.stats.records;
    assert!(total > 5_000, "a long run: {total}");
    let rows: Vec<&str> = timeline.lines().skip(1).collect();
    let note = rows.last().unwrap();
    assert!(note.starts_with(&format!("({total} records in all: the first 100, the keys' own events, ")), "{note}");
    assert!(note.ends_with("`--trace FILE` writes every one.)"), "{note}");
    assert!(rows[..100].iter().enumerate().all(|(i, r)| r.starts_with(&format!("#{i} "))), "the head");
    // The head, then the key's own events and the failures, then the tail, with `...` between.
    assert!(rows.len() <= 100 + 2 * (100 + 20 + 20) + 1, "bounded: {} rows", rows.len());
    assert!(rows.iter().any(|r| r.contains("DeleteImportedKeyMaterial")), "the deletion is shown");
    let last = rows[rows.len() - 2];
    assert!(last.starts_with(&format!("#{} ", total - 1)), "the tail ends with the last record: {last}");
    let failed = rows[101..].iter().filter(|r| r.contains("FAILED")).count();
    assert!(failed > 0, "the failures after the head are shown");
}

/// `explain` without the records: a first run indexes each record's cause, a second keeps the
/// records the chains pass through; the explanations are those of the kept records, for every
/// failure caused by a key in every bundled scenario.
#[test]
fn explaining_from_a_cause_index_and_a_second_run_gives_the_same_chains() {
    use kmsim::analysis::causes::{CauseIndex, Keep, is_key_failure};
    use kmsim::report::explain::explain;
    let streamed = RunOptions { stream: true, ..RunOptions::default() };
    let mut explained = 0;
    for (path, s) in bundled() {
        let kept = run(&s, &RunOptions::default(), None).unwrap();
        let mut index = CauseIndex::default();
        run(&s, &streamed, Some(&mut index)).unwrap();
        assert_eq!(index.len(), kept.records.len() as u64);
        let failures: Vec<u64> = kept.records.iter().filter(|r| is_key_failure(r)).map(|r| r.id).collect();
        let (first, all) = index.key_failures();
        assert_eq!(all, failures.len() as u64, "{}", path.display());
        assert_eq!(first, &failures[..failures.len().min(20)], "{}", path.display());
        let mut wanted = std::collections::BTreeSet::new();
        for &id in &failures {
            wanted.extend(index.chain(id).unwrap());
        }
        let mut keep = Keep { wanted: &wanted, kept: std::collections::BTreeMap::new() };
        let second = run(&s, &streamed, Some(&mut keep)).unwrap();
        for &id in &failures {
            let whole = explain(&kept.names, &|i| kept.record(i), id);
            let sparse = explain(&second.names, &|i| keep.kept.get(&i), id);
            assert_eq!(sparse, whole, "{} record {id}", path.display());
            explained += 1;
        }
        assert!(index.chain(kept.records.len() as u64).is_none(), "no such record");
    }
    assert!(explained > 20, "{explained} chains compared");
}

/// A streaming run keeps no launch history (its memory stays the estate's): a record is named
/// from the launch counts taken when it was seen. Every record of runs that relaunch instances
/// in their places reads word for word as the kept run, whose names know every launch, reads it.
#[test]
fn streaming_names_word_every_record_as_a_kept_run_does() {
    use kmsim::report::describe::describe;
    use kmsim::run::Names;
    for rel in ["fleet/fleet-on-group.ron", "groups/capacity-drains.ron", "fleet/replacement-launch-fails.ron"] {
        let path = super::scenarios_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let s = kmsim::scenario::parse(rel, &text, kmsim::scenario::Overrides::default()).unwrap();
        let kept = kmsim::run::run(&s, &kmsim::run::RunOptions::default(), None).unwrap();
        let mut streaming = Names::streaming(&s);
        let mut relaunched = 0;
        for rec in &kept.records {
            streaming.observe(rec);
            let lives = streaming.lives_at(rec);
            relaunched += usize::from(!lives.is_empty());
            let pinned = streaming.pinned(&lives);
            assert_eq!(describe(&pinned, rec), describe(&kept.names, rec), "{rel}: #{}", rec.id);
        }
        assert!(relaunched > 0, "{rel}: the run should name relaunched instances");
    }
}
