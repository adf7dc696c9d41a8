//! A Modbus/TCP simulator for soak tests and benchmarks: answers every unit id, every register
//! read with the float 230.4 (0x4366 0x6666 in ABCD) and every bit read with alternating bits.
//!
//! `cargo run --release --example modbus_sim -- 127.0.0.1:15020`

use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};

#[derive(Clone)]
struct AnyUnit;

fn registers(n: u16) -> Vec<u16> {
    (0..n)
        .map(|i| if i % 2 == 0 { 0x4366 } else { 0x6666 })
        .collect()
}

impl tokio_modbus::server::Service for AnyUnit {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(match req {
            Request::ReadInputRegisters(_, n) => Ok(Response::ReadInputRegisters(registers(n))),
            Request::ReadHoldingRegisters(_, n) => Ok(Response::ReadHoldingRegisters(registers(n))),
            Request::ReadCoils(_, n) => {
                Ok(Response::ReadCoils((0..n).map(|i| i % 2 == 0).collect()))
            }
            Request::ReadDiscreteInputs(_, n) => Ok(Response::ReadDiscreteInputs(
                (0..n).map(|i| i % 2 == 1).collect(),
            )),
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:15020".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("modbus_sim listening on {}", listener.local_addr()?);
    let on_connected = |stream, socket_addr| async move {
        accept_tcp_connection(stream, socket_addr, |_| Ok(Some(AnyUnit)))
    };
    Server::new(listener)
        .serve(&on_connected, |e| eprintln!("modbus_sim: {e}"))
        .await?;
    Ok(())
}
