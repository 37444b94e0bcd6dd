//! The tokio → trio bridge: one eventfd and one bounded channel per in-flight call.
//!
//! The tokio task pushes items into the channel and then bumps the eventfd; it never touches Python.
//! The trio side waits for the eventfd to become readable (`trio.lowlevel.wait_readable`) and then
//! drains everything queued in one call. Because the producer notifies *after* each send and the
//! consumer resets the eventfd *before* draining, no wake-up is lost. A full channel suspends the
//! producer, which is the backpressure: a stalled consumer stops the upstream read.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Number of calls whose tokio task is still alive.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

/// A non-blocking eventfd used as a level-triggered "items are waiting" flag.
///
/// `armed` saves the producer a `write()` per item: only the first item after a drain rings the fd.
/// The consumer re-arms *before* it looks at the channel, so an item sent after that look always rings.
pub struct Notifier {
    fd: OwnedFd,
    armed: AtomicBool,
}

impl Notifier {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; we check the result.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) }, armed: AtomicBool::new(true) })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Make the fd readable. Cannot block: the counter would need 2^64-2 un-drained wake-ups to fill.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to a descriptor we own.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Ring only if the consumer has drained since the last ring.
    fn notify_if_armed(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.notify();
        }
    }

    /// Clear the readable state (EAGAIN when already clear is fine), then re-arm. In this order: a
    /// ring that lands between the two is not lost, because the caller looks at the channel next.
    pub fn reset(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from a descriptor we own.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// Producer half, owned by the tokio task.
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    notifier: Arc<Notifier>,
}

impl<T> Sender<T> {
    /// Queue one item, waiting while the channel is full. Err means the consumer is gone.
    pub async fn send(&self, item: T) -> Result<(), Gone> {
        self.tx.send(item).await.map_err(|_| Gone)?;
        self.notifier.notify_if_armed();
        Ok(())
    }

    /// Resolves when the consumer has dropped its half.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // Wake the consumer so it observes the end of the channel even if no final item was sent.
        self.notifier.notify();
    }
}

/// The consumer went away (the call was cancelled or dropped).
#[derive(Debug)]
pub struct Gone;

/// Outcome of one drain.
pub struct Drained<T> {
    pub items: Vec<T>,
    /// The producer is gone and nothing more will arrive.
    pub finished: bool,
}

/// Consumer half, owned by the Python object. Dropping it aborts the task.
pub struct Call<T> {
    rx: mpsc::Receiver<T>,
    notifier: Arc<Notifier>,
    abort: AbortHandle,
}

impl<T> Call<T> {
    pub fn raw_fd(&self) -> RawFd {
        self.notifier.raw_fd()
    }

    /// Everything queued right now, without waiting. Bounded by what was queued when the drain began: a
    /// producer refilling the channel meanwhile must not keep the caller (holding the GIL) in this loop.
    /// The caller drains again before it waits, so items left for the next call are never stranded.
    pub fn drain(&mut self) -> Drained<T> {
        self.notifier.reset();
        let queued = self.rx.len().max(1);
        let mut items = Vec::with_capacity(queued);
        while items.len() < queued {
            match self.rx.try_recv() {
                Ok(item) => items.push(item),
                Err(mpsc::error::TryRecvError::Empty) => return Drained { items, finished: false },
                Err(mpsc::error::TryRecvError::Disconnected) => return Drained { items, finished: true },
            }
        }
        // Closed and empty: nothing more can arrive, so say so now rather than on the next call.
        let finished = self.rx.is_empty() && self.rx.is_closed();
        Drained { items, finished }
    }

    /// Abort the task; the connection it holds is dropped (closed) with it.
    pub fn cancel(&mut self) {
        self.abort.abort();
        self.rx.close();
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Decrements the in-flight count when the task's future is dropped: on completion, abort or panic.
struct InFlightGuard;

impl InFlightGuard {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlightGuard
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Spawn `work` on `runtime` with a fresh bridge of `capacity` items. A panic inside `work` is caught
/// and delivered as the item `on_panic(message)` instead of tearing anything down.
pub fn spawn_call<T, F, Fut>(
    runtime: &Handle,
    capacity: usize,
    on_panic: fn(String) -> T,
    work: F,
) -> io::Result<Call<T>>
where
    T: Send + 'static,
    F: FnOnce(Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let notifier = Arc::new(Notifier::new()?);
    let (tx, rx) = mpsc::channel(capacity);
    let panic_tx = Sender { tx: tx.clone(), notifier: notifier.clone() };
    let future = work(Sender { tx, notifier: notifier.clone() });
    let guard = InFlightGuard::new();
    let handle = runtime.spawn(async move {
        let _guard = guard;
        if let Err(payload) = AssertUnwindSafe(future).catch_unwind().await {
            let _ = panic_tx.send(on_panic(panic_message(payload.as_ref()))).await;
        }
    });
    Ok(Call { rx, notifier, abort: handle.abort_handle() })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    // The in-flight counter is process-wide, so these tests must not overlap.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
    }

    #[test]
    fn items_arrive_in_order_and_the_fd_signals_them() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let rt = runtime();
        let mut call = spawn_call(rt.handle(), 4, |_| 0u32, |tx| async move {
            for i in 1..=3u32 {
                tx.send(i).await.unwrap();
            }
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(readable(call.raw_fd()));
        let drained = call.drain();
        assert_eq!(drained.items, vec![1, 2, 3]);
        assert!(drained.finished);
        assert!(!readable(call.raw_fd()));
    }

    #[test]
    fn full_channel_stops_the_producer() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let rt = runtime();
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let mut call = spawn_call(rt.handle(), 2, |_| 0usize, move |tx| async move {
            for i in 0..100usize {
                tx.send(i).await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(produced.load(Ordering::SeqCst), 2);
        assert_eq!(call.drain().items, vec![0, 1]);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(produced.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn panic_becomes_an_item_and_cancel_releases_the_task() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let rt = runtime();
        let mut call = spawn_call(rt.handle(), 2, |msg| msg, |_tx| async move {
            panic!("boom");
        })
        .unwrap();
        // Printing the panic's backtrace can take a while; wait for the end of the channel.
        let mut items = Vec::new();
        for _ in 0..100 {
            let drained = call.drain();
            items.extend(drained.items);
            if drained.finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(items, vec!["boom".to_string()]);

        let before = in_flight();
        let mut stuck = spawn_call(rt.handle(), 2, |_| (), |tx: Sender<()>| async move {
            tx.closed().await;
            std::future::pending::<()>().await
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(in_flight(), before + 1);
        stuck.cancel();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(in_flight(), before);
        assert!(stuck.drain().finished);
    }
}
