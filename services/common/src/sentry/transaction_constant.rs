//! What every transaction of this process says the same way (release, environment, server
//! name, SDK, the service's tags, the DSN's public key), serialized once at start and
//! written as is into each transaction by `transaction_json`.
use serde::Serialize;

#[derive(Debug)]
pub(crate) struct Constant {
    /// `"platform":"native","release":…,"environment":…,"server_name":…,"sdk":{…}`: fields of
    /// the transaction object, without braces; never empty (`platform` is always there).
    pub(crate) fields: String,
    /// `"service":"worker","handling":"async"`: the first tags, without braces.
    pub(crate) tags: String,
    /// The DSN's public key, for the dynamic sampling context.
    pub(crate) public_key: String,
}

#[derive(Serialize)]
struct Fields<'a> {
    platform: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdk: Option<&'a sentry::protocol::ClientSdkInfo>,
}

impl Constant {
    /// `client`'s release, environment and server name (its options, after the integrations
    /// that fill them ran), its SDK (only an event it prepares carries that), and `tags`.
    pub(crate) fn of(client: &sentry::Client, tags: &[(&str, &str)]) -> Self {
        let options = client.options();
        let probe = client.prepare_event(sentry::protocol::Event::default(), None);
        if probe.is_none() {
            tracing::warn!("sentry: transactions are sent without the SDK's name and version");
        }
        let fields = Fields {
            platform: "native",
            release: options.release.as_deref(),
            environment: options.environment.as_deref(),
            server_name: options.server_name.as_deref(),
            sdk: probe.as_ref().and_then(|e| e.sdk.as_deref()),
        };
        let tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        Self {
            fields: inside_braces(serde_json::to_string(&fields).unwrap_or_default()),
            tags: inside_braces(serde_json::to_string(&tags).unwrap_or_default()),
            public_key: client
                .dsn()
                .map(|d| d.public_key().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// `{…}` without its braces, to be written inside another object.
fn inside_braces(object: String) -> String {
    object
        .strip_prefix('{')
        .and_then(|o| o.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned()
}
