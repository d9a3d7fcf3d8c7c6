//! The flags `sluice service create` and `update` share, as kn spells them, and how each edits a
//! Service object: only what is given changes.

use clap::Args;
use serde_json::{Map, Value, json};

/// The prefix of Knative's autoscaling annotations.
const AUTOSCALING: &str = "autoscaling.knative.dev/";
/// Knative's annotation for the fewest instances of a revision.
pub const MIN_SCALE: &str = "autoscaling.knative.dev/min-scale";
/// Knative's annotation for the most instances of a revision.
pub const MAX_SCALE: &str = "autoscaling.knative.dev/max-scale";

/// What a service's revision template should have (kn's flag names).
#[derive(Debug, Default, Args)]
pub struct TemplateFlags {
    /// Image to run (a name in the image table, e.g. ghcr.io/knative/helloworld-go:latest).
    #[arg(long)]
    pub image: Option<String>,
    /// Environment variable NAME=VALUE (repeatable); NAME- removes it.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The port the container listens on (Sluice still passes a free one in $PORT).
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Annotation KEY=VALUE on the service and its revisions (repeatable); KEY- removes it.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Fewest instances (autoscaling.knative.dev/min-scale).
    #[arg(long, value_name = "N")]
    pub scale_min: Option<u32>,
    /// Most instances (autoscaling.knative.dev/max-scale; 0 means no limit).
    #[arg(long, value_name = "N")]
    pub scale_max: Option<u32>,
    /// Requests one instance handles at once (containerConcurrency; 0 means no limit).
    #[arg(long, value_name = "N")]
    pub concurrency_limit: Option<u32>,
}

/// A flag whose value cannot be used, named with the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value:?}: {problem}")]
pub struct FlagError {
    flag: &'static str,
    value: String,
    problem: &'static str,
}

/// One `NAME=VALUE` or `NAME-` flag value.
#[derive(Debug, PartialEq, Eq)]
enum Edit<'a> {
    Set(&'a str, &'a str),
    Remove(&'a str),
}

// === impl Edit ===

impl Edit<'_> {
    fn key(&self) -> &str {
        match self {
            Edit::Set(k, _) | Edit::Remove(k) => k,
        }
    }
}

// === impl TemplateFlags ===

impl TemplateFlags {
    /// A new Service `name` in `ns` with these flags applied; `--image` is required.
    pub fn new_service(&self, name: &str, ns: &str) -> Result<Value, FlagError> {
        if self.image.is_none() {
            return Err(FlagError {
                flag: "--image",
                value: String::new(),
                problem: "is required to create a service",
            });
        }
        let mut svc = json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": {"containers": [{}]}}},
        });
        self.apply(&mut svc)?;
        Ok(svc)
    }

    /// Changes what the flags name in `svc` (a Service), and nothing else.
    pub fn apply(&self, svc: &mut Value) -> Result<(), FlagError> {
        let env = self.env.iter().map(|e| parse("--env", e)).collect::<Result<Vec<_>, _>>()?;
        let annotations = self.annotation.iter().map(|a| parse("--annotation", a)).collect::<Result<Vec<_>, _>>()?;
        if let (Some(min), Some(max)) = (self.scale_min, self.scale_max)
            && max != 0
            && min > max
        {
            return Err(FlagError { flag: "--scale-min", value: min.to_string(), problem: "is more than --scale-max" });
        }
        for edit in &annotations {
            // Knative refuses autoscaling annotations on the Service itself (as kn, they go on
            // the revision template only).
            if !edit.key().starts_with(AUTOSCALING) {
                edit_map(object_at(svc, &["metadata", "annotations"]), edit);
            }
            edit_map(object_at(svc, &["spec", "template", "metadata", "annotations"]), edit);
        }
        let template_annotations = object_at(svc, &["spec", "template", "metadata", "annotations"]);
        if let Some(min) = self.scale_min {
            template_annotations.insert(MIN_SCALE.into(), min.to_string().into());
        }
        if let Some(max) = self.scale_max {
            template_annotations.insert(MAX_SCALE.into(), max.to_string().into());
        }
        let spec = object_at(svc, &["spec", "template", "spec"]);
        if let Some(limit) = self.concurrency_limit {
            spec.insert("containerConcurrency".into(), limit.into());
        }
        let container = serving_container(spec);
        if let Some(image) = &self.image {
            container.insert("image".into(), image.clone().into());
        }
        if let Some(port) = self.port {
            container.insert("ports".into(), json!([{"containerPort": port}]));
        }
        if !env.is_empty() {
            edit_env(container, &env);
        }
        // No empty `annotations: {}` (or `metadata: {}` around it) left behind.
        if let Some(template) = svc.pointer_mut("/spec/template") {
            remove_empty(template, "metadata", "annotations");
        }
        remove_empty(svc, "metadata", "annotations");
        Ok(())
    }
}

/// Splits `NAME=VALUE` (set) or `NAME-` (remove).
fn parse<'a>(flag: &'static str, text: &'a str) -> Result<Edit<'a>, FlagError> {
    let bad = |problem| FlagError { flag, value: text.to_string(), problem };
    if let Some((name, value)) = text.split_once('=') {
        if name.is_empty() {
            return Err(bad("the name before '=' is empty"));
        }
        return Ok(Edit::Set(name, value));
    }
    match text.strip_suffix('-') {
        Some(name) if !name.is_empty() => Ok(Edit::Remove(name)),
        _ => Err(bad("want NAME=VALUE, or NAME- to remove it")),
    }
}

/// The object at `path` under `value`, created (and replacing a non-object) as needed.
fn object_at<'v>(value: &'v mut Value, path: &[&str]) -> &'v mut Map<String, Value> {
    let mut here = value;
    for key in path {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        let map = here.as_object_mut().expect("made an object just above");
        here = map.entry(*key).or_insert_with(|| Value::Object(Map::new()));
    }
    if !here.is_object() {
        *here = Value::Object(Map::new());
    }
    here.as_object_mut().expect("made an object just above")
}

/// Removes `parent.key` when it is an empty object, and then `parent` when that is empty.
fn remove_empty(value: &mut Value, parent: &str, key: &str) {
    if let Some(p) = value.get_mut(parent).and_then(Value::as_object_mut) {
        if !p.get(key).and_then(Value::as_object).is_some_and(Map::is_empty) {
            return;
        }
        p.remove(key);
        if p.is_empty()
            && let Some(v) = value.as_object_mut()
        {
            v.remove(parent);
        }
    }
}

fn edit_map(map: &mut Map<String, Value>, edit: &Edit<'_>) {
    match *edit {
        Edit::Set(k, v) => {
            map.insert(k.into(), v.into());
        }
        Edit::Remove(k) => {
            map.remove(k);
        }
    }
}

/// The container that receives traffic: the one declaring a port, else the first (made when
/// there is none).
fn serving_container(spec: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let containers = spec.entry("containers").or_insert_with(|| json!([{}]));
    if containers.as_array().is_none_or(Vec::is_empty) {
        *containers = json!([{}]);
    }
    let list = containers.as_array_mut().expect("made a non-empty array just above");
    let index = list.iter().position(|c| c.get("ports").and_then(Value::as_array).is_some_and(|p| !p.is_empty()));
    let container = &mut list[index.unwrap_or(0)];
    if !container.is_object() {
        *container = json!({});
    }
    container.as_object_mut().expect("made an object just above")
}

/// Sets or removes variables in `container.env`, keeping the others in their order.
fn edit_env(container: &mut Map<String, Value>, edits: &[Edit<'_>]) {
    let env = container.entry("env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    let list = env.as_array_mut().expect("made an array just above");
    for edit in edits {
        match *edit {
            Edit::Set(name, value) => {
                match list.iter_mut().find(|e| e["name"] == name) {
                    // A literal value replaces a valueFrom.
                    Some(existing) => *existing = json!({"name": name, "value": value}),
                    None => list.push(json!({"name": name, "value": value})),
                }
            }
            Edit::Remove(name) => list.retain(|e| e["name"] != name),
        }
    }
    if list.is_empty() {
        container.remove("env");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> TemplateFlags {
        TemplateFlags::default()
    }

    #[test]
    fn create_builds_the_template_kn_would() {
        let f = TemplateFlags {
            image: Some("img".into()),
            env: vec!["TARGET=world".into(), "EMPTY=".into()],
            port: Some(9000),
            annotation: vec!["team=a".into(), "autoscaling.knative.dev/target=10".into()],
            scale_min: Some(1),
            scale_max: Some(3),
            concurrency_limit: Some(10),
        };
        let svc = f.new_service("hello", "ns").expect("valid");
        assert_eq!(svc["metadata"], json!({"name": "hello", "namespace": "ns", "annotations": {"team": "a"}}));
        let t = &svc["spec"]["template"];
        assert_eq!(
            t["metadata"]["annotations"],
            json!({"team": "a", "autoscaling.knative.dev/target": "10", MIN_SCALE: "1", MAX_SCALE: "3"}),
            "autoscaling annotations only on the template, as Knative wants"
        );
        assert_eq!(t["spec"]["containerConcurrency"], 10);
        assert_eq!(
            t["spec"]["containers"],
            json!([{"image": "img", "ports": [{"containerPort": 9000}],
                "env": [{"name": "TARGET", "value": "world"}, {"name": "EMPTY", "value": ""}]}])
        );
    }

    #[test]
    fn create_without_an_image_is_refused() {
        let err = flags().new_service("a", "default").expect_err("no image");
        assert!(err.to_string().contains("--image"), "{err}");
    }

    #[test]
    fn update_changes_only_what_is_given_and_removes_with_a_dash() {
        let mut svc = json!({"metadata": {"name": "a"}, "spec": {"template": {"spec": {
            "containerConcurrency": 5,
            "containers": [{"image": "old", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}});
        let f = TemplateFlags { env: vec!["A-".into(), "B=3".into(), "C=4".into()], ..flags() };
        f.apply(&mut svc).expect("valid");
        let c = &svc["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "old");
        assert_eq!(c["env"], json!([{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]));
        assert_eq!(svc["spec"]["template"]["spec"]["containerConcurrency"], 5);
        assert!(svc["metadata"].get("annotations").is_none(), "no empty annotations added: {svc}");
        assert!(svc["spec"]["template"].get("metadata").is_none(), "{svc}");
    }

    #[test]
    fn the_container_with_a_port_is_the_one_changed() {
        let mut svc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "s"}, {"name": "app", "image": "a", "ports": [{"containerPort": 80}]}]}}}});
        TemplateFlags { image: Some("new".into()), ..flags() }.apply(&mut svc).expect("valid");
        assert_eq!(svc["spec"]["template"]["spec"]["containers"][0]["image"], "s");
        assert_eq!(svc["spec"]["template"]["spec"]["containers"][1]["image"], "new");
    }

    #[test]
    fn malformed_values_name_the_flag() {
        for (f, want) in [
            (TemplateFlags { env: vec!["NOVALUE".into()], ..flags() }, "--env \"NOVALUE\""),
            (TemplateFlags { env: vec!["=x".into()], ..flags() }, "--env \"=x\""),
            (TemplateFlags { annotation: vec!["-".into()], ..flags() }, "--annotation \"-\""),
            (TemplateFlags { scale_min: Some(4), scale_max: Some(2), ..flags() }, "--scale-min \"4\""),
        ] {
            let err = f.apply(&mut json!({})).expect_err("refused");
            assert!(err.to_string().starts_with(want), "{err}");
        }
    }
}
