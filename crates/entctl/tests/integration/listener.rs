//! The listener's idle timeout (`server.idle_timeout_seconds`, `api::listener`), over real
//! sockets: a client that stops reading its answer loses its connection, a request its handler
//! works on for longer does not. (The header read timeout and the connection cap are driven
//! through the binary: `tests/e2e_cli.rs`.)

use crate::observability::{entered, held, ANSWER};
use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use entcp::api::listener::Limits;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The longest a test waits for what must happen (far above the one-second timeouts it sets).
const EVENTUALLY: Duration = Duration::from_secs(60);

/// The limits of these tests: idle connections closed after one second.
fn one_second_idle() -> Limits {
    Limits { idle_timeout: Duration::from_secs(1), ..Limits::default() }
}

/// Serves `router` within `limits` on a loopback port: its address and the shutdown token.
async fn serve(router: Router, limits: Limits) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    let drain = Duration::from_secs(5);
    tokio::spawn(entcp::api::shutdown::serve_until(listener, router, limits, shutdown.clone(), drain));
    (address, shutdown)
}

/// A route whose answer never ends; once the server drops it (the connection closed),
/// the receiver returned is told.
fn endless() -> (Router, oneshot::Receiver<()>) {
    let (dropped, told) = oneshot::channel::<()>();
    let guard = Arc::new(Mutex::new(Some(dropped)));
    let route = get(move || {
        let guard = guard.lock().unwrap().take();
        async move {
            let chunks = futures_util::stream::unfold(guard, |guard| async move {
                Some((Ok::<_, std::convert::Infallible>(Bytes::from(vec![b'x'; 64 * 1024])), guard))
            });
            Body::from_stream(chunks)
        }
    });
    (Router::new().route("/sans-fin", route), told)
}

// A client that asks for an answer and stops reading it held its connection (and the answer's
// task) for ever: the answer fills the socket's buffers, then nothing passes either way.
#[tokio::test]
async fn a_client_that_stops_reading_its_answer_loses_its_connection_after_the_idle_timeout() {
    let (router, told) = endless();
    let (address, shutdown) = serve(router, one_second_idle()).await;
    let mut client = tokio::net::TcpStream::connect(&address).await.unwrap();
    client.write_all(b"GET /sans-fin HTTP/1.1\r\nHost: ent\r\n\r\n").await.unwrap();
    // The client reads nothing from here on.
    let dropped = tokio::time::timeout(EVENTUALLY, told).await;
    assert!(dropped.is_ok(), "the answer nobody reads is still being sent after {EVENTUALLY:?}");
    drop(client);
    shutdown.cancel();
}

// Nothing passes on a connection whose request a handler works on (an import, a job run): it is
// not idle. Held three times the idle timeout, the request is still answered.
#[tokio::test]
async fn a_request_its_handler_works_on_past_the_idle_timeout_is_answered() {
    let (address, shutdown) = serve(Router::new().route("/long", get(held)), one_second_idle()).await;
    let request = tokio::spawn(async move { reqwest::get(format!("http://{address}/long")).await?.text().await });
    entered().await;
    // Only a failure needs this wait to show: a watchdog counting the handler's silence closes
    // the connection after one second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ANSWER.add_permits(1);
    let answer = tokio::time::timeout(EVENTUALLY, request).await.expect("answered").unwrap();
    assert_eq!(answer.expect("the connection was kept"), "fini");
    shutdown.cancel();
}
