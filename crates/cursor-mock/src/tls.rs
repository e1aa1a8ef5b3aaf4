//! A throw-away certificate authority and a leaf certificate for `127.0.0.1` / `localhost`,
//! generated at start-up, so TLS tests need no files on disk.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The generated test CA (its certificate) and the rustls server configuration it signed.
#[derive(Debug, Clone)]
pub(crate) struct TestPki {
    pub(crate) ca_der: CertificateDer<'static>,
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

fn tls_error(context: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("test pki: {context}: {err}"))
}

/// Generates a CA and a leaf valid for `127.0.0.1`, `::1` and `localhost`, and builds a
/// rustls server config that offers ALPN `h2` and `http/1.1` (only `http/1.1` if `http1_only`).
pub(crate) fn generate(http1_only: bool) -> std::io::Result<TestPki> {
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("ca params", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cursor-mock test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| tls_error("ca key", e))?;
    let ca =
        CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| tls_error("ca cert", e))?;

    // webpki rejects a CA used as an end entity, so the server presents a separate leaf.
    let mut leaf_params = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ])
    .map_err(|e| tls_error("leaf params", e))?;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "cursor-mock");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_key = KeyPair::generate().map_err(|e| tls_error("leaf key", e))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .map_err(|e| tls_error("leaf cert", e))?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("server cert", e))?;
    // Both, as Cursor's API host offers: the SDK's `fetch` calls negotiate http/1.1.
    config.alpn_protocols = if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(TestPki {
        ca_der: ca.der().clone(),
        ca_pem: ca.pem(),
        server_config: Arc::new(config),
    })
}
