//! Charts and reports: the SVG is well-formed and shows the lanes, markers and latent windows; the
//! PNG has the right size, is not blank and has text where the labels are; the HTML report is
//! self-contained; the aggregate view takes over for fleets.

use std::process::Command;

use image::GenericImageView;
use kmsim::report;
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

use super::scenarios_dir;

fn bundle_of(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let s = scenario::parse("s.ron", text, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &RunOptions::default(), None).unwrap();
    report::bundle(&r, "s.ron")
}

fn file<'a>(bundle: &'a [(&'static str, Vec<u8>)], name: &str) -> &'a [u8] {
    &bundle.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name}")).1
}

fn story() -> String {
    std::fs::read_to_string(scenarios_dir().join("ebs/ebs-story.ron")).unwrap()
}

/// Every text element of an SVG document.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn the_svg_shows_lanes_markers_latent_window_and_legend() {
    let b = bundle_of(&story());
    let texts = svg_texts(std::str::from_utf8(file(&b, "timeline.svg")).unwrap());
    for expected in [
        "EBS volume outlives its deleted key material until the next attach",
        "key cmk",
        "vol-data",
        "i-app",
        "▼ cmk: m1 deleted",
        "▼ cmk: m1 reimported",
        "latent 2d 1h",
        "PendingImport",
        "latent: running on a cached key",
        "failed operation",
        "Mar 05",
    ] {
        assert!(texts.iter().any(|t| t == expected), "{expected:?} not in the chart's texts: {texts:?}");
    }
    // The key's lane comes before the volume that depends on it.
    let pos = |s: &str| texts.iter().position(|t| t == s).unwrap();
    assert!(pos("key cmk") < pos("vol-data"));
}

#[test]
fn the_png_has_the_svg_size_is_not_blank_and_has_text_in_the_label_column() {
    let b = bundle_of(&story());
    let svg = std::str::from_utf8(file(&b, "timeline.svg")).unwrap();
    let doc = roxmltree::Document::parse(svg).unwrap();
    let w: u32 = doc.root_element().attribute("width").unwrap().parse().unwrap();
    let h: u32 = doc.root_element().attribute("height").unwrap().parse().unwrap();
    let img = image::load_from_memory(file(&b, "timeline.png")).unwrap();
    assert_eq!(img.dimensions(), (w, h));
    let rgb = img.to_rgb8();
    let non_white = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let share = non_white as f64 / f64::from(w * h);
    assert!(share > 0.05, "the chart is almost blank: {share}");
    // The label column (x < 190) holds the lane names in dark text.
    let dark_labels =
        rgb.enumerate_pixels().filter(|(x, y, p)| *x < 190 && *y > 80 && p.0.iter().all(|c| *c < 100)).count();
    assert!(dark_labels > 100, "no text in the label column: {dark_labels} dark pixels");
    // The title is drawn too.
    let dark_title =
        rgb.enumerate_pixels().filter(|(x, y, p)| *x < 600 && *y < 30 && p.0.iter().all(|c| *c < 100)).count();
    assert!(dark_title > 300, "no title text: {dark_title}");
}

#[test]
fn the_html_report_is_self_contained_and_complete() {
    let b = bundle_of(&story());
    let html = std::str::from_utf8(file(&b, "report.html")).unwrap();
    for forbidden in ["<script", "<link", "src=", "href=", "@import", "url(", "https://"] {
        assert!(!html.contains(forbidden), "the report refers to something outside itself: {forbidden}");
    }
    // The only URL is the SVG namespace, which browsers never fetch.
    assert_eq!(html.matches("http://").count(), html.matches("http://www.w3.org/2000/svg").count());
    for expected in [
        "<h1>EBS volume outlives its deleted key material until the next attach</h1>",
        "Material m1 is deleted on day 2.",
        "What broke, and when",
        "<span class=\"pill st-recovered\">recovered</span>",
        "<svg",
        "Expectations: 12 of 12 held",
        "All events (30)",
        "CustomerKeyHasBeenRevoked",
        "@media print",
    ] {
        assert!(html.contains(expected), "{expected:?} missing from the report");
    }
}

#[test]
fn summary_markdown_has_the_table() {
    let b = bundle_of(&story());
    let md = std::str::from_utf8(file(&b, "summary.md")).unwrap();
    assert!(md.contains(
        "| Resource | Key | Key unusable from | Last good use | Finally broke | Latent window | Recovered | Status |"
    ));
    assert!(md.contains("| vol-data | cmk | +2d | +3d Write | +4d 1h AttachVolume CustomerKeyHasBeenRevoked | 2d 1h | +6d 1h | recovered |"));
}

#[test]
fn reports_are_deterministic() {
    let a = bundle_of(&story());
    let b = bundle_of(&story());
    assert_eq!(a, b);
}

#[test]
fn beyond_sixty_resources_the_chart_counts_each_keys_volumes_and_the_instances() {
    let mut volumes = Vec::new();
    let mut timeline = vec![
        r#"At("0s", ImportKeyMaterial(key: "cmk", material: "m1", expires: Never))"#.to_string(),
        r#"At("0s", ImportKeyMaterial(key: "other", material: "m2", expires: Never))"#.to_string(),
        r#"At("1d", StopInstances(instance: "i-1"))"#.to_string(),
    ];
    for v in 70..74 {
        volumes.push(format!(r#"Volume(id: "vol-{v:02}", key: "other")"#));
        timeline.push(format!(r#"At("1m", CreateVolume(volume: "vol-{v:02}"))"#));
    }
    for v in 0..70 {
        volumes.push(format!(r#"Volume(id: "vol-{v:02}", key: "cmk")"#));
        timeline.push(format!(r#"At("1m", CreateVolume(volume: "vol-{v:02}"))"#));
        timeline.push(format!(r#"At("2m", AttachVolume(volume: "vol-{v:02}", instance: "i-1"))"#));
        timeline.push(format!(r#"At("{}h", DetachVolume(volume: "vol-{v:02}"))"#, 13 + v % 20));
    }
    timeline.push(r#"At("12h", DeleteImportedKeyMaterial(key: "cmk"))"#.into());
    let text = format!(
        r#"Scenario(version: 1, name: "fleet", start: "2026-01-01T00:00:00Z", horizon: "2d", seed: 1,
        keys: [Key(id: "cmk", origin: External), Key(id: "other", origin: External)],
        instances: [Instance(id: "i-1")],
        volumes: [{}], timeline: [{}])"#,
        volumes.join(", "),
        timeline.join(", ")
    );
    let b = bundle_of(&text);
    let texts = svg_texts(std::str::from_utf8(file(&b, "timeline.svg")).unwrap());
    // Each key's volumes counted under it, and the instance kept, counted too.
    for label in ["key cmk", "volumes (70)", "key other", "volumes (4)", "instances (1)"] {
        assert!(texts.iter().any(|t| t == label), "{label}: {texts:?}");
    }
    let at = |label: &str| texts.iter().position(|t| t == label).unwrap();
    assert!(at("key cmk") < at("volumes (70)") && at("volumes (70)") < at("key other"));
    assert!(at("key other") < at("volumes (4)") && at("volumes (4)") < at("instances (1)"));
    assert!(!texts.iter().any(|t| t == "vol-05"), "no per-volume lanes in the aggregate view");
    // At 12h 30m every volume is latent; by 1d 9h every one is detached with its key unusable.
    let s = scenario::parse("s", &text, Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let sum = kmsim::analysis::summary::summarize(&r);
    let lanes = kmsim::analysis::lanes::build(&r, &sum);
    let areas = report::chart::areas(&lanes);
    assert_eq!(areas.len(), 3);
    let counts = |a: usize, h: u64| {
        areas[a].series.iter().rev().find(|(t, _)| t.as_ms() <= h * 3_600_000 + 1_800_000).unwrap().1
    };
    assert_eq!(counts(0, 12), [0, 70, 0, 0, 0]);
    assert_eq!(counts(0, 33), [0, 0, 0, 0, 70]);
    // The other key's four volumes, created and never attached: detached.
    assert_eq!(counts(1, 12), [0, 0, 0, 4, 0]);
    // The instance: running, then stopped at 1d.
    assert_eq!((counts(2, 12), counts(2, 30)), ([1, 0, 0, 0, 0], [0, 0, 1, 0, 0]));
}

#[test]
fn run_with_report_writes_five_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["run", scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(), "--quiet", "--report"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["report.html", "summary.md", "timeline.png", "timeline.svg", "trace.jsonl"]);
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args([
            "run",
            scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(),
            "--quiet",
            "--report",
            "/proc/kmsim",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}
