//! Instances in a network namespace of their own (`sluice serve --network-namespaces`), so an
//! app listens on its declared `containerPort` unchanged, as in a pod, however many instances
//! share the machine. Rootless: the `instance-exec` trampoline creates a user namespace (its
//! own uid and gid mapped to themselves) owning a new network namespace, brings its loopback
//! up, and starts the instance inside. Before that it binds the instance's port on the host's
//! loopback, so it keeps a listener outside; it then stays as the instance's forwarder:
//! each connection accepted outside is joined to one it opens inside, to the declared port
//! (sockets stay in the namespace they were created in). It exits with the instance.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitStatus;

use nix::sched::CloneFlags;
use socket2::Socket;
use tokio::time::{Duration, Instant};

/// Connections the host port queues before the forwarder accepts them.
const BACKLOG: i32 = 1024;
/// The longest gap between looks at whether the instance listens inside yet.
const LOOK_GAP_MAX: Duration = Duration::from_millis(50);

/// Why an instance could not be started in its own network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A step failed; `step` says which.
    #[error("{step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The kernel refused the namespaces (user namespaces off, or their limit reached).
    #[error(
        "unshare(CLONE_NEWUSER | CLONE_NEWNET): {0} (does this kernel allow unprivileged user namespaces? see user.max_user_namespaces)"
    )]
    Unshare(nix::Error),
    /// Bringing loopback up was refused.
    #[error("bringing up loopback in the new network namespace: netlink error {0}")]
    Netlink(i32),
}

/// The `instance-exec --forward HOST:INSIDE` trampoline: ties itself to `sluice serve`
/// (`parent_pid`), enters a namespace of its own with the host port bound, and forwards to the
/// instance it starts there until it exits. Returns the exit code to leave with.
pub fn run(parent_pid: u32, host_port: u16, inside_port: u16, argv: &[OsString]) -> u8 {
    if let Err(e) = super::process::tie_to_parent(parent_pid) {
        eprintln!("[sluice] cannot start instance {argv:?}: {e}");
        return e.exit_code();
    }
    let started = std::env::current_exe()
        .map_err(|source| NetnsError::Io { step: "locating the sluice executable", source })
        .and_then(|exe| {
            let outside = enter(host_port)?;
            forward(outside, inside_port, &exe, argv)
        });
    match started {
        Ok(status) => u8::try_from(super::process::exit_code(&status)).unwrap_or(255),
        Err(e) => {
            eprintln!("[sluice] cannot start instance {argv:?} in a network namespace of its own: {e}");
            126
        }
    }
}

/// Binds `host_port` on the host's loopback (not listening yet: connections are refused until
/// the instance listens inside), then moves this (single-threaded) process into a new user and
/// network namespace with loopback up and every port bindable without privilege. Returns the
/// host socket, which stays in the host's namespace.
pub fn enter(host_port: u16) -> Result<Socket, NetnsError> {
    let io = |step| move |source| NetnsError::Io { step, source };
    let listener =
        Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).map_err(io("opening the host port"))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], host_port));
    listener.bind(&addr.into()).map_err(io("binding the host port"))?;
    let me = std::fs::metadata("/proc/self").map_err(io("reading /proc/self"))?;
    let (uid, gid) = (me.uid(), me.gid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    // The same ids inside as outside (files the app writes keep their owner).
    std::fs::write("/proc/self/setgroups", "deny").map_err(io("writing /proc/self/setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).map_err(io("writing /proc/self/uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).map_err(io("writing /proc/self/gid_map"))?;
    loopback_up()?;
    // A pod may listen on port 80; so may the instance, in its own namespace.
    let _ = std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
    Ok(listener)
}

/// `ip link set lo up`, as one rtnetlink request (`RTM_NEWLINK` with `IFF_UP` for interface 1,
/// loopback in every new namespace), and its acknowledgement.
fn loopback_up() -> Result<(), NetnsError> {
    let io = |step| move |source| NetnsError::Io { step, source };
    let socket = socket2::Socket::new(
        socket2::Domain::from(libc::AF_NETLINK),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::from(libc::NETLINK_ROUTE)),
    )
    .map_err(io("opening a netlink socket"))?;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]); // ifi_family, padding
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&1i32.to_ne_bytes()); // ifi_index: lo
    msg.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes()); // ifi_change
    (&socket).write_all(&msg).map_err(io("sending to netlink"))?;
    let mut answer = [0u8; 256];
    let n = (&socket).read(&mut answer).map_err(io("reading from netlink"))?;
    // An NLMSG_ERROR message: header (16 bytes), then the error code (0: acknowledged).
    let code = answer.get(16..20).filter(|_| n >= 20).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match code {
        Some(0) => Ok(()),
        Some(e) => Err(NetnsError::Netlink(-e)),
        None => Err(NetnsError::Netlink(0)),
    }
}

/// Runs `argv` through `launcher` (the trampoline, which ties it to this process); once it
/// listens on 127.0.0.1:`inside_port` here, listens on `outside` and forwards each connection
/// there, until the instance exits; returns its status. SIGTERM and SIGINT reach the instance
/// through its process group and are ignored here, so connections last as long as it does.
pub fn forward(
    outside: Socket,
    inside_port: u16,
    launcher: &Path,
    argv: &[OsString],
) -> Result<ExitStatus, NetnsError> {
    let io = |step| move |source| NetnsError::Io { step, source };
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(io("starting the forwarder"))?;
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("handling SIGTERM"))?;
        let mut int =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(io("handling SIGINT"))?;
        let mut child = tokio::process::Command::new(launcher)
            .arg("instance-exec")
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .arg("--")
            .args(argv)
            .spawn()
            .map_err(io("starting the instance"))?;
        // Until the instance listens inside, the host port refuses, so probes see it not ready.
        let started = Instant::now();
        loop {
            let gap = Duration::from_millis(1).max(started.elapsed() / 10).min(LOOK_GAP_MAX);
            tokio::select! {
                status = child.wait() => return status.map_err(io("waiting for the instance")),
                () = tokio::time::sleep(gap) => {}
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", inside_port)).await.is_ok() {
                break;
            }
        }
        outside.listen(BACKLOG).map_err(io("listening on the host port"))?;
        outside.set_nonblocking(true).map_err(io("configuring the host port"))?;
        let outside = tokio::net::TcpListener::from_std(outside.into()).map_err(io("configuring the host port"))?;
        loop {
            tokio::select! {
                status = child.wait() => return status.map_err(io("waiting for the instance")),
                accepted = outside.accept() => {
                    if let Ok((conn, _)) = accepted {
                        tokio::spawn(join(conn, inside_port));
                    }
                }
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    })
}

/// Copies both ways between `outside` and a new connection to the instance; a refused
/// connection closes `outside` (the prober sees it as not ready).
async fn join(mut outside: tokio::net::TcpStream, inside_port: u16) {
    let Ok(mut inside) = tokio::net::TcpStream::connect(("127.0.0.1", inside_port)).await else {
        return;
    };
    let _ = outside.set_nodelay(true);
    let _ = inside.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
}
