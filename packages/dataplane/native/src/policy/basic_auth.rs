//! HTTP basic authentication against htpasswd hashes (auth-type: basic). The formats are the ones nginx's
//! `auth_basic` reads (crypt(3) on glibc: MD5-crypt, SHA-crypt and bcrypt; `$apr1$`, `{SHA}`, `{SSHA}`,
//! `{PLAIN}`), but DES crypt, which keeps 8 characters of a password. Passwords and hashes are never logged.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use md5::{Digest as _, Md5};
use serde::Deserialize;
use sha1::Sha1;
use sha_crypt::{PasswordVerifier as _, ShaCrypt};
use subtle::ConstantTimeEq;

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthSpec {
    pub realm: String,
    pub users: Vec<BasicUser>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicUser {
    pub user: String,
    /// as htpasswd holds it
    pub hash: String,
}

/// A password hash, parsed once per snapshot.
enum Hash {
    /// `$apr1$` (`apr1`) or `$1$` MD5-crypt: salt, and the encoded digest
    Md5Crypt { magic: &'static str, salt: String, encoded: String },
    /// `{SHA}`: SHA-1 of the password
    Sha1([u8; 20]),
    /// `{SSHA}`: SHA-1 of password and salt, then the salt
    SaltedSha1 { digest: [u8; 20], salt: Vec<u8> },
    Plain(String),
    /// `$2a$`/`$2b$`/`$2y$`: slow on purpose, verified off the request threads
    Bcrypt(String),
    /// `$5$`/`$6$`: likewise
    ShaCrypt(String),
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, &'static str> {
        for magic in ["$apr1$", "$1$"] {
            if let Some(rest) = text.strip_prefix(magic) {
                let (salt, encoded) = rest.split_once('$').ok_or("MD5-crypt without salt")?;
                if salt.len() > 8 || encoded.len() != 22 || !encoded.bytes().all(is_crypt64) {
                    return Err("MD5-crypt that is not $apr1$salt$digest");
                }
                return Ok(Hash::Md5Crypt { magic, salt: salt.to_string(), encoded: encoded.to_string() });
            }
        }
        if let Some(b64) = text.strip_prefix("{SHA}") {
            let digest = STANDARD.decode(b64).ok().and_then(|d| <[u8; 20]>::try_from(d).ok()).ok_or("{SHA} that is not 20 bytes of base64")?;
            return Ok(Hash::Sha1(digest));
        }
        if let Some(b64) = text.strip_prefix("{SSHA}") {
            let bytes = STANDARD.decode(b64).map_err(|_| "{SSHA} that is not base64")?;
            if bytes.len() <= 20 {
                return Err("{SSHA} without salt");
            }
            let (digest, salt) = bytes.split_at(20);
            return Ok(Hash::SaltedSha1 { digest: digest.try_into().map_err(|_| "{SSHA} digest")?, salt: salt.to_vec() });
        }
        if let Some(plain) = text.strip_prefix("{PLAIN}") {
            return Ok(Hash::Plain(plain.to_string()));
        }
        // (checked by shape only: verifying is slow on purpose, and a table is compiled at every swap)
        if let Some(rest) = ["$2a$", "$2b$", "$2x$", "$2y$"].iter().find_map(|p| text.strip_prefix(p)) {
            let cost_ok = rest.get(..2).and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| (4..=31).contains(&c));
            if !cost_ok || rest.as_bytes().get(2) != Some(&b'$') || rest.len() != 56 || !rest[3..].bytes().all(is_crypt64) {
                return Err("bcrypt that is not $2y$cost$salt+digest");
            }
            return Ok(Hash::Bcrypt(text.to_string()));
        }
        for (magic, digest_len) in [("$5$", 43), ("$6$", 86)] {
            let Some(rest) = text.strip_prefix(magic) else { continue };
            let bad = "SHA-crypt that is not $5$/$6$[rounds=N$]salt$digest";
            let rest = match rest.strip_prefix("rounds=") {
                Some(r) => {
                    let (rounds, after) = r.split_once('$').ok_or(bad)?;
                    let rounds: u32 = rounds.parse().map_err(|_| bad)?;
                    if !(1000..=999_999_999).contains(&rounds) {
                        return Err("SHA-crypt rounds outside 1000..999999999");
                    }
                    after
                }
                None => rest,
            };
            let (salt, digest) = rest.split_once('$').ok_or(bad)?;
            if salt.is_empty() || salt.len() > 16 || digest.len() != digest_len || !digest.bytes().all(is_crypt64) {
                return Err(bad);
            }
            return Ok(Hash::ShaCrypt(text.to_string()));
        }
        Err("not a supported hash")
    }

    /// Whether verifying takes long enough (bcrypt, SHA-crypt: milliseconds) to be done off the request threads.
    fn slow(&self) -> bool {
        matches!(self, Hash::Bcrypt(_) | Hash::ShaCrypt(_))
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Md5Crypt { magic, salt, encoded } => bool::from(md5_crypt(password, salt.as_bytes(), magic.as_bytes()).as_bytes().ct_eq(encoded.as_bytes())),
            Hash::Sha1(digest) => bool::from(Sha1::digest(password).as_slice().ct_eq(digest)),
            Hash::SaltedSha1 { digest, salt } => {
                let mut h = Sha1::new();
                h.update(password);
                h.update(salt);
                bool::from(h.finalize().as_slice().ct_eq(digest))
            }
            Hash::Plain(plain) => bool::from(password.ct_eq(plain.as_bytes())),
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Hash::ShaCrypt(hash) => ShaCrypt::default().verify_password(password, hash.as_str()).is_ok(),
        }
    }
}

fn is_crypt64(b: u8) -> bool {
    b == b'.' || b == b'/' || b.is_ascii_alphanumeric()
}

const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt (Poul-Henning Kamp's, as FreeBSD and Apache's apr1 make it; only the magic differs): the encoded
/// digest after the salt.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new().chain_update(password).chain_update(salt).chain_update(password).finalize();
    let mut ctx = Md5::new().chain_update(password).chain_update(magic).chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let d = digest;
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(CRYPT64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]), 4);
    }
    put(u32::from(d[11]), 2);
    out
}

/// As requests use it (compiled once per snapshot).
pub struct BasicAuth {
    /// `Basic realm="…"`
    pub challenge: HeaderValue,
    /// the first line of a user counts, as nginx reads the file
    users: HashMap<String, std::sync::Arc<HashOf>>,
}

/// (an `Arc`, so that a slow verification can take it to another thread)
struct HashOf(Hash);

pub fn compile(spec: BasicAuthSpec) -> Result<BasicAuth, String> {
    let realm = spec.realm.replace('\\', "\\\\").replace('"', "\\\"");
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")).map_err(|_| "realm is not a header value".to_string())?;
    let mut users = HashMap::new();
    for (i, u) in spec.users.into_iter().enumerate() {
        let hash = Hash::parse(&u.hash).map_err(|e| format!("users[{i}] ({:?}): {e}", u.user))?;
        users.entry(u.user).or_insert_with(|| std::sync::Arc::new(HashOf(hash)));
    }
    if users.is_empty() {
        return Err("no user".to_string());
    }
    Ok(BasicAuth { challenge, users })
}

impl BasicAuth {
    /// Whether the request's `Authorization: Basic` names a user whose password it has.
    pub async fn admits(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else { return false };
        let Some(hash) = self.users.get(&user) else { return false };
        if !hash.0.slow() {
            return hash.0.verify(password.as_bytes());
        }
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || hash.0.verify(password.as_bytes())).await.unwrap_or(false)
    }
}

/// The user and password of `Authorization: Basic base64(user:password)` (the scheme in any case).
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(token.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // made with `openssl passwd` and glibc crypt(3)
    const LINES: [(&str, &str); 8] = [
        ("$apr1$r31.KnAq$RAJphP9CxYVGpsfL.FKCH.", "secret"),
        ("$1$saltsalt$9xy1btjgzLYfb7hivXtC//", "secret"),
        ("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"),
        ("$6$rounds=5000$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1", "secret"),
        ("$5$rounds=1000$xyz$v1S6twhx8VlJ4e0WdMoId7z6Vkr0PmmNq2mj1XUGBL5", "pass word"),
        ("$2b$05$abcdefghijklmnopqrstuuhKF09ZYWwH2zP/0fwE1X8e/Q1YNx/hO", "x"),
        ("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"),
        ("{PLAIN}open sesame", "open sesame"),
    ];

    #[test]
    fn verifies_each_format_and_refuses_a_wrong_password() {
        for (hash, password) in LINES {
            let h = Hash::parse(hash).unwrap_or_else(|e| panic!("{hash}: {e}"));
            assert!(h.verify(password.as_bytes()), "{hash}");
            assert!(!h.verify(format!("{password}!").as_bytes()), "{hash}");
            assert!(!h.verify(b""), "{hash}");
        }
        // {SSHA}: SHA-1 of password + salt, then the salt
        let mut digest = Sha1::new();
        digest.update(b"secret");
        digest.update(b"NaCl");
        let ssha = format!("{{SSHA}}{}", STANDARD.encode([digest.finalize().as_slice(), b"NaCl"].concat()));
        assert!(Hash::parse(&ssha).unwrap().verify(b"secret"));
        assert!(!Hash::parse(&ssha).unwrap().verify(b"secreT"));
    }

    #[test]
    fn refuses_what_it_cannot_verify() {
        for bad in ["abJnggxhB/yWI", "$apr1$r31.KnAq$short", "{SHA}bm90IDIwIGJ5dGVz", "$2y$05$tooshort", "$6$salt", "$7$x$y", "plain", ""] {
            assert!(Hash::parse(bad).is_err(), "{bad}");
        }
        assert!(compile(BasicAuthSpec { realm: String::new(), users: vec![] }).is_err());
    }

    #[tokio::test]
    async fn reads_the_authorization_header() {
        let auth = compile(BasicAuthSpec {
            realm: "Say \"hi\"".into(),
            users: vec![
                BasicUser { user: "alice".into(), hash: "$apr1$r31.KnAq$RAJphP9CxYVGpsfL.FKCH.".into() },
                BasicUser { user: "alice".into(), hash: "{PLAIN}second line is not read".into() },
                BasicUser { user: "bob".into(), hash: "$2b$05$abcdefghijklmnopqrstuuhKF09ZYWwH2zP/0fwE1X8e/Q1YNx/hO".into() },
            ],
        })
        .unwrap();
        assert_eq!(auth.challenge, "Basic realm=\"Say \\\"hi\\\"\"");
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            h
        };
        let basic = |creds: &str| with(&format!("Basic {}", STANDARD.encode(creds)));
        assert!(auth.admits(&basic("alice:secret")).await);
        assert!(auth.admits(&with(&format!("bAsIc  {}", STANDARD.encode("alice:secret")))).await);
        assert!(auth.admits(&basic("bob:x")).await);
        assert!(!auth.admits(&basic("bob:y")).await);
        assert!(!auth.admits(&basic("alice:second line is not read")).await);
        assert!(!auth.admits(&basic("carol:secret")).await);
        assert!(!auth.admits(&basic("alice")).await);
        assert!(!auth.admits(&with("Bearer abc")).await);
        assert!(!auth.admits(&with("Basic !!!")).await);
        assert!(!auth.admits(&HeaderMap::new()).await);
    }
}
