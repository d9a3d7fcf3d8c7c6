//! `sluice completion bash|zsh|fish`: shell completion scripts generated from the command tree
//! clap knows (subcommands, then flags when the word starts with `-`). `clap_complete` is not
//! available to this build (no network for new crates), so this walks clap's `Command` itself.

use std::fmt::Write;

use clap::Command;

/// The shells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash (`source <(sluice completion bash)`).
    Bash,
    /// zsh, through its bash compatibility (`source <(sluice completion zsh)`).
    Zsh,
    /// fish (`sluice completion fish | source`).
    Fish,
}

/// One command of the tree: its path of names, visible subcommands, flags and about line.
struct Node {
    path: Vec<String>,
    subs: Vec<(String, String)>,
    flags: Vec<(String, String)>,
}

/// The script for `shell`, for the command tree `cmd`.
pub fn script(shell: Shell, mut cmd: Command) -> String {
    cmd.build();
    let mut nodes = Vec::new();
    collect(&cmd, &mut Vec::new(), &mut nodes);
    match shell {
        Shell::Bash => bash(cmd.get_name(), &nodes),
        Shell::Zsh => format!(
            "#compdef {name}\n# zsh completion for {name}, through bash's: source <({name} completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n{}",
            bash(cmd.get_name(), &nodes),
            name = cmd.get_name()
        ),
        Shell::Fish => fish(cmd.get_name(), &nodes),
    }
}

fn collect(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<Node>) {
    path.push(cmd.get_name().to_string());
    let about = |c: &Command| c.get_about().map(|a| a.to_string()).unwrap_or_default();
    let subs: Vec<(String, String)> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| (s.get_name().to_string(), about(s))).collect();
    let mut flags = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let help = help.lines().next().unwrap_or("").to_string();
        if let Some(long) = arg.get_long() {
            flags.push((format!("--{long}"), help.clone()));
        }
        if let Some(short) = arg.get_short() {
            flags.push((format!("-{short}"), help));
        }
    }
    out.push(Node { path: path.clone(), subs, flags });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, path, out);
    }
    path.pop();
}

fn bash(name: &str, nodes: &[Node]) -> String {
    let func = format!("_{}", name.replace('-', "_"));
    let key = |path: &[String]| path.join("__").replace('-', "_");
    let mut out = format!("# bash completion for {name}: source <({name} completion bash)\n{func}() {{\n");
    out.push_str("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" i\n");
    let _ = writeln!(out, "    local node=\"{}\"", key(&nodes[0].path));
    out.push_str("    for ((i = 1; i < COMP_CWORD; i++)); do\n        case \"$node:${COMP_WORDS[i]}\" in\n");
    for n in nodes {
        for (sub, _) in &n.subs {
            let mut child = n.path.clone();
            child.push(sub.clone());
            let _ = writeln!(out, "            \"{}:{sub}\") node=\"{}\" ;;", key(&n.path), key(&child));
        }
    }
    out.push_str("        esac\n    done\n    local subs=\"\" flags=\"\"\n    case \"$node\" in\n");
    for n in nodes {
        let subs: Vec<&str> = n.subs.iter().map(|(s, _)| s.as_str()).collect();
        let flags: Vec<&str> = n.flags.iter().map(|(f, _)| f.as_str()).collect();
        let _ =
            writeln!(out, "        {}) subs=\"{}\"; flags=\"{}\" ;;", key(&n.path), subs.join(" "), flags.join(" "));
    }
    out.push_str(
        "    esac\n    if [[ \"$cur\" == -* ]]; then\n        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n",
    );
    out.push_str("    else\n        COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n    fi\n}\n");
    let _ = writeln!(out, "complete -o default -F {func} {name}");
    out
}

fn fish(name: &str, nodes: &[Node]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut out = format!("# fish completion for {name}: {name} completion fish | source\n");
    for n in nodes {
        // The condition that the words so far lead to this node.
        let seen: Vec<String> = n.path.iter().skip(1).map(|p| format!("__fish_seen_subcommand_from {p}")).collect();
        let here = if seen.is_empty() { "__fish_use_subcommand".to_string() } else { seen.join("; and ") };
        let children: Vec<&str> = n.subs.iter().map(|(s, _)| s.as_str()).collect();
        let no_child = if children.is_empty() || seen.is_empty() {
            String::new()
        } else {
            format!("; and not __fish_seen_subcommand_from {}", children.join(" "))
        };
        for (sub, about) in &n.subs {
            let _ = writeln!(
                out,
                "complete -c {name} -f -n {} -a {sub} -d {}",
                quote(&format!("{here}{no_child}")),
                quote(about)
            );
        }
        for (flag, help) in &n.flags {
            let opt = match flag.strip_prefix("--") {
                Some(long) => format!("-l {long}"),
                None => format!("-s {}", flag.trim_start_matches('-')),
            };
            let _ = writeln!(out, "complete -c {name} -n {} {opt} -d {}", quote(&here), quote(help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction};

    use super::*;

    fn cmd() -> Command {
        Command::new("tool")
            .arg(Arg::new("verbose").long("verbose").short('v').action(ArgAction::Count).global(true))
            .subcommand(
                Command::new("service")
                    .about("Services")
                    .subcommand(Command::new("create").about("Make one").arg(Arg::new("image").long("image"))),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn bash_walks_subcommands_and_offers_flags_after_a_dash() {
        let s = script(Shell::Bash, cmd());
        assert!(s.contains("\"tool:service\") node=\"tool__service\" ;;"), "{s}");
        assert!(s.contains("\"tool__service:create\") node=\"tool__service__create\" ;;"), "{s}");
        assert!(s.contains("tool__service__create) subs=\"\"; flags=\"--image --verbose -v"), "{s}");
        assert!(!s.contains("secret"), "hidden commands are not offered: {s}");
        assert!(s.ends_with("complete -o default -F _tool tool\n"), "{s}");
    }

    #[test]
    fn fish_conditions_follow_the_path() {
        let s = script(Shell::Fish, cmd());
        assert!(s.contains("complete -c tool -f -n '__fish_use_subcommand' -a service -d 'Services'"), "{s}");
        assert!(
            s.contains("complete -c tool -f -n '__fish_seen_subcommand_from service; and not __fish_seen_subcommand_from create help' -a create -d 'Make one'"),
            "{s}"
        );
        assert!(
            s.contains("-n '__fish_seen_subcommand_from service; and __fish_seen_subcommand_from create' -l image"),
            "{s}"
        );
    }
}
