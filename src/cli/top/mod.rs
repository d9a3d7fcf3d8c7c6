//! `sluice top`: a live view of the router's `/metrics` (the same exposition a Prometheus
//! server scrapes), refreshed every second: for each service (its revisions summed, `(all)`)
//! and each of its revisions, the share of the route's traffic, requests/s, 5xx share,
//! p50/p99 latency, requests in flight against capacity, desired/actual instances. A family
//! the router does not export shows `-`.
//!
//! On a terminal it is a full-screen ratatui UI (crossterm backend). `--once` is for scripts
//! and tests: it scrapes twice, one interval apart, draws one frame to ratatui's
//! `TestBackend` of `--width` columns and prints it as text (no terminal needed).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ApiArgs;
use super::rollout::{Scraper, router_metrics_url};

mod model;
mod view;

use model::Snapshot;
use view::{Key, Sort, View};

/// How often the figures are refreshed.
const TICK: Duration = Duration::from_secs(1);

/// Keys waiting to be handled (typed faster than drawn are dropped past this).
const KEY_QUEUE: usize = 16;

/// `sluice top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The router's metrics (default: the address `sluice serve` wrote to endpoints.json).
    #[arg(long, value_name = "URL")]
    metrics_url: Option<String>,
    /// Show only this namespace (`f` changes it).
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Print one frame as text and exit (after two scrapes one second apart), for scripts.
    #[arg(long)]
    once: bool,
    /// With --once: the frame's width in columns.
    #[arg(long, default_value_t = 120, value_name = "COLUMNS", requires = "once",
          value_parser = clap::value_parser!(u16).range(60..=1000))]
    width: u16,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `sluice top`.
pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let scraper = Scraper::new(router_metrics_url(args.metrics_url.as_deref(), &args.api)?);
    let view = View {
        url: scraper.url().to_string(),
        sort: Sort::Rps,
        namespace: (!args.all_namespaces).then(|| args.namespace.clone()),
        rows: Vec::new(),
        error: None,
    };
    if args.once {
        print!("{}", once(&scraper, view, args.width).await?);
        return Ok(ExitCode::SUCCESS);
    }
    if !std::io::stdout().is_terminal() {
        bail!("sluice top draws on a terminal; for text output use `sluice top --once`");
    }
    live(&scraper, view).await?;
    Ok(ExitCode::SUCCESS)
}

/// One frame as text: two scrapes `TICK` apart, drawn to a `TestBackend` `width` wide.
async fn once(scraper: &Scraper, mut view: View, width: u16) -> anyhow::Result<String> {
    let first = Snapshot::from_samples(&scraper.samples().await?);
    let started = Instant::now();
    tokio::time::sleep(TICK).await;
    let second = Snapshot::from_samples(&scraper.samples().await?);
    view.rows = model::rows(&second, Some((&first, started.elapsed())));
    let height = u16::try_from(view.shown().len()).unwrap_or(u16::MAX).saturating_add(3).min(1000);
    Ok(frame_text(&view, width, height))
}

/// `view` drawn on a `width` × `height` test backend, one line per row, trailing blanks cut.
pub fn frame_text(view: &View, width: u16, height: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(never) => match never {},
    };
    let _ = terminal.draw(|f| view.draw(f));
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The full-screen loop: scrape and draw each tick, handle keys as they come.
async fn live(scraper: &Scraper, mut view: View) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let (tx, mut keys) = mpsc::channel(KEY_QUEUE);
    // crossterm's reader blocks; it lives on its own thread and ends with the process.
    std::thread::spawn(move || read_keys(tx));
    let mut tick = tokio::time::interval(TICK);
    // A slow scrape delays the next one rather than bunching them up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(Snapshot, Instant)> = None;
    let result = loop {
        tokio::select! {
            _ = tick.tick() => {
                match scraper.samples().await {
                    Ok(samples) => {
                        let now = Snapshot::from_samples(&samples);
                        let at = Instant::now();
                        view.rows = model::rows(&now, last.as_ref().map(|(s, t)| (s, at - *t)));
                        view.error = None;
                        last = Some((now, at));
                    }
                    Err(e) => view.error = Some(format!("{e:#}")),
                }
            }
            key = keys.recv() => match key {
                Some(key) if view.press(key) => {}
                _ => break Ok(()),
            },
        }
        if let Err(e) = terminal.draw(|f| view.draw(f)) {
            break Err(e).context("drawing");
        }
    };
    ratatui::restore();
    result
}

/// Forwards the keys of `sluice top` until the receiver is gone or the terminal fails.
fn read_keys(tx: mpsc::Sender<Key>) {
    while let Ok(ev) = event::read() {
        let Event::Key(k) = ev else { continue };
        if k.kind != KeyEventKind::Press {
            continue;
        }
        let key = match k.code {
            KeyCode::Esc => Some(Key::Quit),
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Quit),
            KeyCode::Char(c) => Key::of_char(c),
            _ => None,
        };
        if let Some(key) = key
            && tx.blocking_send(key).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
