//! A loopback TCP proxy in front of the server that counts round trips: after the startup message, every simple
//! `Query` ('Q') and every `Sync` ('S') ends a request the client must wait on (the server answers each with
//! ReadyForQuery). Messages are counted before they are forwarded, so the count is complete when the client has its
//! answer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct RoundTripProxy {
    pub port: u16,
    round_trips: Arc<AtomicUsize>,
}

impl RoundTripProxy {
    /// Proxy one client connection to `upstream` (`host:port`).
    pub fn start(upstream: String) -> RoundTripProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicUsize::new(0));
        let counter = round_trips.clone();
        std::thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect(upstream).unwrap();
            let (client_read, server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || copy(server, client));
            count_and_forward(client_read, server_write, &counter);
        });
        RoundTripProxy { port, round_trips }
    }

    pub fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn count_and_forward(mut from: TcpStream, mut to: TcpStream, round_trips: &AtomicUsize) {
    let mut pending: Vec<u8> = Vec::new();
    let mut started = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        loop {
            // The startup message has no type byte; every later message does.
            let (header, type_byte) = if started { (5, pending.first().copied()) } else { (4, None) };
            if pending.len() < header {
                break;
            }
            let len_at = header - 4;
            let len = u32::from_be_bytes(pending[len_at..len_at + 4].try_into().unwrap()) as usize;
            let total = len_at + len;
            if pending.len() < total {
                break;
            }
            if matches!(type_byte, Some(b'Q') | Some(b'S')) {
                round_trips.fetch_add(1, Ordering::SeqCst);
            }
            started = true;
            pending.drain(..total);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
