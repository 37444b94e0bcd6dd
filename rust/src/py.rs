//! The thin pyo3 layer: converts arguments, spawns calls on the runtime, and turns bridge items into
//! Python objects while holding the GIL (the tokio side never does).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::bridge::{self, Call};
use crate::error::UpstreamError;
use crate::runtime;
use crate::transport::{self, HttpEvent, Options, Profile, Transport};
use crate::ws::client::{self as ws, WsCommand, WsEvent};

create_exception!(_native, NativeError, PyException, "Raised with args (kind, message, status).");

fn raise(err: UpstreamError) -> PyErr {
    NativeError::new_err((err.kind.as_str(), err.message, err.status))
}

fn internal(err: std::io::Error) -> PyErr {
    raise(UpstreamError::new(crate::error::ErrorKind::Internal, err.to_string()))
}

fn millis(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

#[pyclass(frozen, module = "codex_trio._native")]
struct NativeClient {
    transport: Arc<Transport>,
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (profile, proxy, ca_file, connect_timeout, read_timeout, decompress=false, resolve=Vec::new()))]
    fn new(
        profile: &str,
        proxy: Option<String>,
        ca_file: Option<PathBuf>,
        connect_timeout: f64,
        read_timeout: Option<f64>,
        decompress: bool,
        resolve: Vec<(String, String)>,
    ) -> PyResult<Self> {
        let mut pinned = Vec::with_capacity(resolve.len());
        for (host, addr) in resolve {
            let addr: std::net::SocketAddr = addr.parse().map_err(|_| {
                raise(UpstreamError::new(
                    crate::error::ErrorKind::Protocol,
                    format!("resolve: {addr:?} (for {host}) is not an IP address with a port, e.g. 127.0.0.1:8443"),
                ))
            })?;
            pinned.push((host.to_ascii_lowercase(), addr));
        }
        pinned.sort();
        let options = Options {
            profile: Profile::parse(profile).map_err(raise)?,
            proxy,
            ca_file,
            connect_timeout_ms: millis(connect_timeout),
            read_timeout_ms: read_timeout.map(millis),
            decompress,
            resolve: pinned,
        };
        Ok(Self { transport: transport::transport_for(options).map_err(raise)? })
    }

    /// Start an HTTP call. `stream=False` buffers the response into one "complete" item.
    #[pyo3(signature = (method, url, headers, body, zstd, timeout, stream))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<&[u8]>,
        zstd: bool,
        timeout: Option<f64>,
        stream: bool,
    ) -> PyResult<HttpCall> {
        let body = body.map(<[u8]>::to_vec);
        let timeout = timeout.map(|t| Duration::from_millis(millis(t)));
        let request = py
            .detach(|| self.transport.build(method, url, &headers, body, zstd, timeout))
            .map_err(raise)?;
        let transport = self.transport.clone();
        let handle = runtime::handle().map_err(internal)?;
        let call = bridge::spawn_call(&handle, 32, HttpEvent::from_panic, move |tx| async move {
            if stream {
                transport.run_stream(request, tx).await
            } else {
                transport.run_request(request, tx).await
            }
        })
        .map_err(internal)?;
        Ok(HttpCall { call: std::sync::Mutex::new(call) })
    }

    /// Start a WebSocket (always the rustls configuration without ALPN, as the real client).
    #[pyo3(signature = (url, headers, deflate))]
    fn start_websocket(&self, url: String, headers: Vec<(String, String)>, deflate: bool) -> PyResult<WsCall> {
        let (commands_tx, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let transport = self.transport.clone();
        let handle = runtime::handle().map_err(internal)?;
        let call = bridge::spawn_call(&handle, WS_QUEUE_CAPACITY, WsEvent::from_panic, move |tx| {
            ws::run(transport, url, headers, deflate, commands_rx, tx)
        })
        .map_err(internal)?;
        Ok(WsCall { call: std::sync::Mutex::new(call), commands: commands_tx })
    }
}

/// Upstream messages a WebSocket's reader may queue ahead of Python. When the queue is full, every `drain()`
/// frees room and so wakes the parked reader task from the Python thread (a futex and an eventfd write, about a
/// quarter of the Python thread's time in a fast stream with 64). 1024 lets a burst of small deltas land in a
/// few large drains; the queue grows in blocks as messages arrive, so an idle or slow stream holds no more.
const WS_QUEUE_CAPACITY: usize = 1024;

/// One WebSocket as seen from Python: an fd to wait on, `drain()`, and commands to send.
#[pyclass(frozen, module = "codex_trio._native")]
struct WsCall {
    call: std::sync::Mutex<Call<WsEvent>>,
    commands: tokio::sync::mpsc::UnboundedSender<WsCommand>,
}

impl WsCall {
    fn command(&self, command: WsCommand) -> PyResult<()> {
        self.commands
            .send(command)
            .map_err(|_| raise(UpstreamError::new(crate::error::ErrorKind::Protocol, "the WebSocket is closed")))
    }
}

#[pymethods]
impl WsCall {
    fn fileno(&self) -> i32 {
        self.call.lock().unwrap_or_else(|e| e.into_inner()).raw_fd()
    }

    /// `(items, finished)`; items are tuples tagged "open", "text", "binary", "closed" or "error".
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, bool)> {
        let drained = self.call.lock().unwrap_or_else(|e| e.into_inner()).drain();
        let list = PyList::empty(py);
        for event in drained.items {
            let item: Bound<'py, PyAny> = match event {
                WsEvent::Text(text) => ("text", text).into_pyobject(py)?.into_any(),
                WsEvent::Binary(data) => ("binary", PyBytes::new(py, &data)).into_pyobject(py)?.into_any(),
                WsEvent::Open { headers } => ("open", headers).into_pyobject(py)?.into_any(),
                WsEvent::Closed { code, reason } => ("closed", code, reason).into_pyobject(py)?.into_any(),
                WsEvent::Failed(err) => {
                    ("error", err.kind.as_str(), err.message, err.status).into_pyobject(py)?.into_any()
                }
            };
            list.append(item)?;
        }
        Ok((list, drained.finished))
    }

    fn send_text(&self, text: String) -> PyResult<()> {
        self.command(WsCommand::Text(text))
    }

    fn ping(&self) -> PyResult<()> {
        self.command(WsCommand::Ping)
    }

    fn close(&self, code: u16) -> PyResult<()> {
        self.command(WsCommand::Close(code))
    }

    fn cancel(&self) {
        self.call.lock().unwrap_or_else(|e| e.into_inner()).cancel();
    }
}

/// One in-flight HTTP call as seen from Python: an fd to wait on, and `drain()`.
#[pyclass(frozen, module = "codex_trio._native")]
struct HttpCall {
    call: std::sync::Mutex<Call<HttpEvent>>,
}

#[pymethods]
impl HttpCall {
    fn fileno(&self) -> i32 {
        self.call.lock().unwrap_or_else(|e| e.into_inner()).raw_fd()
    }

    /// `(items, finished)`: body chunks are `bytes`; everything else is a tuple tagged by its first element.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, bool)> {
        let drained = self.call.lock().unwrap_or_else(|e| e.into_inner()).drain();
        let list = PyList::empty(py);
        for event in drained.items {
            let item: Bound<'py, PyAny> = match event {
                HttpEvent::Chunk(chunk) => PyBytes::new(py, &chunk).into_any(),
                HttpEvent::Head { status, headers } => ("head", status, headers).into_pyobject(py)?.into_any(),
                HttpEvent::End => PyTuple::new(py, ["end"])?.into_any(),
                HttpEvent::Complete { status, headers, body } => {
                    ("complete", status, headers, PyBytes::new(py, &body)).into_pyobject(py)?.into_any()
                }
                HttpEvent::Failed(err) => {
                    ("error", err.kind.as_str(), err.message, err.status).into_pyobject(py)?.into_any()
                }
            };
            list.append(item)?;
        }
        Ok((list, drained.finished))
    }

    /// Abort the task and close its connection. Idempotent.
    fn cancel(&self) {
        self.call.lock().unwrap_or_else(|e| e.into_inner()).cancel();
    }
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Number of calls whose tokio task is still alive.
#[pyfunction]
fn in_flight() -> usize {
    bridge::in_flight()
}

/// Stop the runtime (all tasks, all connections) and join its threads. Registered with atexit.
#[pyfunction]
fn shutdown(py: Python<'_>) {
    py.detach(runtime::shutdown)
}

/// Number of o200k_base tokens in `text`.
#[pyfunction]
fn count_tokens(py: Python<'_>, text: &str) -> usize {
    py.detach(|| crate::tokens::count(text))
}

#[pyfunction]
fn count_tokens_batch(py: Python<'_>, texts: Vec<String>) -> Vec<usize> {
    py.detach(|| crate::tokens::count_batch(&texts))
}

/// Test and benchmark hook: drop the o200k table now, as an idle period would (`tokens::IDLE_RELEASE`).
#[pyfunction]
fn _release_token_counter(py: Python<'_>) -> bool {
    py.detach(|| crate::tokens::release_if_idle(std::time::Duration::ZERO))
}

/// Test hook: a call whose task panics, to prove a panic surfaces as an error item.
#[pyfunction]
fn _panic_in_task() -> PyResult<HttpCall> {
    let handle = runtime::handle().map_err(internal)?;
    let call = bridge::spawn_call(&handle, 1, HttpEvent::from_panic, |_tx| async move {
        panic!("deliberate panic for the test suite");
    })
    .map_err(internal)?;
    Ok(HttpCall { call: std::sync::Mutex::new(call) })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add_class::<NativeClient>()?;
    m.add_class::<HttpCall>()?;
    m.add_class::<WsCall>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(in_flight, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_task, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens_batch, m)?)?;
    m.add_function(wrap_pyfunction!(_release_token_counter, m)?)?;
    Ok(())
}
