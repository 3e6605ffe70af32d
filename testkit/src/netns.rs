//! A network namespace for the box under test, joined to the test's own namespace by a
//! veth pair on a private /30, so a fault test can cut the box off, drop its packets
//! (nftables inside the namespace) and delay its media (a [`UdpDelay`] relay: CI's
//! kernel has no `sch_netem`) without touching any other interface or address.
//!
//! The box runs inside it ([`NetNs::command`]); livekit-server and the hub stay in the
//! test's namespace and listen on [`NetNs::host_ip`]. Needs root (or
//! `CAP_NET_ADMIN`), iproute2's `ip` and `nft`; [`NetNs::create`] says why not
//! otherwise, so a test can skip with a reason. Dropping it deletes the namespace,
//! which destroys both veth ends.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::{Link, UdpDelay};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace with a veth pair; see the module docs.
#[derive(Debug)]
pub struct NetNs {
    /// The namespace's name (`ip netns`).
    pub name: String,
    /// The veth end in the test's namespace.
    pub host_if: String,
    /// The veth end inside the namespace.
    pub box_if: String,
    /// The test side's address, e.g. `10.213.4.1`.
    pub host_ip: String,
    /// The box's address, e.g. `10.213.4.2`.
    pub box_ip: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates a namespace with a veth pair on `10.213.N.0/30` (N from this process
    /// and a counter), both ends up, loopback up inside.
    ///
    /// Errors: not root, no `ip`, or the kernel refused; the text says which.
    pub fn create() -> Result<NetNs, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 10_000;
        let subnet = (pid * 7 + n * 4) % 252;
        let ns = NetNs {
            name: format!("cbx-{pid}-{n}"),
            host_if: format!("cbh{pid}n{n}"),
            box_if: format!("cbb{pid}n{n}"),
            host_ip: format!("10.213.{subnet}.1"),
            box_ip: format!("10.213.{subnet}.2"),
        };
        run(&["ip", "netns", "add", &ns.name])?;
        // From here on, Drop cleans up.
        let steps: [&[&str]; 7] = [
            &[
                "ip",
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns.box_if,
            ],
            &["ip", "link", "set", &ns.box_if, "netns", &ns.name],
            &[
                "ip",
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_if,
            ],
            &["ip", "link", "set", &ns.host_if, "up"],
            &[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{}/30", ns.box_ip),
                "dev",
                &ns.box_if,
            ],
            &["ip", "-n", &ns.name, "link", "set", &ns.box_if, "up"],
            &["ip", "-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            run(step)?;
        }
        Ok(ns)
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`; `ip`
    /// execs it, so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Drops `percent` % of the box's packets each way, at random, with an nftables
    /// table inside the namespace (`numgen random`; loopback untouched). Works where
    /// `sch_netem` is missing. Replaces an earlier drop rule.
    ///
    /// Errors: no `nft`, or the kernel has no nf_tables.
    pub fn drop_percent(&self, percent: u8) -> Result<(), String> {
        let _ = self.nft("delete table inet callbox_fault\n");
        let rule = if percent >= 100 {
            "drop".to_owned()
        } else {
            format!("numgen random mod 100 < {percent} drop")
        };
        self.nft(&format!(
            "table inet callbox_fault {{\n\
             chain in {{ type filter hook input priority 0; policy accept; iifname != \"lo\" {rule}; }}\n\
             chain out {{ type filter hook output priority 0; policy accept; oifname != \"lo\" {rule}; }}\n\
             }}\n"
        ))
    }

    fn nft(&self, script: &str) -> Result<(), String> {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nft in {}: {e}", self.name))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft in {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Delays the box's UDP to and from `server` by `delay` each way, through a
    /// [`UdpDelay`] relay on the test side and a DNAT rule inside the namespace. Keep
    /// the relay: dropping it stops the box's media to `server`. Removed by
    /// [`NetNs::restore`] (the relay then idles).
    ///
    /// Errors: the relay cannot bind, or `nft` failed.
    pub fn delay_udp(&self, server: SocketAddr, delay: Duration) -> Result<UdpDelay, String> {
        self.delay_udp_with_jitter(server, delay, Duration::ZERO)
    }

    /// Like [`NetNs::delay_udp`], each datagram held `delay` plus a random time below
    /// `jitter` ([`UdpDelay::start_with_jitter`]).
    ///
    /// Errors: the relay cannot bind, or `nft` failed.
    pub fn delay_udp_with_jitter(
        &self,
        server: SocketAddr,
        delay: Duration,
        jitter: Duration,
    ) -> Result<UdpDelay, String> {
        self.shape_udp(
            server,
            Link {
                delay,
                jitter,
                ..Link::default()
            },
        )
    }

    /// Like [`NetNs::delay_udp`], the box's UDP to and from `server` through a relay
    /// that stands for `link` ([`UdpDelay::start_link`]): its delay and jitter, and a
    /// narrow uplink if it has one.
    ///
    /// Errors: the relay cannot bind, or `nft` failed.
    pub fn shape_udp(&self, server: SocketAddr, link: Link) -> Result<UdpDelay, String> {
        let relay = UdpDelay::start_link(&self.host_ip, server, link)
            .map_err(|e| format!("cannot start the delay relay: {e}"))?;
        let _ = self.nft("delete table ip callbox_delay\n");
        // Out: the box's datagrams to the server go to the relay. In: only what comes
        // back through it (replies of a DNAT'd flow); the server's own checks to the
        // box's host candidate would otherwise make a direct, undelayed ICE pair.
        let (ip, port) = (server.ip(), server.port());
        self.nft(&format!(
            "table ip callbox_delay {{\n\
             chain out {{ type nat hook output priority -100; policy accept; \
             ip daddr {ip} udp dport {port} dnat to {}; }}\n\
             chain in {{ type filter hook input priority 0; policy accept; \
             ip saddr {ip} udp sport {port} ct status & dnat == 0 drop; }}\n\
             }}\n",
            relay.addr
        ))?;
        Ok(relay)
    }

    /// Cuts the box off: every packet both ways is dropped silently (the links stay
    /// up, as when a router upstream fails).
    pub fn cut(&self) -> Result<(), String> {
        self.drop_percent(100)
    }

    /// Removes every drop and delay rule: the network is back.
    pub fn restore(&self) -> Result<(), String> {
        let _ = self.nft("delete table inet callbox_fault\n");
        let _ = self.nft("delete table ip callbox_delay\n");
        let _ = run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"]);
        let _ = run(&[
            "tc",
            "-n",
            &self.name,
            "qdisc",
            "del",
            "dev",
            &self.box_if,
            "root",
        ]);
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
