//! A UDP relay that delays every datagram by a fixed time each way: added latency for
//! a box's media where the kernel has no `sch_netem` (CI's does not).
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

/// Relays the server's answers arriving at `back` to the box at `to` through `front`.
fn answers(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    to: SocketAddr,
    delay: Duration,
    queue: mpsc::Sender<Due>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, _)) = back.recv_from(&mut buf) else {
                continue; // the read timeout: look at `stop` again
            };
            let due = Instant::now() + delay;
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
        let tick = Some(Duration::from_millis(200));
        let front = Arc::new(UdpSocket::bind((listen_ip, 0))?);
        front.set_read_timeout(tick)?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (queue, due) = mpsc::channel::<Due>();
        // The sender: the delay is the same for every datagram, so the queue is in
        // order of due time.
        let relayed = Arc::new(AtomicU64::new(0));
        let count = relayed.clone();
        std::thread::spawn(move || {
            while let Ok((socket, to, packet, at)) = due.recv() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                if socket.send_to(&packet, to).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
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
                            delay,
                            queue.clone(),
                            st.clone(),
                        );
                        b
                    }
                };
                let due = Instant::now() + delay;
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

impl Drop for UdpDelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
