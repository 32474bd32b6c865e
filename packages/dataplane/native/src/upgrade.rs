//! Protocol switches (WebSocket and the like): the request goes upstream on a connection of its own, never
//! pooled, because after a 101 that connection belongs to this client alone; the two are then spliced until
//! either side closes. An upstream that declines to switch has its answer relayed, and the client connection
//! closed (what follows the request head on it belongs to the protocol that was not switched to).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::metrics::Metrics;
use crate::proxy::{empty_body, reply, strip_hop_by_hop, Body, BoxError, Shared};
use crate::table::Backend;

pub async fn forward(shared: &Arc<Shared>, backend: &Backend, method: Method, path_and_query: String, headers: HeaderMap, client: OnUpgrade) -> Response<Body> {
    let Some(endpoint) = backend.next_endpoint() else {
        return reply(shared, 503, true);
    };
    let config = &shared.config;
    let request_id = headers.get(&crate::proxy::X_REQUEST_ID).cloned();
    let failed = |error: &str| {
        shared.logs.push("warn", "upstream upgrade failed", crate::log_fields! { "error" => error, "endpoint" => endpoint.authority.as_str(), "requestId" => request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("") });
    };
    let stream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(endpoint.authority.as_str())).await {
        Ok(Ok(s)) => s,
        // refused (502) or never answered (504, as nginx): nothing reached the upstream
        Ok(Err(e)) => {
            Metrics::inc(&shared.metrics.local().upstream_errors);
            failed(&format!("connect failed: {e}"));
            return reply(shared, 502, true);
        }
        Err(_elapsed) => {
            Metrics::inc(&shared.metrics.local().upstream_errors);
            failed("connect timed out");
            return reply(shared, 504, true);
        }
    };
    let _ = stream.set_nodelay(true);
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
        tokio::spawn(conn.with_upgrades());
        let mut request = Request::new(empty_body());
        *request.method_mut() = method;
        *request.uri_mut() = path_and_query.parse().unwrap_or_else(|_| hyper::Uri::from_static("/"));
        *request.headers_mut() = headers;
        sender.send_request(request).await
    };
    let mut res = match tokio::time::timeout(config.read_timeout, exchange).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            Metrics::inc(&shared.metrics.local().upstream_errors);
            failed(&e.to_string());
            return reply(shared, 502, true);
        }
        Err(_elapsed) => {
            Metrics::inc(&shared.metrics.local().upstream_timeouts);
            failed("no response head within the read timeout");
            return reply(shared, 504, true);
        }
    };
    shared.metrics.local().response(res.status().as_u16());
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut res);
        let tunnel_shared = shared.clone();
        tokio::spawn(async move {
            // both resolve once the 101 has gone out to the client and come in from the upstream
            let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
                return;
            };
            tunnel_shared.open_connections.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(upstream)).await;
            tunnel_shared.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
        let (parts, _) = res.into_parts();
        return Response::from_parts(parts, empty_body());
    }
    // declined: relay the answer, then close
    let (mut parts, incoming) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(CONNECTION, HeaderValue::from_static("close"));
    Response::from_parts(parts, incoming.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
}
