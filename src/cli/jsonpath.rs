//! `-o jsonpath=TEMPLATE`: the subset of kubectl's JSONPath templates people use — fields
//! (`{.a.b}`, `{.a['b.c']}`), indexes and wildcards (`{.items[0]}`, `{.items[*].metadata.name}`),
//! literals (`{"\n"}`), `{range ...}...{end}`, and filters comparing a field with a literal
//! (`[?(@.type=="Ready")]`, `!=`, or just `[?(@.field)]`) — and a precise error naming the
//! position for the rest (recursive descent, slices, unions, other filter expressions).

use serde_json::Value;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
}

/// A template that cannot be used, with where and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("jsonpath template {template:?}, at character {at}: {problem}")]
pub struct TemplateError {
    template: String,
    at: usize,
    problem: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Text(String),
    Path(Path),
    Range(Path, Vec<Node>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Path {
    /// `$`: from the document's root even inside a range.
    root: bool,
    steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path)]` (present and not false/null), or compared with a literal.
    Filter(Vec<Step>, Option<(bool, Value)>),
}

const SUPPORTED: &str = "supported: {.a.b}, {.a['b.c']}, {.items[0]}, {.items[*].x}, {.a.*}, {.a[?(@.b==\"c\")]}, {\"text\"}, {range .items[*]}...{end}";

// === impl Template ===

impl Template {
    /// Parses `text` (kubectl's form, with or without surrounding braces for a single path).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut p = Parser { text, pos: 0 };
        let mut stack: Vec<(Path, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let trimmed = text.trim();
        if !trimmed.contains('{') && (trimmed.starts_with('.') || trimmed.starts_with('$')) {
            // kubectl accepts a bare path: `jsonpath=.metadata.name`.
            let path = p.path(trimmed, 0)?;
            return Ok(Self { nodes: vec![Node::Path(path)] });
        }
        while p.pos < text.len() {
            let rest = &text[p.pos..];
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let start = p.pos + open + 1;
            let close = p.closing(start)?;
            let inner = text[start..close].trim();
            p.pos = close + 1;
            if let Some(path) = inner.strip_prefix("range ") {
                stack.push((p.path(path.trim(), start)?, std::mem::take(&mut nodes)));
            } else if inner == "end" {
                let (path, outer) = stack.pop().ok_or_else(|| p.error(start, "{end} without a {range}"))?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if let Some(lit) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                nodes.push(Node::Text(unescape(lit)));
            } else {
                nodes.push(Node::Path(p.path(inner, start)?));
            }
        }
        if !stack.is_empty() {
            return Err(p.error(text.len(), "a {range} has no {end}"));
        }
        Ok(Self { nodes })
    }

    /// The template applied to `doc`.
    pub fn render(&self, doc: &Value) -> String {
        let mut out = String::new();
        render(&self.nodes, doc, doc, &mut out);
        out
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn render(nodes: &[Node], root: &Value, here: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(path) => {
                let found = path.eval(root, here);
                let texts: Vec<String> = found.into_iter().map(text).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(path, body) => {
                for item in path.eval(root, here) {
                    render(body, root, item, out);
                }
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

// === impl Path ===

impl Path {
    fn eval<'v>(&self, root: &'v Value, here: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![if self.root { root } else { here }];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match (step, v) {
                    (Step::Field(name), Value::Object(m)) => next.extend(m.get(name)),
                    (Step::Index(i), Value::Array(a)) => {
                        let at = if *i < 0 {
                            usize::try_from(-i).ok().and_then(|back| a.len().checked_sub(back))
                        } else {
                            usize::try_from(*i).ok()
                        };
                        next.extend(at.and_then(|at| a.get(at)));
                    }
                    (Step::All, Value::Array(a)) => next.extend(a.iter()),
                    (Step::All, Value::Object(m)) => next.extend(m.values()),
                    (Step::Filter(path, test), Value::Array(a)) => {
                        next.extend(a.iter().filter(|item| matches(item, path, test.as_ref())));
                    }
                    _ => {}
                }
            }
            current = next;
        }
        current
    }
}

/// True when `item` passes a filter: the value at `path` equals (or not) the literal, or, with
/// no comparison, is there and not false or null.
fn matches(item: &Value, path: &[Step], test: Option<&(bool, Value)>) -> bool {
    let found = Path { root: false, steps: path.to_vec() }.eval(item, item);
    match test {
        None => found.iter().any(|v| !matches!(v, Value::Null | Value::Bool(false))),
        Some((equal, literal)) => found.contains(&literal) == *equal,
    }
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
}

// === impl Parser ===

impl Parser<'_> {
    fn error(&self, at: usize, problem: &str) -> TemplateError {
        TemplateError { template: self.text.to_string(), at, problem: problem.to_string() }
    }

    /// The `}` closing the expression that starts at `start`, skipping quoted text.
    fn closing(&self, start: usize) -> Result<usize, TemplateError> {
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for (i, c) in self.text[start..].char_indices() {
            match (quote, c) {
                (Some(_), '\\') if !escaped => {
                    escaped = true;
                    continue;
                }
                (Some(q), c) if c == q && !escaped => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, '}') => return Ok(start + i),
                (None, '{') => return Err(self.error(start + i, "nested '{'")),
                _ => {}
            }
            escaped = false;
        }
        Err(self.error(start, "'{' without a closing '}'"))
    }

    /// A path such as `.items[*].metadata.name`, `@.x`, `$.x` or `.a['b.c']`; `at` is where it
    /// starts in the template (for errors).
    fn path(&self, text: &str, at: usize) -> Result<Path, TemplateError> {
        let bytes = text.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        let root = match bytes.first() {
            Some(b'$') => {
                i = 1;
                true
            }
            Some(b'@') => {
                i = 1;
                false
            }
            Some(b'.' | b'[') => false,
            _ => return Err(self.error(at, &format!("{text:?} is not a path ({SUPPORTED})"))),
        };
        while i < bytes.len() {
            match bytes[i] {
                b'.' if bytes.get(i + 1) == Some(&b'.') => {
                    return Err(self.error(at + i, &format!("recursive descent (..) is not supported; {SUPPORTED}")));
                }
                b'.' if bytes.get(i + 1) == Some(&b'*') => {
                    steps.push(Step::All);
                    i += 2;
                }
                b'.' => {
                    let (name, next) = field_name(text, i + 1);
                    if name.is_empty() {
                        // `{.}`: the current object.
                        if next >= bytes.len() && steps.is_empty() {
                            i = next;
                            continue;
                        }
                        return Err(self.error(at + i, "a '.' with no field name after it"));
                    }
                    steps.push(Step::Field(name));
                    i = next;
                }
                b'[' => {
                    // A filter may hold `]` in its literal: it ends at `)]`.
                    let end = if text[i..].starts_with("[?(") {
                        text[i..].find(")]").map(|c| c + 1)
                    } else {
                        text[i..].find(']')
                    };
                    let close = end.map(|c| i + c).ok_or_else(|| self.error(at + i, "'[' without ']'"))?;
                    steps.push(self.bracket(text[i + 1..close].trim(), at + i)?);
                    i = close + 1;
                }
                _ => return Err(self.error(at + i, &format!("unexpected {:?}; {SUPPORTED}", &text[i..]))),
            }
        }
        Ok(Path { root, steps })
    }

    fn bracket(&self, inner: &str, at: usize) -> Result<Step, TemplateError> {
        if inner == "*" {
            return Ok(Step::All);
        }
        if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            return Ok(Step::Field(q.to_string()));
        }
        if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            return Ok(Step::Field(q.to_string()));
        }
        if let Ok(n) = inner.parse::<i64>() {
            return Ok(Step::Index(n));
        }
        if let Some(expr) = inner.strip_prefix("?(").and_then(|e| e.strip_suffix(')')) {
            return self.filter(expr.trim(), at);
        }
        let what = if inner.starts_with('?') {
            "filters other than [?(@.a==\"b\")]"
        } else if inner.contains(':') {
            "slices ([a:b])"
        } else if inner.contains(',') {
            "unions ([a,b])"
        } else {
            "this subscript"
        };
        Err(self.error(at, &format!("{what} are not supported; {SUPPORTED}")))
    }
}

// === impl Parser (filters) ===

impl Parser<'_> {
    /// `@.a.b`, `@.a.b == LITERAL` or `@.a.b != LITERAL` (a string in either quote, a number,
    /// true, false or null).
    fn filter(&self, expr: &str, at: usize) -> Result<Step, TemplateError> {
        let unsupported = || self.error(at, &format!("this filter is not supported; {SUPPORTED}"));
        let (lhs, test) = match expr.find("==").map(|i| (i, true)).or_else(|| expr.find("!=").map(|i| (i, false))) {
            Some((i, equal)) => {
                let literal = literal(expr[i + 2..].trim()).ok_or_else(unsupported)?;
                (expr[..i].trim(), Some((equal, literal)))
            }
            None => (expr, None),
        };
        if !lhs.starts_with("@.") || lhs.contains(['<', '>', '&', '|', '(', ' ']) {
            return Err(unsupported());
        }
        let path = self.path(lhs, at)?;
        Ok(Step::Filter(path.steps, test))
    }
}

fn literal(text: &str) -> Option<Value> {
    let quoted = |q: char| text.strip_prefix(q).and_then(|t| t.strip_suffix(q));
    if let Some(s) = quoted('"').or_else(|| quoted('\'')) {
        return Some(Value::String(s.to_string()));
    }
    serde_json::from_str::<Value>(text).ok().filter(|v| !v.is_object() && !v.is_array())
}

/// A field name from `start`: up to `.`, `[` or the end, with `\.` for a literal dot.
fn field_name(text: &str, start: usize) -> (String, usize) {
    let mut name = String::new();
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some((_, '.'))) => {
                name.push('.');
                chars.next();
            }
            '.' | '[' => return (name, start + i),
            c => name.push(c),
        }
    }
    (name, text.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}}, "spec": {"n": 1}},
            {"metadata": {"name": "b"}, "spec": {"n": 2}}]})
    }

    fn render(t: &str) -> String {
        Template::parse(t).unwrap_or_else(|e| panic!("{e}")).render(&list())
    }

    #[test]
    fn fields_wildcards_and_indexes() {
        assert_eq!(render("{.items[*].metadata.name}"), "a b");
        assert_eq!(render("{.items[0].spec.n}"), "1");
        assert_eq!(render("{.items[-1].metadata.name}"), "b");
        assert_eq!(render("{.kind}"), "List");
        assert_eq!(render(".kind"), "List", "a bare path works as in kubectl");
        assert_eq!(render("{.items[0].metadata.labels['app.kubernetes.io/name']}"), "x");
        assert_eq!(render("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}"), "x");
        assert_eq!(render("{.missing.field}"), "", "missing keys print nothing");
        assert_eq!(render("{.items[0].spec}"), "{\"n\":1}");
    }

    #[test]
    fn filters_compare_a_field_with_a_literal() {
        let conds = json!({"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Active", "status": "False", "severity": "Info"}]});
        let r = |t: &str| Template::parse(t).unwrap_or_else(|e| panic!("{e}")).render(&conds);
        assert_eq!(r("{.conditions[?(@.type==\"Ready\")].status}"), "True");
        assert_eq!(r("{.conditions[?(@.type=='Active')].status}"), "False");
        assert_eq!(r("{.conditions[?(@.type!=\"Ready\")].type}"), "Active");
        assert_eq!(r("{.conditions[?(@.severity)].type}"), "Active");
        assert_eq!(r("{.conditions[?(@.type==\"a]b\")].type}"), "", "a ] inside the literal");
    }

    #[test]
    fn text_literals_and_ranges() {
        assert_eq!(render("{range .items[*]}{.metadata.name}={.spec.n}{\"\\n\"}{end}"), "a=1\nb=2\n");
        assert_eq!(render("kind: {.kind}!"), "kind: List!");
        assert_eq!(render("{range .items[*]}{$.kind}/{@.metadata.name} {end}"), "List/a List/b ");
    }

    #[test]
    fn unsupported_syntax_is_named_with_its_position() {
        for (t, want) in [
            ("{.items[?(@.x<1)]}", "this filter is not supported"),
            ("{.items[?(@.a==1 && @.b==2)]}", "this filter is not supported"),
            ("{..name}", "recursive descent"),
            ("{.items[0:1]}", "slices"),
            ("{.items[0,1]}", "unions"),
            ("{range .items[*]}{.x}", "no {end}"),
            ("{end}", "without a {range}"),
            ("{.a", "without a closing"),
            ("{name}", "is not a path"),
        ] {
            let err = Template::parse(t).expect_err(t).to_string();
            assert!(err.contains(want) && err.contains("at character"), "{t}: {err}");
        }
    }
}
