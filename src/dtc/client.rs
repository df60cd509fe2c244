//! The DTC client session of one instrument (product.md §9, `dtc.md` §2.3–2.4).
//!
//! One session thread owns the connection and is its only writer; a reader thread per
//! connection turns bytes into messages. Both feed one channel, so the session handles
//! messages, commands and timers in order:
//!
//! 1. connect (TCP_NODELAY), the binary encoding handshake (or none, for a server preset to
//!    JSON), LOGON_REQUEST with the heartbeat interval;
//! 2. TRADE_ACCOUNTS, the SECURITY_DEFINITION of the symbol (an unknown symbol, which Sierra
//!    never rejects, shows as an empty description or a zero tick: the session refuses to
//!    trade), then the re-synchronisation: open orders, positions, fills of the day, each
//!    request sent after the previous reply is complete (Sierra rejects requests that come too
//!    fast);
//! 3. only then is the session ready, and orders are accepted. A bracket's parent and its OCO
//!    go out in one write: nothing, not even a heartbeat, can come between them.
//!
//! Heartbeats go out every interval; a peer silent for twice the interval is dead. On any loss
//! the session reconnects with a doubling backoff and re-synchronises before the next order,
//! unless the server said LOGOFF with DoNotReconnect or refused the logon for good.
//! The password is never logged: [`Secret`] prints as `***`.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::DtcError;
use super::frame::{
    ENCODING_MESSAGE_SIZE, ENCODING_REQUEST, ENCODING_RESPONSE, Encoding, FrameDecoder,
    PROTOCOL_VERSION, encoding_message, parse_encoding_message,
};
use super::ids::IdAllocator;
use super::message::{
    self, CancelOrder, CancelReplaceOrder, CurrentPositionsRequest, Heartbeat,
    HistoricalOrderFillsRequest, Incoming, LogonRequest, Message, OpenOrdersRequest,
    SecurityDefinitionForSymbolRequest, SubmitFlattenPositionOrder, SubmitNewOcoOrder,
    SubmitNewSingleOrder, TradeAccountsRequest, buy_sell, logon_status, order_status, order_type,
    time_in_force,
};
use super::orders::{OrderBook, OrderEvent, OrderState};
use crate::clock::{Clock, Stopwatch};
use crate::config::{Config, DtcConfig};

/// A password: never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Whether to start with the binary encoding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Send the 16-byte binary ENCODING_REQUEST for JSON (Sierra's "Automatic" encoding).
    BinaryRequest,
    /// Send nothing: the server is preset to JSON.
    Skip,
}

/// Settings of one session.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server address, e.g. `127.0.0.1:11099`.
    pub addr: String,
    /// Full Sierra symbol, e.g. `ESZ25_FUT_CME`.
    pub symbol: String,
    /// Tick size mia expects for the symbol; the server's MinPriceIncrement must match.
    pub tick_size: f64,
    /// Trade account; empty takes the first the server lists.
    pub trade_account: String,
    /// User name (blank unless the server requires authentication).
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Heartbeat interval; a peer silent for twice this is dead.
    pub heartbeat: Duration,
    /// Encoding handshake.
    pub handshake: Handshake,
    /// First reconnect delay; it doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// How long a request may wait for its reply.
    pub request_timeout: Duration,
    /// Prefix of ClientOrderIDs (the instrument), e.g. `ES`.
    pub id_prefix: String,
    /// Folder of the persisted ClientOrderID counter.
    pub state_dir: PathBuf,
}

impl ClientConfig {
    /// The session of `instrument` as the config describes it: `[dtc]`, and the instrument's
    /// `symbol`, `dtc_address` and tick size. `password` is what
    /// [`ClientConfig::password_from_env`] found.
    ///
    /// # Errors
    ///
    /// [`DtcError::Config`] naming the missing key.
    pub fn from_config(
        config: &Config,
        instrument: &str,
        password: Secret,
    ) -> Result<ClientConfig, DtcError> {
        let missing = |what: &str| {
            DtcError::Config(format!(
                "instruments.{instrument}.{what} is needed for live trading (config/mia.toml documents it)"
            ))
        };
        let inst = config.instruments.get(instrument).ok_or_else(|| {
            DtcError::Config(format!("no [instruments.{instrument}] in the config"))
        })?;
        let dtc = &config.dtc;
        Ok(ClientConfig {
            addr: inst
                .dtc_address
                .clone()
                .ok_or_else(|| missing("dtc_address"))?,
            symbol: inst.symbol.clone().ok_or_else(|| missing("symbol"))?,
            tick_size: inst.spec.tick_size,
            trade_account: dtc.trade_account.clone(),
            username: dtc.username.clone(),
            password,
            heartbeat: Duration::from_secs(dtc.heartbeat_secs),
            handshake: if dtc.encoding_request {
                Handshake::BinaryRequest
            } else {
                Handshake::Skip
            },
            reconnect_initial: Duration::from_millis(dtc.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(dtc.reconnect_max_ms),
            request_timeout: Duration::from_secs(dtc.request_timeout_secs),
            id_prefix: instrument.to_owned(),
            state_dir: config.paths.state_dir.clone(),
        })
    }

    /// The password from the environment variable `[dtc] password_env` names, through
    /// `lookup` (`std::env::var` at the binary's edge); empty when none is named.
    ///
    /// # Errors
    ///
    /// [`DtcError::Config`] when the variable is named but not set (the message names the
    /// variable, never a value).
    pub fn password_from_env(
        dtc: &DtcConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, DtcError> {
        match &dtc.password_env {
            None => Ok(Secret::default()),
            Some(name) => lookup(name).map(Secret).ok_or_else(|| {
                DtcError::Config(format!(
                    "dtc.password_env names {name}, which is not set in the environment"
                ))
            }),
        }
    }
}

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum SessionStatus {
    /// Connecting, logging on or re-synchronising.
    Connecting,
    /// Logged on and re-synchronised: orders may be sent.
    Ready,
    /// Connection lost; a reconnect is scheduled.
    Down(String),
    /// Stopped for good (DoNotReconnect, a final logon refusal, or [`DtcClient::stop`]).
    Stopped(String),
}

/// Something the session reports, in order. Serialized for the order journal with an `event`
/// tag (`{"event":"order","order":"rejected","client_order_id":…,"info_text":…}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Logged on and re-synchronised.
    Ready {
        /// Connection number (1 for the first, then one more per reconnect).
        connection: u32,
        /// Trade account in use.
        account: String,
    },
    /// The connection was lost.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The server said LOGOFF.
    LoggedOff {
        /// Its reason.
        reason: String,
        /// It asked not to reconnect.
        do_not_reconnect: bool,
    },
    /// An order was rejected, filled, or refused a cancel.
    Order(OrderEvent),
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    fn code(self) -> i32 {
        match self {
            Side::Buy => buy_sell::BUY,
            Side::Sell => buy_sell::SELL,
        }
    }

    fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// A bracket: an entry, then a target and a stop that cancel each other once it fills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    /// Side of the entry.
    pub side: Side,
    /// Contracts.
    pub quantity: u32,
    /// Entry limit price; `None` for a market entry.
    pub entry: Option<f64>,
    /// Target (limit) price.
    pub target: f64,
    /// Stop price.
    pub stop: f64,
}

/// The ClientOrderIDs of a bracket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BracketIds {
    /// Entry.
    pub parent: String,
    /// Target.
    pub target: String,
    /// Stop.
    pub stop: String,
}

enum Command {
    Bracket(Bracket, Sender<Result<BracketIds, DtcError>>),
    Cancel(String, Sender<Result<(), DtcError>>),
    Replace(String, f64, Sender<Result<(), DtcError>>),
    Flatten(Sender<Result<Option<String>, DtcError>>),
    Stop,
}

enum Event {
    Message(u32, Box<Incoming>),
    Closed(u32, String),
    Command(Command),
}

#[derive(Debug)]
struct Shared {
    status: SessionStatus,
    book: OrderBook,
    account: String,
    /// Wire price = display price / this (`dtc.md` §1.4, price formatting).
    price_multiplier: f64,
    connections: u32,
}

/// A running client session.
pub struct DtcClient {
    shared: Arc<Mutex<Shared>>,
    commands: Sender<Event>,
    events: Mutex<Receiver<ClientEvent>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for DtcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtcClient")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave the book half-written: every change is one assignment.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DtcClient {
    /// Starts the session thread; it connects at once and keeps reconnecting.
    ///
    /// # Errors
    ///
    /// [`DtcError::Io`] when the ClientOrderID counter cannot be opened.
    pub fn start(config: ClientConfig, clock: Arc<dyn Clock>) -> Result<DtcClient, DtcError> {
        let ids = IdAllocator::open(&config.state_dir, &config.id_prefix)?;
        let shared = Arc::new(Mutex::new(Shared {
            status: SessionStatus::Connecting,
            book: OrderBook::default(),
            account: config.trade_account.clone(),
            price_multiplier: 1.0,
            connections: 0,
        }));
        let (tx, rx) = mpsc::channel();
        let (events_tx, events_rx) = mpsc::channel();
        let mut session = Session {
            config,
            clock,
            ids,
            shared: Arc::clone(&shared),
            tx: tx.clone(),
            rx,
            events: events_tx,
            stream: None,
            connection: 0,
            last_received: Stopwatch::start(),
            last_sent: Stopwatch::start(),
            next_request_id: 1,
        };
        let thread = std::thread::Builder::new()
            .name("dtc-session".into())
            .spawn(move || session.run())
            .map_err(|e| DtcError::Io(e.to_string()))?;
        Ok(DtcClient {
            shared,
            commands: tx,
            events: Mutex::new(events_rx),
            thread: Some(thread),
        })
    }

    /// Where the session stands.
    pub fn status(&self) -> SessionStatus {
        lock(&self.shared).status.clone()
    }

    /// The orders the session knows, by ClientOrderID.
    pub fn orders(&self) -> Vec<OrderState> {
        lock(&self.shared).book.orders().cloned().collect()
    }

    /// One order.
    pub fn order(&self, client_order_id: &str) -> Option<OrderState> {
        lock(&self.shared).book.get(client_order_id).cloned()
    }

    /// Signed position of the session's symbol, as the server last stated it.
    pub fn position(&self, symbol: &str) -> f64 {
        lock(&self.shared).book.position(symbol)
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<ClientEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_timeout(timeout)
            .ok()
    }

    fn call<T>(
        &self,
        make: impl FnOnce(Sender<Result<T, DtcError>>) -> Command,
    ) -> Result<T, DtcError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Event::Command(make(tx)))
            .map_err(|_| DtcError::Io("the session has stopped".into()))?;
        rx.recv()
            .map_err(|_| DtcError::Io("the session has stopped".into()))?
    }

    /// Sends a bracket: the entry with IsParentOrder, then at once its OCO (target and stop,
    /// children of the entry).
    ///
    /// # Errors
    ///
    /// [`DtcError::NotReady`] unless the session is logged on and re-synchronised (orders are
    /// never queued across a reconnect: the market may have moved), [`DtcError::Protocol`] for
    /// prices that are not finite or not on the tick.
    pub fn submit_bracket(&self, bracket: Bracket) -> Result<BracketIds, DtcError> {
        self.call(|tx| Command::Bracket(bracket, tx))
    }

    /// Cancels a working order.
    ///
    /// # Errors
    ///
    /// [`DtcError::NotReady`], or [`DtcError::Protocol`] for an order the session does not know.
    pub fn cancel(&self, client_order_id: &str) -> Result<(), DtcError> {
        let id = client_order_id.to_owned();
        self.call(|tx| Command::Cancel(id, tx))
    }

    /// Moves a working order to a new price (cancel-replace; the quantity is unchanged).
    ///
    /// # Errors
    ///
    /// As [`DtcClient::cancel`].
    pub fn replace_price(&self, client_order_id: &str, price: f64) -> Result<(), DtcError> {
        let id = client_order_id.to_owned();
        self.call(|tx| Command::Replace(id, price, tx))
    }

    /// Cancels every working order, then flattens the position; returns the flattening order's
    /// id when there was a position.
    ///
    /// # Errors
    ///
    /// [`DtcError::NotReady`].
    pub fn flatten(&self) -> Result<Option<String>, DtcError> {
        self.call(Command::Flatten)
    }

    /// The session thread has ended (after [`SessionStatus::Stopped`]): it will never connect
    /// again.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the session and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Event::Command(Command::Stop));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DtcClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Session {
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    ids: IdAllocator,
    shared: Arc<Mutex<Shared>>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    events: Sender<ClientEvent>,
    stream: Option<TcpStream>,
    /// Number of the current connection; messages of older ones are ignored.
    connection: u32,
    last_received: Stopwatch,
    last_sent: Stopwatch,
    next_request_id: i32,
}

/// Why a connection ended.
enum End {
    /// Reconnect after a delay.
    Retry(String),
    /// Stop for good.
    Final(String),
}

impl Session {
    fn run(&mut self) {
        let mut delay = self.config.reconnect_initial;
        loop {
            let end = self.connection_lifetime();
            self.close();
            match end {
                End::Final(reason) => {
                    // Stopped by mia itself (the end of a run) is not worth a warning.
                    if reason == "stopped" {
                        tracing::info!(target: "dtc", "DTC session stopped");
                    } else {
                        tracing::warn!(target: "dtc", %reason, "DTC session stopped");
                    }
                    self.set_status(SessionStatus::Stopped(reason));
                    return;
                }
                End::Retry(reason) => {
                    tracing::warn!(target: "dtc", %reason, retry_in_ms = delay.as_millis() as u64, "DTC connection lost");
                    let _ = self.events.send(ClientEvent::Disconnected {
                        reason: reason.clone(),
                    });
                    self.set_status(SessionStatus::Down(reason));
                    if let Some(end) = self.wait_while_down(delay) {
                        self.set_status(SessionStatus::Stopped(end.clone()));
                        return;
                    }
                    delay = (delay * 2).min(self.config.reconnect_max);
                }
            }
            // A connection that got as far as ready resets the backoff.
            if lock(&self.shared).status == SessionStatus::Ready {
                delay = self.config.reconnect_initial;
            }
        }
    }

    fn set_status(&self, status: SessionStatus) {
        lock(&self.shared).status = status;
    }

    /// Waits out a reconnect delay, refusing commands meanwhile; `Some` when told to stop.
    fn wait_while_down(&mut self, delay: Duration) -> Option<String> {
        let waited = Stopwatch::start();
        while let Some(left) = delay.checked_sub(waited.elapsed()) {
            match self.rx.recv_timeout(left) {
                Ok(Event::Command(Command::Stop)) | Err(RecvTimeoutError::Disconnected) => {
                    return Some("stopped".into());
                }
                Ok(Event::Command(cmd)) => refuse(cmd, "the DTC connection is down"),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
        None
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// One connection, from connect to loss.
    fn connection_lifetime(&mut self) -> End {
        self.set_status(SessionStatus::Connecting);
        if let Err(end) = self.connect() {
            return end;
        }
        if let Err(end) = self.logon_and_sync() {
            return end;
        }
        let (connection, account) = {
            let mut s = lock(&self.shared);
            s.status = SessionStatus::Ready;
            s.connections = self.connection;
            (self.connection, s.account.clone())
        };
        tracing::info!(target: "dtc", connection, %account, symbol = %self.config.symbol, "DTC session ready");
        let _ = self.events.send(ClientEvent::Ready {
            connection,
            account,
        });
        loop {
            match self.next_event() {
                Err(end) => return end,
                Ok(Event::Command(Command::Stop)) => return End::Final("stopped".into()),
                Ok(Event::Command(cmd)) => {
                    if let Err(end) = self.command(cmd) {
                        return end;
                    }
                }
                Ok(Event::Message(_, msg)) => {
                    if let Some(end) = self.message(*msg) {
                        return end;
                    }
                }
                Ok(Event::Closed(..)) => {}
            }
        }
    }

    /// The next event of the current connection, sending heartbeats and watching the peer.
    fn next_event(&mut self) -> Result<Event, End> {
        loop {
            let silent = self.last_received.elapsed();
            let dead_after = self.config.heartbeat * 2;
            if silent >= dead_after {
                return Err(End::Retry(format!(
                    "no message from the server for {:.1} s (twice the heartbeat interval)",
                    silent.as_secs_f64()
                )));
            }
            if self.last_sent.elapsed() >= self.config.heartbeat {
                self.send(&Heartbeat {
                    current_date_time: self.clock.now().as_micros() / 1_000_000,
                    ..Heartbeat::default()
                })?;
            }
            let until_heartbeat = self
                .config
                .heartbeat
                .saturating_sub(self.last_sent.elapsed());
            let until_dead = dead_after.saturating_sub(silent);
            let wait = until_heartbeat
                .min(until_dead)
                .max(Duration::from_millis(1));
            match self.rx.recv_timeout(wait) {
                Ok(Event::Message(c, msg)) if c == self.connection => {
                    self.last_received = Stopwatch::start();
                    return Ok(Event::Message(c, msg));
                }
                Ok(Event::Closed(c, reason)) if c == self.connection => {
                    return Err(End::Retry(reason));
                }
                Ok(Event::Message(..) | Event::Closed(..)) => {}
                Ok(event @ Event::Command(_)) => return Ok(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(End::Final("stopped".into())),
            }
        }
    }

    fn connect(&mut self) -> Result<(), End> {
        let retry = |what: &str, e: &dyn fmt::Display| {
            End::Retry(format!("{what} {}: {e}", self.config.addr))
        };
        let addr = self
            .config
            .addr
            .to_socket_addrs()
            .map_err(|e| retry("cannot resolve", &e))?
            .next()
            .ok_or_else(|| End::Retry(format!("no address for {}", self.config.addr)))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.config.request_timeout)
            .map_err(|e| retry("cannot connect to", &e))?;
        let _ = stream.set_nodelay(true);
        self.connection += 1;
        if self.config.handshake == Handshake::BinaryRequest {
            stream
                .write_all(&encoding_message(ENCODING_REQUEST, Encoding::Json))
                .map_err(|e| retry("cannot write to", &e))?;
            stream
                .set_read_timeout(Some(self.config.request_timeout))
                .map_err(|e| retry("socket", &e))?;
            let mut reply = [0u8; ENCODING_MESSAGE_SIZE];
            stream
                .read_exact(&mut reply)
                .map_err(|e| retry("no encoding response from", &e))?;
            let reply = parse_encoding_message(&reply).map_err(|e| End::Retry(e.to_string()))?;
            if reply.message_type != ENCODING_RESPONSE || reply.encoding != Encoding::Json {
                return Err(End::Final(format!(
                    "the server at {} will not speak JSON (it answered {:?}); set its DTC encoding to JSON or Automatic",
                    self.config.addr, reply.encoding
                )));
            }
        }
        let _ = stream.set_read_timeout(None);
        let reader = stream.try_clone().map_err(|e| retry("socket", &e))?;
        spawn_reader(reader, self.connection, self.tx.clone());
        self.stream = Some(stream);
        self.last_received = Stopwatch::start();
        self.last_sent = Stopwatch::start();
        Ok(())
    }

    fn send<M: Message>(&mut self, message: &M) -> Result<(), End> {
        let bytes = message::encode(message).map_err(|e| End::Retry(e.to_string()))?;
        self.write(&bytes)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(End::Retry("not connected".into()));
        };
        stream
            .write_all(bytes)
            .map_err(|e| End::Retry(format!("write failed: {e}")))?;
        self.last_sent = Stopwatch::start();
        Ok(())
    }

    /// Waits for messages until `done` says the reply is complete; other messages are applied
    /// as usual; commands are refused (not ready yet).
    fn await_reply(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self, &Incoming) -> Result<bool, End>,
    ) -> Result<(), End> {
        let waited = Stopwatch::start();
        loop {
            if waited.elapsed() > self.config.request_timeout {
                return Err(End::Retry(format!(
                    "no reply to {what} within {:?}",
                    self.config.request_timeout
                )));
            }
            match self.next_event()? {
                Event::Command(Command::Stop) => return Err(End::Final("stopped".into())),
                Event::Command(cmd) => refuse(cmd, "the DTC session is not ready yet"),
                Event::Message(_, msg) => {
                    if done(self, &msg)? {
                        return Ok(());
                    }
                    if let Some(end) = self.message(*msg) {
                        return Err(end);
                    }
                }
                Event::Closed(..) => {}
            }
        }
    }

    fn request_id(&mut self) -> i32 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    fn logon_and_sync(&mut self) -> Result<(), End> {
        let heartbeat = i32::try_from(self.config.heartbeat.as_secs().max(1)).unwrap_or(60);
        let logon = LogonRequest {
            protocol_version: PROTOCOL_VERSION,
            username: self.config.username.clone(),
            password: self.config.password.0.clone(),
            heartbeat_interval_in_seconds: heartbeat,
            client_name: "mia".into(),
            ..LogonRequest::default()
        };
        tracing::debug!(target: "dtc", username = %self.config.username, password = ?self.config.password, heartbeat, "logon");
        self.send(&logon)?;
        self.await_reply("LOGON_REQUEST", |_, msg| match msg {
            Incoming::LogonResponse(r) if r.result == logon_status::SUCCESS => {
                if r.trading_is_supported {
                    Ok(true)
                } else {
                    Err(End::Final(
                        "the DTC server does not allow trading: enable Allow Trading in Sierra's DTC server settings".into(),
                    ))
                }
            }
            Incoming::LogonResponse(r) if r.result == logon_status::ERROR_NO_RECONNECT => {
                Err(End::Final(format!("logon refused: {}", r.result_text)))
            }
            Incoming::LogonResponse(r) => Err(End::Retry(format!("logon refused: {}", r.result_text))),
            _ => Ok(false),
        })?;

        // Trade accounts.
        let rid = self.request_id();
        self.send(&TradeAccountsRequest { request_id: rid })?;
        let mut accounts = Vec::new();
        self.await_reply("TRADE_ACCOUNTS_REQUEST", |_, msg| match msg {
            Incoming::TradeAccountResponse(r) if r.request_id == rid || r.request_id == 0 => {
                if !r.trade_account.is_empty() {
                    accounts.push(r.trade_account.clone());
                }
                Ok(r.message_number >= r.total_number_messages)
            }
            _ => Ok(false),
        })?;
        let account = {
            let mut s = lock(&self.shared);
            if s.account.is_empty() {
                s.account = accounts.first().cloned().unwrap_or_default();
            }
            s.account.clone()
        };
        if !accounts.contains(&account) {
            return Err(End::Final(format!(
                "trade account {account:?} is not among the server's accounts {accounts:?}"
            )));
        }

        // Security definition.
        let rid = self.request_id();
        self.send(&SecurityDefinitionForSymbolRequest {
            request_id: rid,
            symbol: self.config.symbol.clone(),
            exchange: String::new(),
        })?;
        let symbol = self.config.symbol.clone();
        let tick = self.config.tick_size;
        let mut multiplier = 1.0;
        self.await_reply("SECURITY_DEFINITION_FOR_SYMBOL_REQUEST", |_, msg| match msg {
            Incoming::SecurityDefinitionResponse(d) if d.request_id == rid => {
                let increment = d.min_price_increment.unwrap_or(0.0);
                if d.description.is_empty() || increment <= 0.0 {
                    return Err(End::Final(format!(
                        "the server does not know the symbol {symbol:?}: copy it from Sierra's File > Find Symbol into the config"
                    )));
                }
                multiplier = d.display_price_multiplier.filter(|m| *m > 0.0).unwrap_or(1.0);
                let display_tick = increment * multiplier;
                if (display_tick - tick).abs() > 1e-6 {
                    return Err(End::Final(format!(
                        "the server's tick for {symbol} is {display_tick}, mia's contract spec says {tick}"
                    )));
                }
                Ok(true)
            }
            Incoming::SecurityDefinitionReject(r) if r.request_id == rid => Err(End::Final(
                format!("security definition of {symbol} refused: {}", r.reject_text),
            )),
            _ => Ok(false),
        })?;
        lock(&self.shared).price_multiplier = multiplier;

        // Re-synchronisation: open orders, positions, fills; one request at a time.
        let rid = self.request_id();
        self.send(&OpenOrdersRequest {
            request_id: rid,
            request_all_orders: 1,
            server_order_id: String::new(),
            trade_account: account.clone(),
        })?;
        self.await_reply("OPEN_ORDERS_REQUEST", |session, msg| match msg {
            Incoming::OrderUpdate(u) if u.request_id == rid => {
                session.apply_update(u);
                Ok(u.no_orders || u.message_number >= u.total_num_messages)
            }
            Incoming::OpenOrdersReject(r) if r.0.request_id == rid => Err(End::Retry(format!(
                "open orders refused: {}",
                r.0.reject_text
            ))),
            _ => Ok(false),
        })?;
        let rid = self.request_id();
        lock(&self.shared).book.clear_positions();
        self.send(&CurrentPositionsRequest {
            request_id: rid,
            trade_account: account.clone(),
        })?;
        self.await_reply("CURRENT_POSITIONS_REQUEST", |session, msg| match msg {
            Incoming::PositionUpdate(p) if p.request_id == rid => {
                lock(&session.shared).book.apply_position(p);
                Ok(p.no_positions || p.message_number >= p.total_number_messages)
            }
            Incoming::CurrentPositionsReject(r) if r.0.request_id == rid => Err(End::Retry(
                format!("positions refused: {}", r.0.reject_text),
            )),
            _ => Ok(false),
        })?;
        let rid = self.request_id();
        self.send(&HistoricalOrderFillsRequest {
            request_id: rid,
            number_of_days: 1,
            trade_account: account,
            start_date_time: 0,
        })?;
        self.await_reply("HISTORICAL_ORDER_FILLS_REQUEST", |_, msg| match msg {
            Incoming::HistoricalOrderFillResponse(f) if f.request_id == rid => {
                Ok(f.no_order_fills || f.message_number >= f.total_number_messages)
            }
            // Fills are informative; a server that refuses them can still trade.
            Incoming::HistoricalOrderFillsReject(r) if r.0.request_id == rid => Ok(true),
            _ => Ok(false),
        })?;
        Ok(())
    }

    fn apply_update(&mut self, u: &message::OrderUpdate) {
        let Some(mut event) = lock(&self.shared).book.apply(u) else {
            return;
        };
        match &mut event {
            OrderEvent::Rejected {
                client_order_id,
                info_text,
            } => {
                tracing::warn!(target: "dtc", %client_order_id, %info_text, "order rejected");
            }
            OrderEvent::Filled { price, .. } => *price = price.map(|p| p * self.multiplier()),
            OrderEvent::CancelRejected { .. } => {}
        }
        let _ = self.events.send(ClientEvent::Order(event));
    }

    fn multiplier(&self) -> f64 {
        lock(&self.shared).price_multiplier
    }

    /// Handles a message of the ready session; `Some` ends the connection.
    fn message(&mut self, msg: Incoming) -> Option<End> {
        match msg {
            Incoming::OrderUpdate(u) => self.apply_update(&u),
            Incoming::PositionUpdate(p) => lock(&self.shared).book.apply_position(&p),
            Incoming::Logoff(l) => {
                let _ = self.events.send(ClientEvent::LoggedOff {
                    reason: l.reason.clone(),
                    do_not_reconnect: l.do_not_reconnect,
                });
                return Some(if l.do_not_reconnect {
                    End::Final(format!("LOGOFF with DoNotReconnect: {}", l.reason))
                } else {
                    End::Retry(format!("LOGOFF: {}", l.reason))
                });
            }
            _ => {}
        }
        None
    }

    /// A wire price from a display price, checked to be finite and on the tick.
    fn wire_price(&self, display: f64) -> Result<f64, DtcError> {
        let ticks = display / self.config.tick_size;
        if !display.is_finite() || display <= 0.0 || (ticks - ticks.round()).abs() > 1e-6 {
            return Err(DtcError::Protocol(format!(
                "price {display} is not a positive multiple of the tick {}",
                self.config.tick_size
            )));
        }
        Ok(display / self.multiplier())
    }

    fn date(&self) -> String {
        self.clock.now().to_iso_millis()[..10].replace('-', "")
    }

    fn command(&mut self, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Bracket(b, reply) => {
                let result = self.bracket(b);
                let failed_write = matches!(result, Err(DtcError::Io(_)));
                let _ = reply.send(result);
                if failed_write {
                    return Err(End::Retry("write failed while sending a bracket".into()));
                }
            }
            Command::Cancel(id, reply) => {
                let result = self.cancel(&id, None);
                let _ = reply.send(result);
            }
            Command::Replace(id, price, reply) => {
                let result = self.cancel(&id, Some(price));
                let _ = reply.send(result);
            }
            Command::Flatten(reply) => {
                let result = self.flatten();
                let _ = reply.send(result);
            }
            Command::Stop => return Err(End::Final("stopped".into())),
        }
        Ok(())
    }

    fn bracket(&mut self, b: Bracket) -> Result<BracketIds, DtcError> {
        if b.quantity == 0 {
            return Err(DtcError::Protocol(
                "a bracket needs at least one contract".into(),
            ));
        }
        let entry = b.entry.map(|p| self.wire_price(p)).transpose()?;
        let target = self.wire_price(b.target)?;
        let stop = self.wire_price(b.stop)?;
        let date = self.date();
        let ids = BracketIds {
            parent: self.ids.next(&date)?,
            target: self.ids.next(&date)?,
            stop: self.ids.next(&date)?,
        };
        let account = lock(&self.shared).account.clone();
        let quantity = f64::from(b.quantity);
        let parent = SubmitNewSingleOrder {
            symbol: self.config.symbol.clone(),
            exchange: String::new(),
            trade_account: account.clone(),
            client_order_id: ids.parent.clone(),
            order_type: if entry.is_some() {
                order_type::LIMIT
            } else {
                order_type::MARKET
            },
            buy_sell: b.side.code(),
            price1: entry,
            price2: None,
            quantity,
            time_in_force: time_in_force::DAY,
            is_automated_order: true,
            is_parent_order: true,
            free_form_text: String::new(),
        };
        let exit = b.side.opposite().code();
        let oco = SubmitNewOcoOrder {
            symbol: self.config.symbol.clone(),
            exchange: String::new(),
            client_order_id_1: ids.target.clone(),
            order_type_1: order_type::LIMIT,
            buy_sell_1: exit,
            price1_1: Some(target),
            quantity_1: quantity,
            client_order_id_2: ids.stop.clone(),
            order_type_2: order_type::STOP,
            buy_sell_2: exit,
            price1_2: Some(stop),
            quantity_2: quantity,
            time_in_force: time_in_force::DAY,
            trade_account: account,
            is_automated_order: true,
            parent_trigger_client_order_id: ids.parent.clone(),
            partial_fill_handling: 1,
        };
        // One buffer, one write: nothing can come between the parent and its OCO.
        let mut bytes = message::encode(&parent)?;
        bytes.extend(message::encode(&oco)?);
        {
            let mut s = lock(&self.shared);
            for (id, kind, side, price) in [
                (&ids.parent, parent.order_type, b.side.code(), entry),
                (&ids.target, order_type::LIMIT, exit, Some(target)),
                (&ids.stop, order_type::STOP, exit, Some(stop)),
            ] {
                s.book.sent(OrderState {
                    client_order_id: id.clone(),
                    server_order_id: String::new(),
                    status: order_status::ORDER_SENT,
                    buy_sell: side,
                    order_type: kind,
                    price1: price,
                    quantity,
                    filled: 0.0,
                    average_fill_price: None,
                    info_text: String::new(),
                });
            }
        }
        tracing::info!(target: "dtc", parent = %ids.parent, side = ?b.side, quantity = b.quantity, ?entry, target, stop, "bracket sent");
        self.write(&bytes)
            .map_err(|_| DtcError::Io("write failed while sending a bracket".into()))?;
        Ok(ids)
    }

    fn cancel(&mut self, id: &str, new_price: Option<f64>) -> Result<(), DtcError> {
        let (order, account) = {
            let s = lock(&self.shared);
            (s.book.get(id).cloned(), s.account.clone())
        };
        let order = order.ok_or_else(|| DtcError::Protocol(format!("unknown order {id}")))?;
        let result = match new_price {
            None => self.send(&CancelOrder {
                server_order_id: order.server_order_id,
                client_order_id: order.client_order_id,
                trade_account: account,
            }),
            Some(price) => {
                let price = self.wire_price(price)?;
                self.send(&CancelReplaceOrder {
                    server_order_id: order.server_order_id,
                    client_order_id: order.client_order_id,
                    price1: Some(price),
                    price2: None,
                    quantity: 0.0,
                    price1_is_set: true,
                    price2_is_set: false,
                    trade_account: account,
                })
            }
        };
        result.map_err(|_| DtcError::Io("write failed".into()))
    }

    fn flatten(&mut self) -> Result<Option<String>, DtcError> {
        let working: Vec<String> = lock(&self.shared)
            .book
            .orders()
            .filter(|o| o.is_working() && o.status != order_status::ORDER_SENT)
            .map(|o| o.client_order_id.clone())
            .collect();
        for id in working {
            self.cancel(&id, None)?;
        }
        let position = lock(&self.shared).book.position(&self.config.symbol);
        if position == 0.0 {
            return Ok(None);
        }
        let date = self.date();
        let id = self.ids.next(&date)?;
        let account = lock(&self.shared).account.clone();
        self.send(&SubmitFlattenPositionOrder {
            symbol: self.config.symbol.clone(),
            exchange: String::new(),
            trade_account: account,
            client_order_id: id.clone(),
            is_automated_order: true,
        })
        .map_err(|_| DtcError::Io("write failed".into()))?;
        Ok(Some(id))
    }
}

fn refuse(cmd: Command, why: &str) {
    let err = || DtcError::NotReady(why.to_owned());
    match cmd {
        Command::Bracket(_, reply) => {
            let _ = reply.send(Err(err()));
        }
        Command::Cancel(_, reply) | Command::Replace(_, _, reply) => {
            let _ = reply.send(Err(err()));
        }
        Command::Flatten(reply) => {
            let _ = reply.send(Err(err()));
        }
        Command::Stop => {}
    }
}

/// Reads frames until the connection closes, forwarding each message to the session.
fn spawn_reader(mut stream: TcpStream, connection: u32, tx: Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("dtc-reader".into())
        .spawn(move || {
            let mut decoder = FrameDecoder::new();
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = match stream.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Event::Closed(
                            connection,
                            "the server closed the connection".into(),
                        ));
                        return;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Event::Closed(connection, format!("read failed: {e}")));
                        return;
                    }
                };
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) if frame.is_empty() => {}
                        Ok(Some(frame)) => match message::decode(&frame) {
                            Ok(msg) => {
                                if tx.send(Event::Message(connection, Box::new(msg))).is_err() {
                                    return;
                                }
                            }
                            Err(e) => tracing::warn!(target: "dtc", error = %e, "message skipped"),
                        },
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Event::Closed(connection, e.to_string()));
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(target: "dtc", error = %e, "cannot start the DTC reader");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_come_from_the_config() {
        let config = Config::reference();
        let es = ClientConfig::from_config(&config, "ES", Secret::default()).unwrap();
        assert_eq!(
            (
                es.addr.as_str(),
                es.symbol.as_str(),
                es.tick_size,
                es.handshake
            ),
            (
                "127.0.0.1:11099",
                "ESZ25_FUT_CME",
                0.25,
                Handshake::BinaryRequest
            )
        );
        assert_eq!(
            (es.trade_account.as_str(), es.heartbeat),
            ("Sim1", Duration::from_secs(10))
        );
        let err = ClientConfig::from_config(&config, "YM", Secret::default()).unwrap_err();
        assert!(err.to_string().contains("[instruments.YM]"), "{err}");
        let bare = Config::parse("[instruments.MES]\n", std::path::Path::new("m.toml")).unwrap();
        let err = ClientConfig::from_config(&bare, "MES", Secret::default()).unwrap_err();
        assert!(
            err.to_string().contains("instruments.MES.dtc_address"),
            "{err}"
        );
    }

    #[test]
    fn the_password_comes_from_the_named_variable_and_never_shows() {
        let mut dtc = Config::reference().dtc;
        assert_eq!(
            ClientConfig::password_from_env(&dtc, |_| None).unwrap(),
            Secret::default()
        );
        dtc.password_env = Some("MIA_DTC_PASSWORD".into());
        let secret = ClientConfig::password_from_env(&dtc, |n| {
            (n == "MIA_DTC_PASSWORD").then(|| "hunter2".into())
        })
        .unwrap();
        assert_eq!(secret.0, "hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        let err = ClientConfig::password_from_env(&dtc, |_| None).unwrap_err();
        assert!(err.to_string().contains("MIA_DTC_PASSWORD"), "{err}");
    }
}
