//! Redis behind Sentinel, by Sentinel's own protocol: the Sentinels are asked for the current
//! primary of a service whenever a connection is opened, so a failover they carry out is
//! followed (the old primary's `READONLY`, or its closed connection, has the connection
//! replaced).
//!
//! The URL: `redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/SERVICE[/DB]`, the
//! Sentinels' addresses (port 26379 by default) and the service's name as the Sentinels
//! monitor it; the user, password and database are the primary's (the Sentinels are asked
//! without credentials).

use redis::ConnectionAddr;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};

/// The URL scheme.
pub(super) const SCHEME: &str = "redis+sentinel://";
const SENTINEL_PORT: u16 = 26379;

/// A Sentinel URL, parsed: never shown with its password.
pub(super) struct SentinelUrl {
    pub(super) sentinels: Vec<(String, u16)>,
    pub(super) service: String,
    user: Option<String>,
    password: Option<String>,
    db: Option<i64>,
}

impl SentinelUrl {
    /// The URL's parts; the error says what is wrong (never repeating the URL).
    pub(super) fn parse(url: &str) -> Result<Self, String> {
        let form = "redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/SERVICE[/DB]";
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("expected {form}"))?;
        // The credentials first: a password may hold a `/` the URL did not escape.
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("no service name: expected {form}"))?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|d| d.into_owned())
                .map_err(|_| "the user or password is not UTF-8 once decoded".to_owned())
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (
                    Some(decode(user)?).filter(|u| !u.is_empty()),
                    Some(decode(pw)?),
                ),
                None => (Some(decode(u)?), None),
            },
        };
        let mut sentinels = Vec::new();
        for (n, host) in hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .enumerate()
        {
            // `[v6]:port`, `[v6]`, `name:port` or `name`.
            let (name, port) = match host.strip_prefix('[') {
                Some(v6) => {
                    let (name, after) = v6.split_once(']').unwrap_or((v6, ""));
                    (name, after.strip_prefix(':'))
                }
                None => match host.rsplit_once(':') {
                    Some((name, port)) => (name, Some(port)),
                    None => (host, None),
                },
            };
            let port = match port {
                None => SENTINEL_PORT,
                // The host's text is not repeated: a mistyped URL may hold a password there.
                Some(p) => p.parse::<u16>().map_err(|_| {
                    format!(
                        "Sentinel address {} has no valid port: expected {form}",
                        n + 1
                    )
                })?,
            };
            sentinels.push((name.to_owned(), port));
        }
        if sentinels.is_empty() {
            return Err(format!("no Sentinel address: expected {form}"));
        }
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let service = parts
            .next()
            .ok_or_else(|| format!("no service name: expected {form}"))?
            .to_owned();
        let db = parts
            .next()
            .map(|d| {
                d.parse::<i64>()
                    .map_err(|_| format!("the database {d:?} is not a number"))
            })
            .transpose()?;
        Ok(Self {
            sentinels,
            service,
            user,
            password,
            db,
        })
    }

    /// A client of the Sentinels for the service's primary.
    pub(super) fn client(&self) -> redis::RedisResult<SentinelClient> {
        let mut builder = SentinelClientBuilder::new(
            self.sentinels
                .iter()
                .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p)),
            &self.service,
            SentinelServerType::Master,
        )?;
        if let Some(user) = &self.user {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(db) = self.db {
            builder = builder.set_client_to_redis_db(db);
        }
        builder.build()
    }

    /// For people: the service and the Sentinels, no password.
    pub(super) fn describe(&self) -> String {
        let at: Vec<String> = self
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        format!(
            "the primary of Sentinel service {} (Sentinels at {})",
            self.service,
            at.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentinels_service_credentials_and_database() {
        let u = SentinelUrl::parse("redis+sentinel://:s%40cret@a.example:26380,b.example/svc/2")
            .expect("valid");
        assert_eq!(
            u.sentinels,
            vec![
                ("a.example".to_owned(), 26380),
                ("b.example".to_owned(), 26379)
            ]
        );
        assert_eq!(u.service, "svc");
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        assert_eq!(u.user, None);
        assert_eq!(u.db, Some(2));
        assert!(!u.describe().contains("cret"));
        let v6 =
            SentinelUrl::parse("redis+sentinel://:pa/ss@[::1],[::2]:26390/svc").expect("valid");
        assert_eq!(
            v6.sentinels,
            vec![("::1".to_owned(), 26379), ("::2".to_owned(), 26390)]
        );
        assert_eq!(v6.password.as_deref(), Some("pa/ss"));
        for bad in [
            "redis+sentinel://a.example",
            "redis+sentinel:///svc",
            "redis+sentinel://a:s3cret/svc",
            "redis+sentinel://a/svc/x",
        ] {
            let e = SentinelUrl::parse(bad).err().expect("refused");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
