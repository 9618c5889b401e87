//! A fault-injecting TCP proxy on loopback: relays connections to a target and can cut one
//! after N bytes.
//!
//! In FTP mode ([`Proxy::start_ftp`]) it also relays the passive data connections: it reads
//! the server's control replies line by line and rewrites every `227` (PASV) and `229`
//! (EPSV) reply to point at a listener of its own, which forwards to the port the server
//! announced. Faults then apply to the data connections, where the file bytes travel.
//! Plain FTP only: the control connection of FTPS is encrypted and cannot be rewritten.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// What one relayed connection carried.
#[derive(Debug, Default)]
struct ConnStats {
    /// Bytes from the target to the client.
    down: AtomicU64,
    /// Bytes from the client to the target.
    up: AtomicU64,
}

#[derive(Default)]
struct Shared {
    /// Cut the next faultable connection after this many bytes (both directions summed).
    cut_next: Mutex<Option<u64>>,
    /// Cut the first faultable connection that carries more than this many bytes.
    cut_first_over: Mutex<Option<u64>>,
    /// Whether a `cut_first_over` cut happened.
    first_over_fired: AtomicBool,
    /// Every faultable connection (data connections in FTP mode), in order.
    conns: Mutex<Vec<Arc<ConnStats>>>,
    /// Connections cut so far.
    cuts: AtomicU64,
    /// Client connections accepted on the main port (control connections in FTP mode).
    accepted: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn spawn(self: &Arc<Self>, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(fut);
        self.tasks.lock().unwrap().push(h.abort_handle());
    }

    /// The cut of a new faultable connection: its byte budget, and whether the budget
    /// is the shared "first connection over N bytes" one.
    fn take_cut(&self) -> (Option<u64>, bool) {
        if let Some(n) = self.cut_next.lock().unwrap().take() {
            return (Some(n), false);
        }
        match *self.cut_first_over.lock().unwrap() {
            Some(n) if !self.first_over_fired.load(Ordering::SeqCst) => (Some(n), true),
            _ => (None, false),
        }
    }

    fn register(&self) -> Arc<ConnStats> {
        let s = Arc::new(ConnStats::default());
        self.conns.lock().unwrap().push(Arc::clone(&s));
        s
    }
}

/// A running proxy; it stops (every relay aborted) on drop. Needs a tokio runtime.
pub struct Proxy {
    /// The port clients connect to, on 127.0.0.1.
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A plain TCP proxy to `target`; faults apply to every connection.
    pub async fn start(target: SocketAddr) -> Proxy {
        Proxy::start_mode(target, false).await
    }

    /// An FTP-aware proxy to the control port `target`; faults apply to data connections.
    pub async fn start_ftp(target: SocketAddr) -> Proxy {
        Proxy::start_mode(target, true).await
    }

    async fn start_mode(target: SocketAddr, ftp: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        shared.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                sh.accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let sh2 = Arc::clone(&sh);
                if ftp {
                    sh.spawn(ftp_control(client, server, sh2));
                } else {
                    let cut = sh.take_cut();
                    let stats = sh.register();
                    sh.spawn(relay(client, server, cut, stats, sh2));
                }
            }
        });
        Proxy { port, shared }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Cuts the next connection (the next data connection in FTP mode) after `bytes` bytes
    /// have passed through it, in either direction: both sides are closed abruptly.
    pub fn cut_next_after(&self, bytes: u64) {
        *self.shared.cut_next.lock().unwrap() = Some(bytes);
    }

    /// Cuts the first connection (data connection in FTP mode) opened from now on that
    /// carries more than `bytes` bytes; connections that stay below pass untouched, as
    /// does everything after that one cut. Unlike [`cut_next_after`](Self::cut_next_after)
    /// it does not depend on the order in which connections are opened.
    pub fn cut_first_over(&self, bytes: u64) {
        *self.shared.cut_first_over.lock().unwrap() = Some(bytes);
    }

    /// Bytes sent from the target to the client on each connection so far (data
    /// connections in FTP mode), in the order they were opened.
    pub fn downloads(&self) -> Vec<u64> {
        self.shared
            .conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.down.load(Ordering::SeqCst))
            .collect()
    }

    /// Bytes sent from the client to the target on each connection so far.
    pub fn uploads(&self) -> Vec<u64> {
        self.shared
            .conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.up.load(Ordering::SeqCst))
            .collect()
    }

    /// How many client connections the main port accepted (control connections in FTP
    /// mode).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// Relays an FTP control connection, rewriting passive-mode replies.
async fn ftp_control(client: TcpStream, server: TcpStream, sh: Arc<Shared>) {
    let (mut cr, mut cw) = client.into_split();
    let (sr, mut sw) = server.into_split();
    let target_ip = sw.peer_addr().map(|a| a.ip()).ok();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut lines = BufReader::new(sr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            let out = match passive_target(&text, target_ip) {
                Some(data_target) => {
                    let Ok(l) = TcpListener::bind("127.0.0.1:0").await else {
                        break;
                    };
                    let p = l.local_addr().unwrap().port();
                    let sh2 = Arc::clone(&sh);
                    sh.spawn(async move {
                        if let Ok((c, _)) = l.accept().await {
                            if let Ok(s) = TcpStream::connect(data_target).await {
                                let cut = sh2.take_cut();
                                let stats = sh2.register();
                                relay(c, s, cut, stats, sh2).await;
                            }
                        }
                    });
                    if text.starts_with("229") {
                        format!("229 Extended Passive mode OK (|||{p}|)\r\n")
                    } else {
                        format!(
                            "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                            p >> 8,
                            p & 0xff
                        )
                    }
                }
                None => text,
            };
            if cw.write_all(out.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

/// The data address of a `227 … (h1,h2,h3,h4,p1,p2)` or `229 … (|||port|)` reply.
fn passive_target(line: &str, control_ip: Option<std::net::IpAddr>) -> Option<SocketAddr> {
    let inner = line.get(line.find('(')? + 1..line.rfind(')')?)?;
    if line.starts_with("227 ") {
        let n: Vec<u16> = inner
            .split(',')
            .map(|x| x.trim().parse().ok())
            .collect::<Option<_>>()?;
        if n.len() != 6 {
            return None;
        }
        let ip = std::net::Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
        Some(SocketAddr::from((ip, n[4] * 256 + n[5])))
    } else if line.starts_with("229 ") {
        let port: u16 = inner.trim_matches('|').parse().ok()?;
        Some(SocketAddr::new(control_ip?, port))
    } else {
        None
    }
}

/// Relays both directions until both end, or until `cut` bytes (both directions summed)
/// passed, when both sockets are closed at once. A shared cut (`cut.1`) happens only on
/// the first connection that reaches it.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    cut: (Option<u64>, bool),
    stats: Arc<ConnStats>,
    sh: Arc<Shared>,
) {
    let (cut, shared_cut) = cut;
    let gate = shared_cut.then(|| Arc::clone(&sh));
    let budget = Arc::new(AtomicU64::new(cut.unwrap_or(u64::MAX)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(
        cr,
        sw,
        Arc::clone(&budget),
        (Arc::clone(&stop_tx), stop_rx.clone()),
        Arc::clone(&stats),
        (true, gate.clone()),
    );
    let down = pump(sr, cw, budget, (stop_tx, stop_rx), stats, (false, gate));
    let (a, b) = tokio::join!(up, down);
    if a || b {
        sh.cuts.fetch_add(1, Ordering::SeqCst);
    }
}

/// Copies `r` to `w` while the budget lasts; returns true when it cut the connection.
/// With a `gate`, the budget is the shared "first connection over N bytes" one: the cut
/// happens only when no other connection was cut for it, else the budget is lifted.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    budget: Arc<AtomicU64>,
    (stop_tx, mut stop): (Arc<watch::Sender<bool>>, watch::Receiver<bool>),
    stats: Arc<ConnStats>,
    (up, gate): (bool, Option<Arc<Shared>>),
) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = r.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = stop.wait_for(|s| *s) => return false,
        };
        // Take up to n bytes from the budget.
        let mut allowed = n as u64;
        let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
            allowed = allowed.min(b);
            Some(b - allowed)
        });
        let mut allowed = allowed as usize;
        if allowed < n {
            if let Some(sh) = &gate {
                if sh.first_over_fired.swap(true, Ordering::SeqCst) {
                    // Another connection took the cut: this one passes untouched.
                    budget.store(u64::MAX, Ordering::SeqCst);
                    allowed = n;
                }
            }
        }
        if allowed > 0 && w.write_all(&buf[..allowed]).await.is_err() {
            break;
        }
        let counter = if up { &stats.up } else { &stats.down };
        counter.fetch_add(allowed as u64, Ordering::SeqCst);
        if allowed < n {
            // Cut: close everything now.
            let _ = stop_tx.send(true);
            return true;
        }
    }
    let _ = w.shutdown().await;
    false
}
