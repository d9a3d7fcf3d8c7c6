//! `sluice get -w`: the list, then a row (or object) for every change, from a watch that resumes
//! where it left off when the server ends it and lists again when its history has moved on.

use std::process::ExitCode;

use anyhow::anyhow;
use futures::TryStreamExt;
use kube::core::WatchEvent;
use serde_json::Value;

use super::client::{encode, explain};
use super::inspect::Query;
use super::output::{self, OutputFormat};

/// The server ends a watch after this long (below the client's read timeout); it is resumed.
const WATCH_SECONDS: u32 = 290;

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Prints what `query` names, then each change, until interrupted.
pub async fn run(client: &kube::Client, query: &Query<'_>, format: Option<&OutputFormat>) -> anyhow::Result<ExitCode> {
    let table = matches!(format, None | Some(OutputFormat::Wide));
    let mut printer = Printer { format, table, namespaces: query.across_namespaces(), widths: None, query };
    let mut rv = printer.list(client).await?;
    // One object is watched through its collection, selected by name.
    let name = query.name.map(|n| format!("fieldSelector={}", encode(&format!("metadata.name={n}"))));
    let collection = Query { name: None, ..*query };
    loop {
        let mut params = vec![
            "watch=1".to_string(),
            format!("resourceVersion={rv}"),
            "allowWatchBookmarks=true".to_string(),
            format!("timeoutSeconds={WATCH_SECONDS}"),
        ];
        params.extend(name.clone());
        let accept = if table { TABLE } else { "application/json" };
        let req = http::Request::get(collection.path(&params)).header(http::header::ACCEPT, accept).body(Vec::new())?;
        let events = client.request_events::<Value>(req).await.map_err(|e| anyhow!(explain(e)))?;
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.try_next().await.map_err(|e| anyhow!(explain(e)))? {
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    if let Some(v) = version(&o, table) {
                        rv = v;
                    }
                    printer.event(client, o).await?;
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                WatchEvent::Error(e) if e.code == 410 => {
                    // Too far behind for the server's history: list again, then watch on.
                    rv = printer.list(client).await?;
                    break;
                }
                WatchEvent::Error(e) => return Err(anyhow!("the watch failed: {}", e.message)),
            }
        }
    }
}

/// The resource version an event carries: the object's, or its row's in a Table.
fn version(o: &Value, table: bool) -> Option<String> {
    let meta = if table { &o["rows"][0]["object"]["metadata"] } else { &o["metadata"] };
    meta["resourceVersion"].as_str().map(str::to_string)
}

struct Printer<'a> {
    format: Option<&'a OutputFormat>,
    table: bool,
    namespaces: bool,
    /// The columns' widths once the header is printed.
    widths: Option<Vec<usize>>,
    query: &'a Query<'a>,
}

// === impl Printer ===

impl Printer<'_> {
    /// Lists and prints what is there now; returns the list's resource version.
    async fn list(&mut self, client: &kube::Client) -> anyhow::Result<String> {
        let mut answer = self.query.fetch(client, self.table).await?;
        let rv = answer["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
        if self.table {
            if self.format == Some(&OutputFormat::Wide) {
                let objects = self.query.fetch(client, false).await?;
                let items = objects["items"].as_array().cloned().unwrap_or_else(|| vec![objects.clone()]);
                output::widen(&mut answer, self.query.kind, &items);
            }
            self.rows(&answer);
        } else if let Some(f) = self.format {
            let items = answer.get("items").cloned().unwrap_or_else(|| Value::Array(vec![answer.clone()]));
            for item in items.as_array().into_iter().flatten() {
                print!("{}", output::render_objects(f, self.query.kind, item)?);
            }
        }
        Ok(rv)
    }

    async fn event(&mut self, client: &kube::Client, mut o: Value) -> anyhow::Result<()> {
        match self.format {
            Some(f) if !self.table => print!("{}", output::render_objects(f, self.query.kind, &o)?),
            Some(OutputFormat::Wide) => {
                // The Table row carries only metadata: the wide columns come from the object
                // as it is now (none once it is deleted).
                let meta = &o["rows"][0]["object"]["metadata"];
                let (name, ns) = (meta["name"].as_str().unwrap_or(""), meta["namespace"].as_str());
                let one = Query { kind: self.query.kind, ns, name: Some(name), selector: None };
                let obj = one.fetch(client, false).await.unwrap_or_default();
                output::widen(&mut o, self.query.kind, &[obj]);
                self.rows(&o);
            }
            _ => self.rows(&o),
        }
        Ok(())
    }

    /// Prints a Table's rows, with the header before the first.
    fn rows(&mut self, t: &Value) {
        let grid = output::grid(t, self.namespaces);
        if grid.len() < 2 {
            return;
        }
        let (header, rows) = grid.split_at(1);
        let widths = match &self.widths {
            Some(w) => w.clone(),
            None => {
                let w = output::widths(&grid);
                print!("{}", output::lines(header, &w));
                self.widths = Some(w.clone());
                w
            }
        };
        print!("{}", output::lines(rows, &widths));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}
