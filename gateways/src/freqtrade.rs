//! FreqTrade's REST API (`../shared/FREQTRADE.md`, copied in `docs/FREQTRADE.md`): JWT login
//! and refresh, the start-up checks of `/show_config`, `forceenter` tagged with the signal
//! id, `forceexit` by trade id, `/status` for reconciliation.
//!
//! Which requests are sent again: a 401 is answered by FreqTrade's auth layer before the
//! route runs, so a request refused with 401 did nothing and is re-sent once after a token
//! refresh (or a new login). Nothing else is: a `forceenter` that failed on the wire may
//! have entered, and is settled by `/status` and its `enter_tag` instead.

use crate::config::FreqtradeConfig;
use crate::http::{HttpClient, HttpError, Response};
use base64::Engine as _;
use serde_json::Value as Json;
use std::time::{Duration, Instant};

/// What went wrong, by the outcome it is counted under.
#[derive(Debug, thiserror::Error)]
pub enum FreqtradeError {
    /// The request may not have reached FreqTrade, or its answer was lost.
    #[error("transport: {0}")]
    Transport(#[from] HttpError),
    /// The credentials are refused (`Incorrect username or password`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The bot is not trading (stopped, paused: HTTP 503 or `trader is not running`).
    #[error("bot not running: {0}")]
    NotRunning(String),
    /// FreqTrade refused the order (HTTP 502 `{"error": ...}` or `{"status": "Error ..."}`).
    #[error("refused: {0}")]
    Refused(String),
    /// Our request was invalid (HTTP 422).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Anything else.
    #[error("unexpected HTTP {0}: {1}")]
    Unexpected(u16, String),
    /// `/show_config` says this bot cannot take our orders.
    #[error("bot misconfigured for the gateway: {0}")]
    Config(String),
}

impl FreqtradeError {
    /// The counter name of this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            FreqtradeError::Transport(_) => "transport",
            FreqtradeError::Unauthorized(_) => "unauthorized",
            FreqtradeError::NotRunning(_) => "not_running",
            FreqtradeError::Refused(m) if m.contains("Force_entry not enabled") => {
                "force_entry_disabled"
            }
            FreqtradeError::Refused(m) if m.contains("already open") => "position_open",
            FreqtradeError::Refused(m) if m.contains("Maximum number of trades") => "max_trades",
            FreqtradeError::Refused(m) if m.contains("short on Spot") => "no_shorts",
            FreqtradeError::Refused(m) if m.contains("Symbol does not exist") => "bad_pair",
            FreqtradeError::Refused(_) => "refused",
            FreqtradeError::Invalid(_) => "invalid",
            FreqtradeError::Unexpected(..) => "unexpected",
            FreqtradeError::Config(_) => "config",
        }
    }
}

/// An open trade as `/status` (or a `forceenter` answer) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// FreqTrade's id.
    pub trade_id: u64,
    /// Pair.
    pub pair: String,
    /// `enter_tag`: our signal id, for trades we opened.
    pub enter_tag: Option<String>,
    /// Whether it is open.
    pub is_open: bool,
    /// Short.
    pub is_short: bool,
    /// Base amount.
    pub amount: f64,
    /// Entry price.
    pub open_rate: f64,
    /// Realised profit in stake currency once closed.
    pub close_profit_abs: Option<f64>,
}

fn trade_of(j: &Json) -> Option<Trade> {
    Some(Trade {
        trade_id: j.get("trade_id")?.as_u64()?,
        pair: j.get("pair")?.as_str()?.to_string(),
        enter_tag: j
            .get("enter_tag")
            .and_then(Json::as_str)
            .map(str::to_string),
        is_open: j.get("is_open").and_then(Json::as_bool).unwrap_or(true),
        is_short: j.get("is_short").and_then(Json::as_bool).unwrap_or(false),
        amount: j.get("amount").and_then(Json::as_f64).unwrap_or(0.0),
        open_rate: j.get("open_rate").and_then(Json::as_f64).unwrap_or(0.0),
        close_profit_abs: j.get("close_profit_abs").and_then(Json::as_f64),
    })
}

/// What `/show_config` said at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotConfig {
    /// `running`, `paused`, `stopped`.
    pub state: String,
    /// `spot` or `futures`.
    pub trading_mode: String,
    /// Shorts possible.
    pub short_allowed: bool,
    /// `force_entry_enable`.
    pub force_entry_enable: bool,
    /// Stake currency.
    pub stake_currency: String,
}

/// The client. Blocking: it lives on the gateway's executor thread.
#[derive(Debug)]
pub struct FreqtradeClient {
    http: HttpClient,
    basic: String,
    access: Option<String>,
    refresh: Option<String>,
    /// Logins done (the first and any after a refused refresh).
    pub logins: u64,
    /// Access tokens refreshed.
    pub refreshes: u64,
    /// Round-trip time of the last request.
    pub last_rtt: Duration,
}

impl FreqtradeClient {
    /// A client for `[freqtrade]`; nothing is sent yet.
    ///
    /// # Errors
    /// A bad URL.
    pub fn new(c: &FreqtradeConfig) -> Result<Self, FreqtradeError> {
        let http = HttpClient::new(
            &format!("{}/api/v1", c.url),
            Duration::from_millis(c.timeout_ms),
        )?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password.0));
        Ok(Self {
            http,
            basic: format!("Basic {basic}"),
            access: None,
            refresh: None,
            logins: 0,
            refreshes: 0,
            last_rtt: Duration::ZERO,
        })
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<&[u8]>,
        on_written: &mut Option<&mut dyn FnMut()>,
    ) -> Result<Response, FreqtradeError> {
        let started = Instant::now();
        let r = self
            .http
            .request(method, path, &[("Authorization", auth)], body, || {
                if let Some(f) = on_written.take() {
                    f();
                }
            })?;
        self.last_rtt = started.elapsed();
        Ok(r)
    }

    fn login(&mut self) -> Result<(), FreqtradeError> {
        let basic = self.basic.clone();
        let r = self.send("POST", "/token/login", &basic, None, &mut None)?;
        if r.status == 401 {
            return Err(FreqtradeError::Unauthorized(detail(&r.body)));
        }
        let j = json(&r)?;
        self.access = j
            .get("access_token")
            .and_then(Json::as_str)
            .map(str::to_string);
        self.refresh = j
            .get("refresh_token")
            .and_then(Json::as_str)
            .map(str::to_string);
        self.logins += 1;
        if self.access.is_none() {
            return Err(FreqtradeError::Unexpected(
                r.status,
                "login answer without access_token".into(),
            ));
        }
        Ok(())
    }

    fn refresh(&mut self) -> Result<bool, FreqtradeError> {
        let Some(refresh) = self.refresh.clone() else {
            return Ok(false);
        };
        let r = self.send(
            "POST",
            "/token/refresh",
            &format!("Bearer {refresh}"),
            None,
            &mut None,
        )?;
        if r.status != 200 {
            return Ok(false);
        }
        self.access = json(&r)?
            .get("access_token")
            .and_then(Json::as_str)
            .map(str::to_string);
        self.refreshes += 1;
        Ok(self.access.is_some())
    }

    /// One authenticated call; `on_written` runs when the request's last byte is written
    /// (the first time: a re-send after a 401 does not run it again).
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        mut on_written: Option<&mut dyn FnMut()>,
    ) -> Result<Json, FreqtradeError> {
        if self.access.is_none() {
            self.login()?;
        }
        for attempt in 0..3 {
            let bearer = format!("Bearer {}", self.access.as_deref().unwrap_or(""));
            let r = self.send(method, path, &bearer, body, &mut on_written)?;
            if r.status == 401 && attempt < 2 {
                // Expired or revoked: refresh, else log in again; the route never ran.
                if attempt == 1 || !self.refresh()? {
                    eprintln!(
                        "gateway: freqtrade refused our token and its refresh; logging in again"
                    );
                    self.login()?;
                }
                continue;
            }
            return answer(&r);
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// A fresh access token for the message websocket, whose handshake checks it once.
    ///
    /// # Errors
    /// Refresh and login both refused, or FreqTrade unreachable.
    pub fn events_token(&mut self) -> Result<String, FreqtradeError> {
        if !self.refresh()? {
            self.login()?;
        }
        Ok(self.access.clone().unwrap_or_default())
    }

    /// The API server's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.http.addr()
    }

    /// `GET /ping` (no auth): whether the API server answers.
    pub fn ping(&mut self) -> bool {
        self.send("GET", "/ping", "", None, &mut None)
            .is_ok_and(|r| r.status == 200)
    }

    /// `GET /show_config`, checked: force entry on, and a mode the pairs can trade.
    ///
    /// # Errors
    /// [`FreqtradeError::Config`] naming what is wrong, or the call's error.
    pub fn check_config(&mut self) -> Result<BotConfig, FreqtradeError> {
        let j = self.call("GET", "/show_config", None, None)?;
        let text = |k: &str| j.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let c = BotConfig {
            state: text("state"),
            trading_mode: text("trading_mode"),
            short_allowed: j
                .get("short_allowed")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            force_entry_enable: j
                .get("force_entry_enable")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            stake_currency: text("stake_currency"),
        };
        if !c.force_entry_enable {
            return Err(FreqtradeError::Config(
                "force_entry_enable is false: set \"force_entry_enable\": true in FreqTrade's config".into(),
            ));
        }
        Ok(c)
    }

    /// `GET /balance`'s `total` in stake currency.
    ///
    /// # Errors
    /// The call's error.
    pub fn balance(&mut self) -> Result<Option<f64>, FreqtradeError> {
        Ok(self
            .call("GET", "/balance", None, None)?
            .get("total")
            .and_then(Json::as_f64))
    }

    /// `GET /status`: the open trades.
    ///
    /// # Errors
    /// The call's error.
    pub fn status(&mut self) -> Result<Vec<Trade>, FreqtradeError> {
        let j = self.call("GET", "/status", None, None)?;
        Ok(j.as_array()
            .map(|a| a.iter().filter_map(trade_of).collect())
            .unwrap_or_default())
    }

    /// `GET /trades`: the last 500 closed trades (FreqTrade lists only closed ones there).
    ///
    /// # Errors
    /// The call's error.
    pub fn trades(&mut self) -> Result<Vec<Trade>, FreqtradeError> {
        let j = self.call("GET", "/trades?limit=500", None, None)?;
        Ok(j.get("trades")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(trade_of).collect())
            .unwrap_or_default())
    }

    /// `GET /trade/{id}`.
    ///
    /// # Errors
    /// The call's error.
    pub fn trade(&mut self, id: u64) -> Result<Option<Trade>, FreqtradeError> {
        Ok(trade_of(&self.call(
            "GET",
            &format!("/trade/{id}"),
            None,
            None,
        )?))
    }

    /// `POST /forceenter` with `entry_tag = tag`. Never re-sent on a transport error.
    ///
    /// # Errors
    /// Refusals and transport errors; the latter leave the entry in doubt.
    #[allow(clippy::too_many_arguments)]
    pub fn force_enter(
        &mut self,
        pair: &str,
        side: &str,
        stake: f64,
        tag: &str,
        ordertype: &str,
        price: Option<f64>,
        on_written: &mut dyn FnMut(),
    ) -> Result<Trade, FreqtradeError> {
        let body = serde_json::json!({
            "pair": pair,
            "side": side,
            "stakeamount": stake,
            "entry_tag": tag,
            "ordertype": ordertype,
            "price": price,
        });
        let body = serde_json::to_vec(&body).expect("json");
        let j = self.call("POST", "/forceenter", Some(&body), Some(on_written))?;
        if let Some(status) = j.get("status").and_then(Json::as_str) {
            return Err(FreqtradeError::Refused(status.to_string()));
        }
        trade_of(&j).ok_or_else(|| FreqtradeError::Unexpected(200, j.to_string()))
    }

    /// `POST /forceexit` of one trade.
    ///
    /// # Errors
    /// Refusals and transport errors.
    pub fn force_exit(
        &mut self,
        trade_id: u64,
        on_written: &mut dyn FnMut(),
    ) -> Result<(), FreqtradeError> {
        let body = serde_json::to_vec(&serde_json::json!({ "tradeid": trade_id.to_string() }))
            .expect("json");
        self.call("POST", "/forceexit", Some(&body), Some(on_written))?;
        Ok(())
    }
}

fn detail(body: &[u8]) -> String {
    serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|j| {
            j.get("detail")
                .or_else(|| j.get("error"))
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
}

fn json(r: &Response) -> Result<Json, FreqtradeError> {
    serde_json::from_slice(&r.body).map_err(|e| {
        FreqtradeError::Unexpected(r.status, format!("not JSON ({e}): {}", detail(&r.body)))
    })
}

fn answer(r: &Response) -> Result<Json, FreqtradeError> {
    match r.status {
        200 => json(r),
        401 => Err(FreqtradeError::Unauthorized(detail(&r.body))),
        503 => Err(FreqtradeError::NotRunning(detail(&r.body))),
        502 => {
            let d = detail(&r.body);
            let msg = d.split_once(": ").map_or(d.as_str(), |x| x.1).to_string();
            if msg.contains("trader is not running") {
                Err(FreqtradeError::NotRunning(msg))
            } else {
                Err(FreqtradeError::Refused(msg))
            }
        }
        422 => Err(FreqtradeError::Invalid(detail(&r.body))),
        s => Err(FreqtradeError::Unexpected(s, detail(&r.body))),
    }
}
