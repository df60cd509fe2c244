//! `mia dtc-sim`: a DTC server that behaves like Sierra Chart's trade simulation service, for
//! testing mia's DTC client over real TCP and for trying live mode safely (`docs/dtc-sim.md`).
//!
//! - [`SimServer::start`] listens and returns a [`SimHandle`]: the address, the price, fault
//!   injection ([`Fault`]) and inspection of what the server saw (orders, ClientOrderIDs,
//!   positions, fills, message types per connection).
//! - `exchange`: the pure order book (fill rules, OCO and bracket links, positions).
//! - `control`: the line protocol of `--control`, fault names, and prices from recorded files.
//!
//! Like Sierra's server, a connection starts with the 16-byte binary encoding handshake (the
//! answer is always JSON), or directly with JSON when its first byte is `{` (a server preset to
//! JSON). Order and position updates go to every logged-on connection, as Sierra pushes them to
//! all of a user's connections.
//!
//! Threads and blocking sockets, no async runtime: one thread accepts, and each connection has
//! a reader (which also handles the requests, under the one lock of the server state) and a
//! writer (which owns the socket's write side, the heartbeats and the framing faults). Replies
//! and pushes go to writers through channels, so a slow client never blocks the state lock.

mod control;
mod exchange;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use control::load_prices;
pub use exchange::{SIM_ACCOUNT, SimFill, SimOrder, SimPosition};

use crate::clock::{Clock, LiveClock, Stopwatch};
use crate::dtc::DtcError;
use crate::dtc::frame::{
    ENCODING_MESSAGE_SIZE, ENCODING_REQUEST, ENCODING_RESPONSE, Encoding, FrameDecoder,
    PROTOCOL_VERSION, encoding_message, parse_encoding_message,
};
use crate::dtc::message::{
    EncodingResponse, Heartbeat, HistoricalOrderFillsReject, Incoming, Logoff, LogonResponse,
    Message, RequestReject, SubmitNewSingleOrder, TradeAccountResponse, decode, encode,
    logon_status,
};
use exchange::{Exchange, Push};

/// The port Sierra's DTC server listens on by default (the ES instance in product.md §9).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:11099";
/// The name in LOGON_RESPONSE.
pub const SERVER_NAME: &str = "mia dtc-sim";

/// How often blocked reads and the writer wake up to look at timers and flags. Short, because
/// it bounds how late a heartbeat, a dropped client or a stop is noticed.
const TICK: Duration = Duration::from_millis(20);
/// How long a connection may take to send its first bytes (the SC doc's 20 s for a response).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a bracket parent waits for its OCO before it is rejected. The OCO must come
/// "immediately"; a second is generous for a client on the same machine.
const PARENT_WAIT: Duration = Duration::from_secs(1);
/// A write that takes longer means the client stopped reading: drop it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// With coalesced frames, messages are gathered for this long (or up to [`COALESCE_MAX`]) and
/// written at once.
const COALESCE_WINDOW: Duration = Duration::from_millis(25);
/// Most messages in one coalesced write.
const COALESCE_MAX: usize = 4;

/// Why the sim could not start or load prices.
#[derive(Debug, thiserror::Error)]
pub enum DtcSimError {
    /// The listening (or control) address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Recorded prices could not be read.
    #[error("cannot read prices from {dir}: {why}")]
    Prices {
        /// The data folder.
        dir: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// A fault name that does not exist.
    #[error(
        "unknown fault `{0}` (split, coalesce, silent, disconnect, logoff, reject-next, clear)"
    )]
    UnknownFault(String),
}

/// A fault to inject (CLI `--fault NAME`, control `fault NAME`, [`SimHandle::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `split`: write every message one byte at a time, flushing each (until `clear`).
    SplitFrames,
    /// `coalesce`: gather several messages and write them with one `write` (until `clear`).
    CoalesceFrames,
    /// `silent`: the connections open now stop sending anything, heartbeats included, and
    /// stop answering (a hung server). New connections are served normally, so a client that
    /// times out and reconnects gets a working session.
    Silence,
    /// `disconnect`: close every connection now.
    Disconnect,
    /// `logoff`: send LOGOFF with DoNotReconnect=1 to every connection, then close them.
    Logoff,
    /// `reject-next`: reject the next new order (single, OCO, bracket or flatten) with an
    /// InfoText naming this fault.
    RejectNextOrder,
    /// `clear`: end split, coalesce, silence and a pending reject-next.
    Clear,
}

impl Fault {
    /// Every fault, in the order of the documentation.
    pub const ALL: [Fault; 7] = [
        Fault::SplitFrames,
        Fault::CoalesceFrames,
        Fault::Silence,
        Fault::Disconnect,
        Fault::Logoff,
        Fault::RejectNextOrder,
        Fault::Clear,
    ];

    /// The name used on the command line and in the control protocol.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SplitFrames => "split",
            Fault::CoalesceFrames => "coalesce",
            Fault::Silence => "silent",
            Fault::Disconnect => "disconnect",
            Fault::Logoff => "logoff",
            Fault::RejectNextOrder => "reject-next",
            Fault::Clear => "clear",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = DtcSimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| DtcSimError::UnknownFault(s.trim().to_owned()))
    }
}

/// How to start the sim.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to listen on (port 0: any free port; read it back with [`SimHandle::addr`]).
    pub listen: SocketAddr,
    /// The starting price of every symbol.
    pub price: f64,
    /// Address of the control line protocol, if any.
    pub control: Option<SocketAddr>,
    /// Faults in force from the start.
    pub faults: Vec<Fault>,
    /// The clock of fill times and heartbeats' `CurrentDateTime`.
    pub clock: Arc<dyn Clock>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 11099)),
            price: 6500.0,
            control: None,
            faults: Vec::new(),
            clock: Arc::new(LiveClock),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("price", &self.price)
            .field("control", &self.control)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// One message the server received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The connection, numbered from 1 in the order they were accepted.
    pub connection: u64,
    /// The message's `Type`.
    pub message_type: u16,
}

/// Starts sims.
#[derive(Debug)]
pub struct SimServer;

impl SimServer {
    /// Binds the listening (and control) sockets and starts serving in background threads.
    ///
    /// # Errors
    ///
    /// [`DtcSimError::Bind`] when an address cannot be bound.
    pub fn start(config: SimConfig) -> Result<SimHandle, DtcSimError> {
        let bind = |addr: SocketAddr| {
            TcpListener::bind(addr).map_err(|source| DtcSimError::Bind { addr, source })
        };
        let listener = bind(config.listen)?;
        let addr = local_addr(&listener, config.listen)?;
        let control = config.control.map(bind).transpose()?;
        let control_addr = match (&control, config.control) {
            (Some(l), Some(asked)) => Some(local_addr(l, asked)?),
            _ => None,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                exchange: Exchange::new(config.price),
                conns: BTreeMap::new(),
                received: Vec::new(),
                logons: 0,
            }),
            split: AtomicBool::new(false),
            coalesce: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            next_connection: AtomicU64::new(1),
            clock: config.clock,
        });
        for fault in config.faults {
            shared.inject(fault);
        }
        let mut threads = Vec::new();
        let accepting = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            accept_loop(&accepting, &listener, "DTC", serve);
        }));
        if let Some(listener) = control {
            let controlled = Arc::clone(&shared);
            threads.push(std::thread::spawn(move || {
                accept_loop(&controlled, &listener, "control", control::serve_control);
            }));
        }
        tracing::info!(%addr, ?control_addr, "dtc-sim listening");
        Ok(SimHandle {
            shared,
            addr,
            control_addr,
            threads,
        })
    }
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, DtcSimError> {
    listener.local_addr().map_err(|source| DtcSimError::Bind {
        addr: asked,
        source,
    })
}

/// A running sim. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the control protocol, when one was asked for.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// The current price.
    pub fn price(&self) -> f64 {
        self.shared.lock().exchange.price()
    }

    /// Moves the price; orders it reaches fill, and their updates are pushed.
    pub fn set_price(&self, price: f64) {
        self.shared.set_price(price);
    }

    /// Replays `prices` in a background thread, one every `interval` (accelerated time); the
    /// last one stays. Stops with the server.
    pub fn replay_prices(&self, prices: Vec<f64>, interval: Duration) {
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || control::replay(&shared, &prices, interval));
    }

    /// Follows the one-minute chart of a Sierra data folder while it grows, in a background
    /// thread: each new bar update or trade print of the first symbol moves the price, as
    /// Sierra's trade simulation fills from the live market. Stops with the server.
    ///
    /// # Errors
    ///
    /// [`DtcSimError::Prices`] when the folder cannot be read.
    pub fn follow_prices(&self, dir: &std::path::Path) -> Result<(), DtcSimError> {
        let follower = control::Follower::open(dir)?;
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || follower.run(&shared));
        Ok(())
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// Every order accepted this run, in arrival order (rejected orders are not kept).
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.lock().exchange.orders()
    }

    /// The latest order with this ClientOrderID.
    pub fn order(&self, client_order_id: &str) -> Option<SimOrder> {
        self.orders()
            .into_iter()
            .rev()
            .find(|o| o.client_order_id == client_order_id)
    }

    /// Every ClientOrderID received in new orders, in arrival order, duplicates and rejected
    /// ones included (an OCO contributes both legs, a bracket its parent first).
    pub fn client_order_ids(&self) -> Vec<String> {
        self.shared.lock().exchange.received_client_ids()
    }

    /// Every position that has ever had a fill (flat ones too).
    pub fn positions(&self) -> Vec<SimPosition> {
        self.shared.lock().exchange.positions()
    }

    /// The signed position of an account and symbol (0 when none).
    pub fn position(&self, trade_account: &str, symbol: &str) -> f64 {
        self.positions()
            .iter()
            .find(|p| p.trade_account == trade_account && p.symbol == symbol)
            .map_or(0.0, |p| p.quantity)
    }

    /// Every fill of this run.
    pub fn fills(&self) -> Vec<SimFill> {
        self.shared.lock().exchange.fills()
    }

    /// Every message received, in order, with its connection.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Connections open and logged on now.
    pub fn connections(&self) -> usize {
        let inner = self.shared.lock();
        inner
            .conns
            .values()
            .filter(|c| c.flags.logged_on.load(Ordering::Relaxed))
            .count()
    }

    /// LOGON_REQUESTs answered since the start (counts reconnects).
    pub fn logons(&self) -> u64 {
        self.shared.lock().logons
    }

    /// Stops the server: closes every connection and joins the accepting threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.shared.stop.swap(true, Ordering::Relaxed) {
            return;
        }
        self.shared.inject(Fault::Disconnect);
        // Blocking accepts wake up on a connection; they then see the stop flag.
        for addr in std::iter::once(self.addr).chain(self.control_addr) {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---- Shared state ---------------------------------------------------------------------------

/// What every thread of one server shares.
struct Shared {
    inner: Mutex<Inner>,
    split: AtomicBool,
    coalesce: AtomicBool,
    stop: AtomicBool,
    next_connection: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// The one lock: the book, the connections and the inspection log change together, so pushes
/// reach every connection in the same order.
struct Inner {
    exchange: Exchange,
    conns: BTreeMap<u64, ConnEntry>,
    received: Vec<Received>,
    logons: u64,
}

struct ConnEntry {
    tx: Sender<Outgoing>,
    /// A handle on the socket, to shut it down from other threads.
    stream: TcpStream,
    flags: Arc<ConnFlags>,
}

#[derive(Default)]
struct ConnFlags {
    logged_on: AtomicBool,
    silent: AtomicBool,
    closed: AtomicBool,
    heartbeat_secs: AtomicU64,
}

enum Outgoing {
    Bytes(Vec<u8>),
    /// Write what came before, then close.
    Close,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A thread that panicked while holding the lock left the book as it was; serving on is
        // better than taking every connection down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_micros() / 1000
    }

    fn set_price(&self, price: f64) {
        let now_ms = self.now_ms();
        let mut inner = self.lock();
        let pushes = inner.exchange.set_price(price, now_ms);
        inner.broadcast(pushes);
    }

    fn inject(&self, fault: Fault) {
        tracing::info!(fault = fault.name(), "fault injected");
        let mut inner = self.lock();
        match fault {
            Fault::SplitFrames => self.split.store(true, Ordering::Relaxed),
            Fault::CoalesceFrames => self.coalesce.store(true, Ordering::Relaxed),
            Fault::Silence => {
                for conn in inner.conns.values() {
                    conn.flags.silent.store(true, Ordering::Relaxed);
                }
            }
            Fault::Disconnect => {
                for conn in inner.conns.values() {
                    conn.flags.closed.store(true, Ordering::Relaxed);
                    let _ = conn.stream.shutdown(Shutdown::Both);
                }
            }
            Fault::Logoff => {
                let logoff = Logoff {
                    reason: "mia dtc-sim: logoff fault (do not reconnect)".to_owned(),
                    do_not_reconnect: true,
                };
                for conn in inner.conns.values() {
                    conn.send_message(&logoff);
                    let _ = conn.tx.send(Outgoing::Close);
                }
            }
            Fault::RejectNextOrder => inner.exchange.reject_next_order(),
            Fault::Clear => {
                self.split.store(false, Ordering::Relaxed);
                self.coalesce.store(false, Ordering::Relaxed);
                inner.exchange.clear_reject_next();
                for conn in inner.conns.values() {
                    conn.flags.silent.store(false, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Inner {
    /// Sends order and position updates to every logged-on connection.
    fn broadcast(&self, pushes: Vec<Push>) {
        for push in pushes {
            let bytes = match &push {
                Push::Order(update) => encode(update.as_ref()),
                Push::Position(update) => encode(update),
            };
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode an update");
                    continue;
                }
            };
            for conn in self.conns.values() {
                if conn.flags.logged_on.load(Ordering::Relaxed) {
                    let _ = conn.tx.send(Outgoing::Bytes(bytes.clone()));
                }
            }
        }
    }
}

impl ConnEntry {
    fn send_message<M: Message>(&self, message: &M) {
        match encode(message) {
            Ok(bytes) => {
                let _ = self.tx.send(Outgoing::Bytes(bytes));
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a reply"),
        }
    }
}

// ---- Accepting ------------------------------------------------------------------------------

/// Serves each connection of `listener` with `serve` on its own thread, until the sim stops.
fn accept_loop(
    shared: &Arc<Shared>,
    listener: &TcpListener,
    what: &'static str,
    serve: fn(&Arc<Shared>, TcpStream),
) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        match stream {
            Ok(stream) => {
                let shared = Arc::clone(shared);
                std::thread::spawn(move || serve(&shared, stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                // Out of file descriptors and the like: do not spin.
                std::thread::sleep(TICK);
            }
        }
    }
}

fn serve(shared: &Arc<Shared>, stream: TcpStream) {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let span = tracing::info_span!("dtc-sim connection", id, %peer);
    let _entered = span.enter();
    let (Ok(registry_stream), Ok(writer_stream)) = (stream.try_clone(), stream.try_clone()) else {
        tracing::warn!("cannot clone the socket; closing");
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = writer_stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (tx, rx) = mpsc::channel();
    let flags = Arc::new(ConnFlags::default());
    shared.lock().conns.insert(
        id,
        ConnEntry {
            tx: tx.clone(),
            stream: registry_stream,
            flags: Arc::clone(&flags),
        },
    );
    let writer_shared = Arc::clone(shared);
    let writer_flags = Arc::clone(&flags);
    let writer = std::thread::spawn(move || {
        write_loop(&writer_shared, &writer_flags, writer_stream, &rx);
    });
    let mut conn = Conn {
        id,
        shared: Arc::clone(shared),
        stream,
        tx,
        flags,
        decoder: FrameDecoder::new(),
        pending_parent: None,
        last_received: Stopwatch::start(),
    };
    tracing::debug!("connected");
    match conn.run() {
        Ok(()) => tracing::debug!("closed"),
        // A bad frame or a dead client: log it and close, never panic on client input.
        Err(e) => tracing::warn!(error = %e, "closing the connection"),
    }
    shared.lock().conns.remove(&id);
    let _ = conn.tx.send(Outgoing::Close);
    let _ = writer.join();
}

/// The reading side of one connection.
struct Conn {
    id: u64,
    shared: Arc<Shared>,
    stream: TcpStream,
    tx: Sender<Outgoing>,
    flags: Arc<ConnFlags>,
    decoder: FrameDecoder,
    /// A bracket parent waiting for its OCO, and since when.
    pending_parent: Option<(SubmitNewSingleOrder, Stopwatch)>,
    last_received: Stopwatch,
}

impl Conn {
    fn run(&mut self) -> Result<(), DtcError> {
        self.stream
            .set_read_timeout(Some(TICK))
            .map_err(|e| DtcError::Io(e.to_string()))?;
        self.handshake()?;
        let mut buf = [0u8; 8192];
        loop {
            if self.is_stopping() {
                return Ok(());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.last_received = Stopwatch::start();
                    self.decoder.push(&buf[..n]);
                    while let Some(frame) = self.decoder.next_frame()? {
                        if !self.handle(&frame)? {
                            return Ok(());
                        }
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(DtcError::Io(e.to_string())),
            }
            self.on_tick()?;
        }
    }

    fn is_stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed) || self.flags.closed.load(Ordering::Relaxed)
    }

    /// The binary ENCODING_REQUEST, answered with JSON; or JSON at once (`{` first).
    fn handshake(&mut self) -> Result<(), DtcError> {
        let mut request = [0u8; ENCODING_MESSAGE_SIZE];
        self.read_exact_within(&mut request[..1])?;
        if request[0] == b'{' {
            tracing::debug!("no handshake: the client speaks JSON at once");
            self.decoder.push(&request[..1]);
            return Ok(());
        }
        self.read_exact_within(&mut request[1..])?;
        let parsed = parse_encoding_message(&request)?;
        if parsed.message_type != ENCODING_REQUEST {
            return Err(DtcError::Protocol(format!(
                "expected ENCODING_REQUEST, got type {}",
                parsed.message_type
            )));
        }
        if parsed.encoding != Encoding::Json {
            // The server answers with the encoding it will use; the sim only speaks JSON.
            tracing::info!(asked = ?parsed.encoding, "client asked for another encoding; answering JSON");
        }
        let response = encoding_message(ENCODING_RESPONSE, Encoding::Json);
        let _ = self.tx.send(Outgoing::Bytes(response.to_vec()));
        Ok(())
    }

    fn read_exact_within(&mut self, buf: &mut [u8]) -> Result<(), DtcError> {
        let watch = Stopwatch::start();
        let mut filled = 0;
        while filled < buf.len() {
            if self.is_stopping() {
                return Err(DtcError::Io("server stopping".to_owned()));
            }
            if watch.elapsed() > HANDSHAKE_TIMEOUT {
                return Err(DtcError::Io("no encoding request within 20 s".to_owned()));
            }
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(DtcError::Io("closed during the handshake".to_owned())),
                Ok(n) => filled += n,
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(DtcError::Io(e.to_string())),
            }
        }
        Ok(())
    }

    /// Timers: a client silent for twice its heartbeat interval is dropped, a bracket parent
    /// whose OCO never came is rejected.
    fn on_tick(&mut self) -> Result<(), DtcError> {
        if self.flags.silent.load(Ordering::Relaxed) {
            // A hung server notices nothing.
            return Ok(());
        }
        let heartbeat = self.flags.heartbeat_secs.load(Ordering::Relaxed);
        if heartbeat > 0
            && self.flags.logged_on.load(Ordering::Relaxed)
            && self.last_received.elapsed() > Duration::from_secs(2 * heartbeat)
        {
            return Err(DtcError::Io(format!(
                "client silent for more than 2 × its {heartbeat} s heartbeat interval"
            )));
        }
        if self
            .pending_parent
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() > PARENT_WAIT)
            && let Some((parent, _)) = self.pending_parent.take()
        {
            let mut inner = self.shared.lock();
            let pushes = inner.exchange.reject_lonely_parent(&parent);
            inner.broadcast(pushes);
        }
        Ok(())
    }

    /// Handles one frame; `Ok(false)` when the client logged off.
    fn handle(&mut self, frame: &[u8]) -> Result<bool, DtcError> {
        if frame.is_empty() {
            return Ok(true);
        }
        if self.flags.silent.load(Ordering::Relaxed) {
            tracing::debug!("silent: ignoring a message");
            return Ok(true);
        }
        let message = decode(frame)?;
        let now_ms = self.shared.now_ms();
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        inner.received.push(Received {
            connection: self.id,
            message_type: message.message_type(),
        });
        let is_session = matches!(
            message,
            Incoming::EncodingRequest(_)
                | Incoming::LogonRequest(_)
                | Incoming::Heartbeat(_)
                | Incoming::Logoff(_)
        );
        if !is_session && !self.flags.logged_on.load(Ordering::Relaxed) {
            tracing::warn!(
                message_type = message.message_type(),
                "message before LOGON_REQUEST ignored"
            );
            return Ok(true);
        }
        // The bracket rule: "if the next message the server receives is not a
        // SUBMIT_NEW_OCO_ORDER [naming the parent], then it should reject" the parent.
        if let Some((parent, _)) = self.pending_parent.take() {
            if let Incoming::SubmitNewOcoOrder(oco) = &message
                && oco.parent_trigger_client_order_id == parent.client_order_id
            {
                let pushes = inner.exchange.submit_oco(oco, Some(&parent), now_ms);
                inner.broadcast(pushes);
                return Ok(true);
            }
            let pushes = inner.exchange.reject_lonely_parent(&parent);
            inner.broadcast(pushes);
        }
        if let Incoming::Logoff(logoff) = &message {
            tracing::info!(reason = %logoff.reason, "client logged off");
            return Ok(false);
        }
        let pushes = match message {
            Incoming::EncodingRequest(_) | Incoming::LogonRequest(_) | Incoming::Heartbeat(_) => {
                self.session(&mut inner, message);
                Vec::new()
            }
            Incoming::TradeAccountsRequest(_)
            | Incoming::SecurityDefinitionForSymbolRequest(_)
            | Incoming::OpenOrdersRequest(_)
            | Incoming::CurrentPositionsRequest(_)
            | Incoming::HistoricalOrderFillsRequest(_) => {
                self.answer(&inner.exchange, message, now_ms);
                Vec::new()
            }
            Incoming::SubmitNewSingleOrder(order) if order.is_parent_order => {
                self.pending_parent = Some((order, Stopwatch::start()));
                Vec::new()
            }
            other => order_entry(&mut inner.exchange, other, frame, now_ms),
        };
        inner.broadcast(pushes);
        Ok(true)
    }

    /// ENCODING_REQUEST in JSON, LOGON_REQUEST, HEARTBEAT.
    fn session(&self, inner: &mut Inner, message: Incoming) {
        match message {
            Incoming::EncodingRequest(request) => {
                // A client of a server preset to JSON may ask in JSON; the answer is JSON too.
                if request.encoding != Encoding::Json.code() {
                    tracing::info!(asked = request.encoding, "answering JSON");
                }
                self.reply(&EncodingResponse {
                    protocol_version: PROTOCOL_VERSION,
                    encoding: Encoding::Json.code(),
                    protocol_type: "DTC".to_owned(),
                });
            }
            Incoming::LogonRequest(logon) => {
                // No authentication: Sierra only checks credentials when configured to.
                let heartbeat = u64::try_from(logon.heartbeat_interval_in_seconds).unwrap_or(0);
                self.flags
                    .heartbeat_secs
                    .store(heartbeat, Ordering::Relaxed);
                self.flags.logged_on.store(true, Ordering::Relaxed);
                inner.logons += 1;
                tracing::info!(client = %logon.client_name, heartbeat, "logged on");
                self.reply(&LogonResponse {
                    protocol_version: PROTOCOL_VERSION,
                    result: logon_status::SUCCESS,
                    result_text: "logged on to mia dtc-sim (simulated trading)".to_owned(),
                    reconnect_address: String::new(),
                    server_name: SERVER_NAME.to_owned(),
                    trading_is_supported: true,
                    oco_orders_supported: true,
                    order_cancel_replace_supported: true,
                    security_definitions_supported: true,
                    bracket_orders_supported: true,
                });
            }
            // A heartbeat only proves the client is alive; the read already noted that.
            _ => {}
        }
    }

    /// The requests answered to this connection only.
    fn answer(&self, exchange: &Exchange, message: Incoming, now_ms: i64) {
        match message {
            Incoming::TradeAccountsRequest(r) => self.reply(&TradeAccountResponse {
                total_number_messages: 1,
                message_number: 1,
                trade_account: SIM_ACCOUNT.to_owned(),
                request_id: r.request_id,
                trading_is_disabled: false,
            }),
            Incoming::SecurityDefinitionForSymbolRequest(r) => {
                self.reply(&exchange::security_definition(&r));
            }
            Incoming::OpenOrdersRequest(r) => {
                exchange.open_orders(&r).iter().for_each(|u| self.reply(u));
            }
            Incoming::CurrentPositionsRequest(r) => {
                exchange
                    .current_positions(&r)
                    .iter()
                    .for_each(|p| self.reply(p));
            }
            Incoming::HistoricalOrderFillsRequest(r) => match exchange.historical_fills(&r, now_ms)
            {
                Ok(fills) => fills.iter().for_each(|f| self.reply(f)),
                Err(reject_text) => self.reply(&HistoricalOrderFillsReject(RequestReject {
                    request_id: r.request_id,
                    reject_text,
                })),
            },
            _ => {}
        }
    }

    fn reply<M: Message>(&self, message: &M) {
        match encode(message) {
            Ok(bytes) => {
                let _ = self.tx.send(Outgoing::Bytes(bytes));
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a reply"),
        }
    }
}

/// New orders, cancels and replaces; the updates to push. Other types are discarded.
fn order_entry(exchange: &mut Exchange, message: Incoming, frame: &[u8], now_ms: i64) -> Vec<Push> {
    match message {
        Incoming::SubmitNewSingleOrder(order) => exchange.submit_single(&order, now_ms),
        Incoming::SubmitNewOcoOrder(oco) => exchange.submit_oco(&oco, None, now_ms),
        Incoming::CancelOrder(cancel) => exchange.cancel(&cancel),
        Incoming::CancelReplaceOrder(replace) => {
            let (price1_is_set, price2_is_set) = is_set_flags(frame);
            exchange.cancel_replace(&replace, price1_is_set, price2_is_set, now_ms)
        }
        Incoming::SubmitFlattenPositionOrder(flatten) => exchange.flatten(&flatten, now_ms),
        other => {
            // Server-to-client types and types the sim does not serve (market data, balances,
            // symbol lists): read and discarded, as the protocol asks.
            tracing::debug!(message_type = other.message_type(), "message ignored");
            Vec::new()
        }
    }
}

/// `Price1IsSet`/`Price2IsSet` of a CANCEL_REPLACE_ORDER frame. The protocol's default is 1, so
/// an absent flag means "set"; the typed message cannot tell absent from 0, hence this peek.
fn is_set_flags(frame: &[u8]) -> (bool, bool) {
    #[derive(serde::Deserialize)]
    struct Flags {
        #[serde(rename = "Price1IsSet")]
        price1: Option<serde_json::Value>,
        #[serde(rename = "Price2IsSet")]
        price2: Option<serde_json::Value>,
    }
    let is_set = |v: Option<serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(_) => false,
    };
    match serde_json::from_slice::<Flags>(frame) {
        Ok(flags) => (is_set(flags.price1), is_set(flags.price2)),
        Err(_) => (true, true),
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

// ---- Writing --------------------------------------------------------------------------------

/// The writing side of one connection: replies and pushes from the channel, heartbeats at the
/// client's interval, and the framing faults.
fn write_loop(shared: &Shared, flags: &ConnFlags, mut stream: TcpStream, rx: &Receiver<Outgoing>) {
    let mut since_heartbeat = Stopwatch::start();
    loop {
        let mut closing = false;
        match rx.recv_timeout(TICK) {
            Ok(Outgoing::Bytes(first)) => {
                let (batch, close) = gather(shared, first, rx);
                closing = close;
                if let Err(e) = write_batch(shared, flags, &mut stream, &batch) {
                    tracing::debug!(error = %e, "write failed");
                    break;
                }
            }
            Ok(Outgoing::Close) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if closing || flags.closed.load(Ordering::Relaxed) || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let heartbeat = flags.heartbeat_secs.load(Ordering::Relaxed);
        if heartbeat > 0
            && flags.logged_on.load(Ordering::Relaxed)
            && since_heartbeat.elapsed() >= Duration::from_secs(heartbeat)
        {
            since_heartbeat = Stopwatch::start();
            let beat = Heartbeat {
                num_dropped_messages: 0,
                current_date_time: shared.clock.now().as_micros() / 1_000_000,
            };
            let Ok(bytes) = encode(&beat) else { continue };
            if let Err(e) = write_batch(shared, flags, &mut stream, &[bytes]) {
                tracing::debug!(error = %e, "heartbeat write failed");
                break;
            }
        }
    }
    flags.closed.store(true, Ordering::Relaxed);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// With coalescing on, more messages to write together with `first`; and whether a close came.
fn gather(shared: &Shared, first: Vec<u8>, rx: &Receiver<Outgoing>) -> (Vec<Vec<u8>>, bool) {
    let mut batch = vec![first];
    if !shared.coalesce.load(Ordering::Relaxed) {
        return (batch, false);
    }
    let watch = Stopwatch::start();
    while batch.len() < COALESCE_MAX {
        let Some(left) = COALESCE_WINDOW.checked_sub(watch.elapsed()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok(Outgoing::Bytes(bytes)) => batch.push(bytes),
            Ok(Outgoing::Close) | Err(RecvTimeoutError::Disconnected) => return (batch, true),
            Err(RecvTimeoutError::Timeout) => break,
        }
    }
    (batch, false)
}

fn write_batch(
    shared: &Shared,
    flags: &ConnFlags,
    stream: &mut TcpStream,
    batch: &[Vec<u8>],
) -> std::io::Result<()> {
    if flags.silent.load(Ordering::Relaxed) {
        return Ok(());
    }
    if shared.split.load(Ordering::Relaxed) {
        // One byte per write and a flush each: with TCP_NODELAY each goes out on its own, so
        // the client sees every message arrive in pieces.
        for byte in batch.iter().flatten() {
            stream.write_all(std::slice::from_ref(byte))?;
            stream.flush()?;
        }
        return Ok(());
    }
    // One `write` for the whole batch: coalesced messages arrive together.
    let bytes: Vec<u8> = batch.concat();
    stream.write_all(&bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_can_be_shared_across_threads() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<SimHandle>();
    }

    #[test]
    fn cancel_replace_flags_default_to_set() {
        assert_eq!(is_set_flags(br#"{"Type":204,"Price1":1.0}"#), (true, true));
        assert_eq!(
            is_set_flags(br#"{"Type":204,"Price1IsSet":1,"Price2IsSet":0}"#),
            (true, false)
        );
        assert!(!is_set_flags(br#"{"Type":204,"Price1IsSet":false}"#).0);
    }
}
