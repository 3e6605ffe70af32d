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
        let delay = Delay {
            base: delay,
            jitter,
            state: Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15)),
        };
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
                let due = Instant::now() + delay.next();
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
        })
    }

    /// Datagrams relayed so far, both ways.
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
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
