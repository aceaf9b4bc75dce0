//! Opens a generated report.html and index.html in headless Chromium: the pages must render
//! (a screenshot that is not blank), show the verdict and the timeline (in the DOM after
//! scripts ran), log no console error, and the report must fit the window's width. Skipped,
//! loudly, only where Chromium cannot be found or installed.

mod report_support;

use harness::campaign::{
    CampaignSummary, Cell, RunRecord, RunStatus, Seeds, Shard, write_campaign_files,
};
use harness::report::write_report;
use report_support::FakeRun;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BROWSER_PATIENCE: Duration = Duration::from_secs(90);

fn find_chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("which").arg(name).output()
            && output.status.success()
        {
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if !path.is_empty() {
                return Some(PathBuf::from(path));
            }
        }
    }
    None
}

/// Chromium, installed with apt-get when missing (as `.ci/run` does).
fn chromium() -> Option<PathBuf> {
    if let Some(path) = find_chromium() {
        return Some(path);
    }
    eprintln!("chromium not found: trying `apt-get install -y chromium`");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium",
        ])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed { find_chromium() } else { None }
}

/// Kills the browser if the test fails while it runs.
struct Browser(Option<Child>);

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs Chromium on `page` to completion; its output goes to files (a pipe nobody reads
/// while we wait would fill up and stall it).
fn run_browser(chromium: &Path, profile: &Path, extra: &[String], page: &Path) -> BrowserOutput {
    std::fs::create_dir_all(profile).expect("profile dir");
    let stdout_path = profile.join("stdout.txt");
    let stderr_path = profile.join("stderr.txt");
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let mut browser = Browser(Some(child));
    let started = Instant::now();
    loop {
        let child = browser.0.as_mut().expect("child");
        if child.try_wait().expect("poll chromium").is_some() {
            break;
        }
        assert!(
            started.elapsed() < BROWSER_PATIENCE,
            "chromium did not finish with {page:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.0.take();
    BrowserOutput {
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

struct BrowserOutput {
    stdout: String,
    stderr: String,
}

/// Console messages Chromium logged for the page (with `--enable-logging=stderr`).
fn console_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// The screenshot decodes, and is not one flat colour: many colours, and a good share of
/// pixels that are not the page background.
fn assert_not_blank(png_path: &Path) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("decode");
    let bytes = &buffer[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "colour screenshot expected, got {:?}",
        info.color_type
    );
    let pixels: Vec<[u8; 3]> = bytes
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut colours: Vec<[u8; 3]> = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    let background = pixels[0];
    let different = pixels.iter().filter(|p| **p != background).count();
    assert!(
        colours.len() >= 16,
        "only {} colours: blank page?",
        colours.len()
    );
    assert!(
        different * 20 > pixels.len(),
        "only {different} of {} pixels differ from the background",
        pixels.len()
    );
}

fn check_page(chromium: &Path, page: &Path, work: &Path, must_contain: &[&str]) {
    let shot = work.join(format!(
        "{}.png",
        page.file_stem().and_then(|s| s.to_str()).unwrap_or("page")
    ));
    let screenshot = run_browser(
        chromium,
        &work.join("profile-shot"),
        &[format!("--screenshot={}", shot.display())],
        page,
    );
    let shot_log = screenshot.stderr;
    assert!(
        shot.exists(),
        "no screenshot of {page:?}; chromium said:\n{shot_log}"
    );
    assert_not_blank(&shot);
    let dump = run_browser(
        chromium,
        &work.join("profile-dom"),
        &["--dump-dom".into()],
        page,
    );
    let dom = dump.stdout;
    let dom_log = dump.stderr;
    for needle in must_contain {
        assert!(dom.contains(needle), "{page:?}: the DOM lacks {needle:?}");
    }
    let errors: Vec<String> = console_errors(&shot_log)
        .into_iter()
        .chain(console_errors(&dom_log))
        .collect();
    assert!(
        errors.is_empty(),
        "{page:?}: console errors:\n{}",
        errors.join("\n")
    );
}

/// The document's scroll width and the viewport's width, in CSS pixels, as Chromium lays out
/// `page`: a page wider than its window scrolls sideways as a whole. Measured by a copy of the
/// page with a probe script at the end of its body, read back from the dumped DOM.
fn page_and_viewport_width(chromium: &Path, page: &Path, work: &Path) -> (u64, u64) {
    const PROBE: &str = "<script>document.body.setAttribute('data-widths', document.documentElement.scrollWidth + ' ' + document.documentElement.clientWidth);</script>";
    let html = std::fs::read_to_string(page).expect("read page");
    assert!(html.contains("</body>"), "{page:?} has no </body>");
    let probed = page.with_file_name("probed.html");
    std::fs::write(
        &probed,
        html.replacen("</body>", &format!("{PROBE}</body>"), 1),
    )
    .expect("write probed page");
    let dump = run_browser(
        chromium,
        &work.join("profile-widths"),
        &["--dump-dom".into()],
        &probed,
    );
    let widths = dump
        .stdout
        .split("data-widths=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no measurement in the DOM; chromium said:\n{}", dump.stderr));
    let mut numbers = widths
        .split(' ')
        .map(|n| n.parse::<u64>().expect("a width"));
    let page_width = numbers.next().expect("scroll width");
    let viewport = numbers.next().expect("client width");
    (page_width, viewport)
}

#[test]
fn report_and_index_render_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED report_and_index_render_in_headless_chromium: chromium is not\n\
             installed and `apt-get install -y chromium` failed. Install it to run this test.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let campaign_dir = work.path().join("campaign");
    let run_dir = campaign_dir.join("broken").join("42-20260101T000000Z");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    FakeRun {
        scenario_name: "broken".into(),
        ..FakeRun::default()
    }
    .write(&run_dir);
    let report = write_report(&run_dir).expect("report");
    check_page(
        &chromium,
        &report,
        work.path(),
        &[
            "id=\"verdict\"",
            "UNEXPECTED",
            "<svg class=\"timeline\"",
            "class=\"op-ok\"",
            "iframe class=\"porcupine\"",
        ],
    );
    // An agreement failure with four full 64-digit digests: everything stays within the window.
    let (page_width, viewport) = page_and_viewport_width(&chromium, &report, work.path());
    assert!(
        page_width <= viewport,
        "the report is {page_width} px wide in a {viewport} px window"
    );

    let record = |status: RunStatus, seed: u64, dir: Option<PathBuf>| RunRecord {
        cell: Cell {
            index: seed as usize,
            scenario: "broken".into(),
            seed,
        },
        scenario_name: "broken".into(),
        status,
        outcome: "violation".into(),
        expected: "pass".into(),
        duration_ms: 5300,
        run_dir: dir,
        summary: "linearizability: 1 of 4 keys are not linearizable".into(),
        reproduce: format!("gauntlet run broken --seed {seed}"),
        log_tail: String::new(),
    };
    let summary = CampaignSummary {
        dir: campaign_dir.clone(),
        name: "campaign".into(),
        backend: Default::default(),
        shard: Shard::default(),
        seeds: Seeds::default(),
        budget_s: Some(600),
        jobs: 2,
        elapsed_ms: 12_000,
        records: vec![
            record(RunStatus::AsExpected, 41, None),
            record(RunStatus::Unexpected, 42, Some(run_dir.clone())),
            record(RunStatus::Skipped, 43, None),
        ],
    };
    write_campaign_files(&summary).expect("campaign files");
    check_page(
        &chromium,
        &campaign_dir.join("index.html"),
        work.path(),
        &[
            "id=\"verdict\"",
            "id=\"runs\"",
            "broken/42-20260101T000000Z/report.html",
        ],
    );
}
