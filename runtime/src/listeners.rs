//! Where an instance's processes listen, read from `/proc`: the TCP sockets in LISTEN state
//! (`/proc/PID/net/tcp` and `tcp6`) that a process of the instance's process group holds
//! (`/proc/PID/fd`). An instance that is slow to become ready while it listens on another port
//! than the `$PORT` it was given is told so in its revision's status.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The TCP socket state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// The addresses the processes of process group `pgid` listen on (sorted, without repeats);
/// empty when `/proc` cannot tell (the processes are gone, or not ours to read).
pub fn of_group(pgid: u32) -> Vec<SocketAddr> {
    let members = group_members(pgid);
    let mut inodes = HashSet::new();
    for pid in &members {
        inodes.extend(socket_inodes(*pid));
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    // The group's network namespace: that of its leader (or any member still there).
    let mut listening = Vec::new();
    for pid in &members {
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"));
        let tcp6 = std::fs::read_to_string(format!("/proc/{pid}/net/tcp6"));
        if tcp.is_err() && tcp6.is_err() {
            continue;
        }
        for text in [tcp.unwrap_or_default(), tcp6.unwrap_or_default()] {
            listening.extend(listening_sockets(&text).into_iter().filter(|(_, i)| inodes.contains(i)).map(|(a, _)| a));
        }
        break;
    }
    listening.sort();
    listening.dedup();
    listening
}

/// What to tell the user of an instance given `port` that is not ready yet while it listens
/// on `listening`; None when that explains nothing (it listens nowhere, or where the prober
/// connects: `127.0.0.1:port`).
pub fn wrong_port_note(listening: &[SocketAddr], port: u16) -> Option<String> {
    if listening.is_empty() || listening.iter().any(|a| a.port() == port && reaches_loopback_v4(a.ip())) {
        return None;
    }
    let list: Vec<String> = listening.iter().map(SocketAddr::to_string).collect();
    let list = list.join(", ");
    if listening.iter().any(|a| a.port() == port) {
        return Some(format!(
            "listening on {list}, but Sluice connects to 127.0.0.1:{port}: listen on 127.0.0.1 or on all addresses"
        ));
    }
    Some(format!("listening on {list}, but Sluice passed PORT={port}: read $PORT"))
}

/// True when a socket bound to `ip` accepts connections to 127.0.0.1.
fn reaches_loopback_v4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST || v4.is_unspecified(),
        // `::` takes IPv4 too unless the socket is IPv6-only, which /proc does not say.
        IpAddr::V6(v6) => v6.is_unspecified() || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST),
    }
}

/// The processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members: Vec<u32> = proc
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .collect();
    // The leader first: its namespace is the instance's.
    members.sort_by_key(|pid| (*pid != pgid, *pid));
    members
}

/// The process group of `pid`, from `/proc/PID/stat` (after the command's `)`: state, parent,
/// process group).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_whitespace().nth(2)?.parse().ok()
}

/// The inodes of the sockets `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table: address and inode.
fn listening_sockets(table: &str) -> Vec<(SocketAddr, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let addr = parse_address(fields.get(1)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((addr, inode))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the address as the kernel prints
/// it, each 32-bit word in host byte order, the port in hex.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn proc_tables_are_read_as_the_kernel_prints_them() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F99 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:1F99 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
";
        let got = listening_sockets(tcp);
        assert_eq!(
            got,
            vec![("127.0.0.1:8089".parse().expect("addr"), 4242), ("0.0.0.0:80".parse().expect("addr"), 77)]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0000000000000000 100 0 0 10 0
";
        let got = listening_sockets(tcp6);
        assert_eq!(got, vec![("[::1]:8080".parse().expect("addr"), 99), ("[::]:22".parse().expect("addr"), 98)]);
    }

    #[test]
    fn the_note_names_where_the_app_listens_and_what_it_was_given() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            wrong_port_note(&[a("127.0.0.1:8089")], 41234).as_deref(),
            Some("listening on 127.0.0.1:8089, but Sluice passed PORT=41234: read $PORT")
        );
        assert_eq!(
            wrong_port_note(&[a("0.0.0.0:8080"), a("[::]:9090")], 41234).as_deref(),
            Some("listening on 0.0.0.0:8080, [::]:9090, but Sluice passed PORT=41234: read $PORT")
        );
        assert_eq!(
            wrong_port_note(&[a("[::1]:41234")], 41234).as_deref(),
            Some(
                "listening on [::1]:41234, but Sluice connects to 127.0.0.1:41234: listen on 127.0.0.1 or on all addresses"
            )
        );
        assert_eq!(wrong_port_note(&[], 41234), None, "not listening yet: nothing to say");
        assert_eq!(wrong_port_note(&[a("127.0.0.1:41234"), a("127.0.0.1:9")], 41234), None, "on its port");
        assert_eq!(wrong_port_note(&[a("0.0.0.0:41234")], 41234), None);
        assert_eq!(wrong_port_note(&[a("[::]:41234")], 41234), None);
    }

    #[test]
    fn a_listener_of_this_process_group_is_found() {
        // The test binary runs in some process group; a socket it listens on is among that
        // group's listeners.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pgid = u32::try_from(nix::unistd::getpgrp().as_raw()).expect("pgid");
        assert!(of_group(pgid).contains(&addr), "{addr} not in {:?}", of_group(pgid));
    }
}
