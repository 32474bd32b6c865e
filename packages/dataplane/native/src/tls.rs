//! TLS termination: certificates from the snapshot (and the generated default), chosen by SNI per handshake
//! from the table in service, so a rotated Secret is served on the next handshake without reopening anything.

use std::io::BufReader;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::paths::request_host;
use crate::table::Table;

/// A certificate chain and key from PEM text; Err says what is wrong with it.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain = rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_bytes())).collect::<Result<Vec<_>, _>>().map_err(|e| format!("cert is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("cert holds no CERTIFICATE block".into());
    }
    let key = rustls_pemfile::private_key(&mut BufReader::new(key_pem.as_bytes())).map_err(|e| format!("key is not PEM: {e}"))?.ok_or("key holds no private key block")?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| format!("key is not usable: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// SNI → the table's certificate (exact host, one-label wildcard, `--default-ssl-certificate`), else the
/// generated default.
pub struct SniResolver {
    pub table: Arc<ArcSwap<Table>>,
    pub default: Arc<CertifiedKey>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        let name = hello.server_name().map(|n| request_host(n.as_bytes())).unwrap_or_default();
        Some(table.match_certificate(&name).and_then(|i| table.certified.get(i).cloned()).unwrap_or_else(|| self.default.clone()))
    }
}

/// The crypto provider: aws-lc-rs. A full handshake is mostly the certificate key's signature and the key
/// exchange; aws-lc's RSA uses the AVX-512/AVX2 code paths OpenSSL has, and measured side by side (bench/, part
/// `dataplane`, RSA 2048 and X25519) it made about 1.5x the full handshakes per core ring did. It builds with
/// the C compiler alone (no cmake, no clang: aws-lc-sys ships its bindings for the common targets).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// `resumption`: TLS session resumption (TLS 1.2 session ids, TLS 1.3 tickets naming sessions kept in memory,
/// rustls's default); without it every connection makes a full handshake (for measuring those).
pub fn server_config(resolver: SniResolver, resumption: bool) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if !resumption {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Arc::new(config)
}

/// The TLS side of the listener: the server config, or for a host whose routes check client certificates
/// (auth-tls-secret) one that asks for a certificate naming that host's CAs. Those are made once per table and
/// CA, and shared by every handshake and worker.
pub struct TlsAcceptor {
    base: Arc<rustls::ServerConfig>,
    table: Arc<ArcSwap<Table>>,
    /// (the table they were made for, by address; the policy index → config)
    client_auth: Mutex<(usize, Vec<(usize, Arc<rustls::ServerConfig>)>)>,
}

impl TlsAcceptor {
    pub fn new(base: Arc<rustls::ServerConfig>, table: Arc<ArcSwap<Table>>) -> TlsAcceptor {
        TlsAcceptor { base, table, client_auth: Mutex::new((0, Vec::new())) }
    }

    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) -> std::io::Result<TlsStream<S>> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let name = start.client_hello().server_name().map(|n| request_host(n.as_bytes()));
        let config = name.and_then(|n| self.client_auth_config(&n)).unwrap_or_else(|| self.base.clone());
        start.into_stream(config).await
    }

    fn client_auth_config(&self, name: &[u8]) -> Option<Arc<rustls::ServerConfig>> {
        let table = self.table.load();
        let policy = crate::policy::client_tls::for_server_name(&table.client_tls_hosts, name)?;
        let verifier = table.policies.get(policy)?.client_tls.as_ref()?.handshake.clone();
        let key = Arc::as_ptr(&*table) as usize;
        let mut cache = self.client_auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.0 != key {
            *cache = (key, Vec::new());
        }
        if let Some((_, config)) = cache.1.iter().find(|(p, _)| *p == policy) {
            return Some(config.clone());
        }
        let mut config = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().ok()?.with_client_cert_verifier(verifier).with_cert_resolver(self.base.cert_resolver.clone());
        config.alpn_protocols = self.base.alpn_protocols.clone();
        // (its own session store: a session resumed here carries the chain this handshake saw, never one of a
        // config that asked for no certificate; rustls's documentation warns against sharing one)
        config.send_tls13_tickets = self.base.send_tls13_tickets;
        let config = Arc::new(config);
        cache.1.push((policy, config.clone()));
        Some(config)
    }
}
