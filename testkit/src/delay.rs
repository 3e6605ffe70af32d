//! A UDP relay that delays every datagram by a fixed time each way, plus optional
//! random jitter: added latency for a box's media where the kernel has no `sch_netem`
//! (CI's does not).
//!
//! [`NetNs::delay_udp`](crate::NetNs::delay_udp) points the box's datagrams for one
//! server port at the relay with a DNAT rule inside the box's namespace; the relay
//! sends them on to the server from a socket of its own per box address (the server
//! sees that socket as the box's peer-reflexive ICE candidate), and relays the answers
//! back, each `delay` later. Conntrack undoes the DNAT on the way back, so the box sees
//! the server's own address. Signalling (TCP) is not delayed.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A running relay; dropping it stops it (and the box's media through it).
#[derive(Debug)]
pub struct UdpDelay {
    /// Where it listens (the DNAT target).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    relayed: Arc<AtomicU64>,
    uplink: Arc<UplinkCounters>,
}

/// The path a relay stands for: a delay and jitter each way, and optionally a narrow
/// uplink (box → server), as a home's DSL or mobile upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    /// Held each way, at least.
    pub delay: Duration,
    /// Plus a uniformly random time below this, each way (datagrams can overtake).
    pub jitter: Duration,
    /// The uplink's capacity, kbit/s of UDP payload (the datagrams' own bytes; no IP
    /// or UDP headers). `None`: as fast as the relay goes.
    pub uplink_kbps: Option<u32>,
    /// How much the uplink's queue holds, as time at its capacity; a datagram that
    /// would wait longer is dropped (drop-tail, as a modem's buffer). Only with
    /// `uplink_kbps`.
    pub uplink_queue: Duration,
}

#[derive(Debug, Default)]
struct UplinkCounters {
    bytes: AtomicU64,
    passed: AtomicU64,
    dropped: AtomicU64,
}

/// The uplink's bottleneck: when its queue drains (`free_at`), and whether a datagram
/// of `len` bytes arriving `now` fits; if so, when it has left the bottleneck.
struct Bottleneck {
    kbps: u32,
    queue: Duration,
    free_at: Instant,
}

impl Bottleneck {
    fn admit(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let start = self.free_at.max(now);
        if start - now > self.queue {
            return None;
        }
        let bits = len as u64 * 8;
        self.free_at = start + Duration::from_micros(bits * 1000 / u64::from(self.kbps.max(1)));
        Some(self.free_at)
    }
}

/// One datagram on its way: from which socket, to where, when.
type Due = (Arc<UdpSocket>, SocketAddr, Vec<u8>, Instant);

/// Each datagram's delay: `base` plus a uniformly random part below `jitter` (a
/// xorshift generator shared by both directions, fixed seed: runs are comparable).
#[derive(Clone)]
struct Delay {
    base: Duration,
    jitter: Duration,
    state: Arc<AtomicU64>,
}

impl Delay {
    fn next(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        let us = self.jitter.as_micros() as u64;
        self.base + Duration::from_micros(x % us.max(1))
    }
}

/// Relays the server's answers arriving at `back` to the box at `to` through `front`.
fn answers(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    to: SocketAddr,
    delay: Delay,
    queue: mpsc::Sender<Due>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, _)) = back.recv_from(&mut buf) else {
                continue; // the read timeout: look at `stop` again
            };
            let due = Instant::now() + delay.next();
            if queue
                .send((front.clone(), to, buf[..n].to_vec(), due))
                .is_err()
            {
                return;
            }
        }
    });
}

impl UdpDelay {
    /// Relays datagrams arriving at `listen_ip`:(a free port) to `upstream`, and the
    /// answers back, each `delay` later.
    ///
    /// Errors: a socket cannot be bound.
    pub fn start(listen_ip: &str, upstream: SocketAddr, delay: Duration) -> std::io::Result<Self> {
        Self::start_with_jitter(listen_ip, upstream, delay, Duration::ZERO)
    }

    /// Like [`UdpDelay::start`], with each datagram held `delay` plus a random time
    /// below `jitter` (uniform), so datagrams can arrive out of order, as on a network
    /// with jitter.
    ///
    /// Errors: a socket cannot be bound.
    pub fn start_with_jitter(
        listen_ip: &str,
        upstream: SocketAddr,
        delay: Duration,
        jitter: Duration,
    ) -> std::io::Result<Self> {
        Self::start_link(
            listen_ip,
            upstream,
            Link {
                delay,
                jitter,
                ..Link::default()
            },
        )
    }

    /// A relay for `link`: its delay and jitter each way, and its uplink's capacity
    /// for the datagrams to `upstream` (each leaves the bottleneck, then is held the
    /// delay).
    ///
    /// Errors: a socket cannot be bound.
    pub fn start_link(listen_ip: &str, upstream: SocketAddr, link: Link) -> std::io::Result<Self> {
        let delay = Delay {
            base: link.delay,
            jitter: link.jitter,
            state: Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15)),
        };
        let uplink = Arc::new(UplinkCounters::default());
        let counters = uplink.clone();
        let mut bottleneck = link.uplink_kbps.map(|kbps| Bottleneck {
            kbps,
            queue: link.uplink_queue,
            free_at: Instant::now(),
        });
        let tick = Some(Duration::from_millis(200));
        let front = Arc::new(UdpSocket::bind((listen_ip, 0))?);
        front.set_read_timeout(tick)?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (queue, due) = mpsc::channel::<Due>();
        // The sender: datagrams leave in order of due time (with jitter, not the order
        // they came in).
        let relayed = Arc::new(AtomicU64::new(0));
        let count = relayed.clone();
        std::thread::spawn(move || {
            let mut held: std::collections::BinaryHeap<Held> = Default::default();
            let mut seq = 0u64;
            loop {
                let wait = held.peek().map_or(Duration::from_secs(1), |h| {
                    h.at.saturating_duration_since(Instant::now())
                });
                match due.recv_timeout(wait) {
                    Ok((socket, to, packet, at)) => {
                        seq += 1;
                        held.push(Held {
                            at,
                            seq,
                            socket,
                            to,
                            packet,
                        });
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) if held.is_empty() => return,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(wait);
                    }
                }
                while held.peek().is_some_and(|h| h.at <= Instant::now()) {
                    let h = held.pop().expect("peeked");
                    if h.socket.send_to(&h.packet, h.to).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        let ip = listen_ip.to_owned();
        let st = stop.clone();
        std::thread::spawn(move || {
            // One upstream socket per box address, made on its first datagram.
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = front.recv_from(&mut buf) else {
                    continue;
                };
                let back = match backs.get(&from) {
                    Some(b) => b.clone(),
                    None => {
                        let Ok(b) = UdpSocket::bind((ip.as_str(), 0)) else {
                            continue;
                        };
                        let _ = b.set_read_timeout(tick);
                        let b = Arc::new(b);
                        backs.insert(from, b.clone());
                        answers(
                            b.clone(),
                            front.clone(),
                            from,
                            delay.clone(),
                            queue.clone(),
                            st.clone(),
                        );
                        b
                    }
                };
                let now = Instant::now();
                let left = match bottleneck.as_mut() {
                    None => now,
                    Some(b) => match b.admit(now, n) {
                        Some(at) => at,
                        None => {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                };
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                counters.passed.fetch_add(1, Ordering::Relaxed);
                let due = left + delay.next();
                if queue
                    .send((back, upstream, buf[..n].to_vec(), due))
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Self {
            addr,
            stop,
            relayed,
            uplink: uplink.clone(),
        })
    }

    /// Datagrams relayed so far, both ways.
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }

    /// Bytes (UDP payload) the uplink has let through so far, box → server.
    pub fn uplink_bytes(&self) -> u64 {
        self.uplink.bytes.load(Ordering::Relaxed)
    }

    /// Datagrams the uplink has let through so far, box → server.
    pub fn uplink_passed(&self) -> u64 {
        self.uplink.passed.load(Ordering::Relaxed)
    }

    /// Datagrams the uplink's full queue has dropped so far.
    pub fn uplink_dropped(&self) -> u64 {
        self.uplink.dropped.load(Ordering::Relaxed)
    }
}

/// A datagram the sender holds until `at` (earliest first; `seq` keeps equal times in
/// arrival order).
struct Held {
    at: Instant,
    seq: u64,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    packet: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed: `BinaryHeap` pops the largest, the sender wants the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl Drop for UdpDelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` numbered datagrams through a relay (1 ms apart) and returns, in arrival
    /// order at the upstream socket, each one's number and how long it took.
    fn through(jitter: Duration, n: u32) -> Vec<(u32, Duration)> {
        let upstream = UdpSocket::bind("127.0.0.1:0").expect("upstream socket");
        upstream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let relay = UdpDelay::start_with_jitter(
            "127.0.0.1",
            upstream.local_addr().unwrap(),
            Duration::from_millis(20),
            jitter,
        )
        .expect("relay starts");
        let client = UdpSocket::bind("127.0.0.1:0").expect("client socket");
        let mut sent = vec![];
        for i in 0..n {
            sent.push(Instant::now());
            client.send_to(&i.to_be_bytes(), relay.addr).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut got = vec![];
        let mut buf = [0u8; 16];
        for _ in 0..n {
            let (len, _) = upstream
                .recv_from(&mut buf)
                .expect("every datagram arrives");
            assert_eq!(len, 4);
            let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
            got.push((i, sent[i as usize].elapsed()));
        }
        got
    }

    /// A 400 kbit/s uplink with 100 ms of queue, offered 1200-byte datagrams at
    /// ~1.9 Mbit/s for 1 s: what gets through arrives at the link's rate, the rest is
    /// dropped, and none waits much longer than the queue holds (100 ms, plus 24 ms to
    /// send one at 400 kbit/s; 300 ms of slack for a busy machine: an unbounded queue
    /// would hold the last ones for seconds).
    #[test]
    fn a_narrow_uplink_passes_its_rate_and_drops_the_rest() {
        let upstream = UdpSocket::bind("127.0.0.1:0").expect("upstream socket");
        upstream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let relay = UdpDelay::start_link(
            "127.0.0.1",
            upstream.local_addr().unwrap(),
            Link {
                uplink_kbps: Some(400),
                uplink_queue: Duration::from_millis(100),
                ..Link::default()
            },
        )
        .expect("relay starts");
        // Arrivals, read as they come: (datagram number, when).
        let arrivals = std::thread::spawn(move || {
            let mut got = vec![];
            let mut buf = [0u8; 2048];
            while let Ok((n, _)) = upstream.recv_from(&mut buf) {
                assert_eq!(n, 1200);
                let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
                got.push((i, Instant::now()));
            }
            got
        });
        let client = UdpSocket::bind("127.0.0.1:0").expect("client socket");
        let mut payload = [7u8; 1200];
        let t0 = Instant::now();
        let mut sent = vec![];
        while t0.elapsed() < Duration::from_secs(1) {
            payload[..4].copy_from_slice(&(sent.len() as u32).to_be_bytes());
            sent.push(Instant::now());
            client.send_to(&payload, relay.addr).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = arrivals.join().expect("the receiver");
        let n = got.len() as u64;
        assert!(sent.len() > 100, "offered {} datagrams", sent.len());
        assert!(n > 10, "{n} datagrams through");
        assert_eq!(
            n + relay.uplink_dropped(),
            sent.len() as u64,
            "each one passed or dropped"
        );
        assert_eq!(relay.uplink_bytes(), n * 1200);
        assert_eq!(relay.uplink_passed(), n);
        // The rate: the bits after the first datagram, over the time they took.
        let span = got[got.len() - 1].1.duration_since(got[0].1).as_secs_f64();
        let kbps = ((n - 1) * 1200 * 8) as f64 / span / 1000.0;
        assert!(
            (300.0..=440.0).contains(&kbps),
            "{n} of {} through at {kbps:.0} kbit/s",
            sent.len()
        );
        let longest = got
            .iter()
            .map(|(i, at)| at.duration_since(sent[*i as usize]))
            .max()
            .expect("some arrived");
        assert!(
            longest < Duration::from_millis(424),
            "a datagram waited {longest:?}: the queue held more than 100 ms"
        );
    }

    /// Without jitter every datagram is held the delay and they stay in order.
    #[test]
    fn a_fixed_delay_keeps_the_order() {
        let got = through(Duration::ZERO, 30);
        assert!(got.iter().all(|(_, d)| *d >= Duration::from_millis(20)));
        let order: Vec<u32> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..30).collect::<Vec<_>>());
    }

    /// With 40 ms of jitter each datagram is held at least the delay, the delays
    /// spread, and later datagrams overtake earlier ones.
    #[test]
    fn jitter_spreads_the_delays_and_reorders() {
        let got = through(Duration::from_millis(40), 50);
        assert!(got.iter().all(|(_, d)| *d >= Duration::from_millis(20)));
        let min = got.iter().map(|(_, d)| *d).min().unwrap();
        let max = got.iter().map(|(_, d)| *d).max().unwrap();
        assert!(
            max - min >= Duration::from_millis(15),
            "delays from {min:?} to {max:?}"
        );
        assert!(
            got.windows(2).any(|w| w[1].0 < w[0].0),
            "no datagram overtook another: {got:?}"
        );
    }
}
