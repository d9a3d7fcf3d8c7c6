//! The lines the fast lane sends say what the router's rewrite of a header map says.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::proxy::Client;
use crate::proxy::deadline::Spare;
use crate::proxy::headers;
use crate::trace::Settled;

fn client(https: bool) -> Client {
    Client { ip: HeaderValue::from_static("10.1.2.3"), https, spare: Spare::new() }
}

/// Fields as (lowercased name, value), grouped by name in first-seen order (as a header map
/// iterates them): the order of different names carries no meaning, that of one name's values
/// does.
fn grouped(fields: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut names: Vec<String> = Vec::new();
    let fields: Vec<(String, String)> = fields.into_iter().collect();
    for (name, _) in &fields {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names.sort();
    names.iter().flat_map(|n| fields.iter().filter(move |(name, _)| name == n).cloned()).collect()
}

/// What the header-map path forwards for `fields`.
fn via_map(fields: &[(&str, &str)], client: &Client, trace: Settled) -> Vec<(String, String)> {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
        map.append(name, HeaderValue::from_str(value).expect("value"));
    }
    headers::strip_request(&mut map);
    headers::set_forwarded(&mut map, &client.ip, client.https);
    trace.apply(&mut map);
    grouped(map.iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())))
}

/// What the lines say for `fields`.
fn via_lines(fields: &[(&str, &str)], client: &Client, trace: Settled) -> (String, Vec<(String, String)>) {
    let host = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).map_or("", |(_, v)| *v);
    // The fields as they lie in a head, so runs of them are copied as they are; the values
    // of every second field come from elsewhere.
    let head: String = fields.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let mut at = 0;
    let mut pairs = Vec::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        let value_at = at + name.len() + 2;
        let value = if i % 2 == 0 { &head.as_bytes()[value_at..value_at + value.len()] } else { value.as_bytes() };
        pairs.push((&head.as_bytes()[at..at + name.len()], value));
        at = value_at + value.len() + 2;
    }
    let lines = write_lines(head.as_bytes(), pairs.into_iter(), host, &client.forwarded(trace), 0);
    let text = String::from_utf8(lines.to_vec()).expect("text");
    assert!(text.ends_with("\r\n"), "{text:?}");
    let parsed = text
        .trim_end_matches("\r\n")
        .split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("a field line");
            (name.to_ascii_lowercase(), value.to_string())
        })
        .collect::<Vec<_>>();
    (text, grouped(parsed))
}

#[test]
fn the_lines_say_what_the_rewritten_map_says() {
    let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cases: [&[(&str, &str)]; 7] = [
        &[("Host", "hello.default"), ("Accept", "*/*")],
        &[("host", "a.b"), ("X-Forwarded-For", "1.1.1.1"), ("x-forwarded-for", "2.2.2.2, 3.3.3.3"), ("X-A", "1")],
        &[("Host", "a.b"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"), ("X-A", "2")],
        &[("Host", "a.b"), ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("TE", "trailers, deflate")],
        &[
            ("Host", "a.b"),
            ("TE", "deflate"),
            ("Trailer", "x"),
            ("Proxy-Authorization", "Basic x"),
            ("Proxy-Connection", "y"),
        ],
        &[("Host", "a.b"), ("traceparent", valid), ("tracestate", "k=v"), ("X-A", "1"), ("x-a", "2")],
        &[("Host", "a.b"), ("traceparent", "junk"), ("tracestate", "k=v"), ("Upgrade", "h2c")],
    ];
    for fields in cases {
        let parent = fields.iter().find(|(n, _)| *n == "traceparent").map(|(_, v)| v.as_bytes());
        for generate in [true, false] {
            let trace = trace::settle_bytes(parent, generate);
            for https in [false, true] {
                let client = client(https);
                let (text, lines) = via_lines(fields, &client, trace);
                assert_eq!(
                    lines,
                    via_map(fields, &client, trace),
                    "{fields:?} (https {https}, generate {generate}):\n{text}"
                );
            }
        }
    }
}

#[test]
fn the_lines_keep_the_clients_case_and_order() {
    let fields = [("Host", "a.b"), ("X-Second", "2"), ("X-First", "1"), ("X-Second", "3")];
    let (text, _) = via_lines(&fields, &client(false), Settled::Untraced);
    assert_eq!(
        text,
        "Host: a.b\r\nX-Second: 2\r\nX-First: 1\r\nX-Second: 3\r\nx-forwarded-for: 10.1.2.3\r\nx-forwarded-proto: http\r\nx-forwarded-host: a.b\r\n"
    );
}
