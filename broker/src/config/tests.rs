//! One parse test per flag, plus the file and the contradictions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse(args: &[&str]) -> Config {
    let argv = std::iter::once("broker").chain(args.iter().copied());
    Config::from_args(argv).expect("valid flags")
}

fn refused(args: &[&str]) -> String {
    let argv = std::iter::once("broker").chain(args.iter().copied());
    Config::from_args(argv)
        .expect_err("invalid flags")
        .to_string()
}

/// The first listener speaking `transport`.
pub(super) fn first(c: &Config, transport: ListenerTransport) -> Option<&ListenerSettings> {
    c.listeners.iter().find(|l| l.transport == transport)
}

/// The plain listener's port, `None` without one.
pub(super) fn plain_port(c: &Config) -> Option<u16> {
    first(c, ListenerTransport::Mqtt).map(|l| l.port)
}

/// The TLS listener's port, `None` without one.
pub(super) fn tls_port(c: &Config) -> Option<u16> {
    first(c, ListenerTransport::MqttTls).map(|l| l.port)
}

pub(super) fn tls(c: &Config) -> &TlsSettings {
    first(c, ListenerTransport::MqttTls)
        .and_then(|l| l.tls.as_ref())
        .expect("TLS listener on")
}

/// The distinct bind addresses, in order.
fn binds(c: &Config) -> Vec<BindAddress> {
    let mut all: Vec<BindAddress> = Vec::new();
    for l in &c.listeners {
        if !all.contains(&l.bind) {
            all.push(l.bind.clone());
        }
    }
    all
}

fn ip(text: &str) -> BindAddress {
    BindAddress::Ip(text.parse().expect("an IP address"))
}

#[test]
fn defaults() {
    let c = parse(&[]);
    assert_eq!(binds(&c), [ip("127.0.0.1"), ip("::1")], "localhost only");
    assert!(c.bind_is_default);
    assert_eq!(plain_port(&c), Some(1883));
    assert!(!c.use_username_as_clientid);
    assert_eq!(tls_port(&c), Some(8883));
    assert_eq!(c.listeners.len(), 4, "plain and TLS on both addresses");
    assert!(
        c.listeners
            .iter()
            .all(|l| l.optional == (l.bind == ip("::1")))
    );
    assert_eq!(tls(&c).cert_and_key, None);
    assert!(c.allow_anonymous);
    assert_eq!(c.max_inflight, 100);
    assert_eq!(c.max_queued, 1000);
    assert_eq!(c.max_connections, 0);
    assert_eq!(c.max_packet_size, mqtt_codec::DEFAULT_MAX_PACKET_SIZE);
    assert_eq!(c.sys_interval, Some(Duration::from_secs(10)));
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.autosave_interval, Some(Duration::from_secs(60)));
    assert_eq!(c.data_dir, None);
    assert!(!c.verbose && !c.queue_qos0);
}

#[test]
fn flag_bind() {
    assert_eq!(binds(&parse(&["--bind", "127.0.0.1"])), [ip("127.0.0.1")]);
    assert_eq!(binds(&parse(&["--bind", "[::1]"])), [ip("::1")]);
    let c = parse(&["--bind", "::", "--bind", "localhost", "--no-ssl"]);
    assert_eq!(
        binds(&c),
        [ip("::"), BindAddress::Host("localhost".to_owned())]
    );
    assert_eq!(c.listeners.len(), 2, "one plain listener per address");
    assert!(c.listeners.iter().all(|l| !l.optional));
    assert!(refused(&["--bind", "no where"]).contains("--bind"));
}

#[test]
fn flag_port() {
    assert_eq!(plain_port(&parse(&["--port", "0"])), Some(0));
    assert!(refused(&["--port", "70000"]).contains("--port"));
}

#[test]
fn flag_tls_port() {
    assert_eq!(tls_port(&parse(&["--tls-port", "8884"])), Some(8884));
    assert!(refused(&["--port", "9000", "--tls-port", "9000"]).contains("different ports"));
}

#[test]
fn flag_no_ssl() {
    assert_eq!(tls_port(&parse(&["--no-ssl"])), None);
    assert!(refused(&["--no-ssl", "--cafile", "ca.pem"]).contains("--no-ssl"));
}

#[test]
fn flag_cert_and_key() {
    let c = parse(&["--cert", "s.pem", "--key", "s.key"]);
    assert_eq!(
        tls(&c).cert_and_key,
        Some((PathBuf::from("s.pem"), PathBuf::from("s.key")))
    );
    assert!(refused(&["--cert", "s.pem"]).contains("--cert needs --key"));
    assert!(refused(&["--key", "s.key"]).contains("--key needs --cert"));
}

#[test]
fn flag_cafile() {
    assert_eq!(
        tls(&parse(&["--cafile", "ca.pem"])).cafile,
        Some(PathBuf::from("ca.pem"))
    );
}

#[test]
fn flag_require_certificate() {
    assert!(tls(&parse(&["--cafile", "ca.pem", "--require-certificate"])).require_certificate);
    assert!(refused(&["--require-certificate"]).contains("--cafile"));
}

#[test]
fn flag_identity_as_username() {
    let c = parse(&[
        "--cafile",
        "ca.pem",
        "--require-certificate",
        "--identity-as-username",
    ]);
    assert!(tls(&c).identity_as_username);
    assert!(refused(&["--identity-as-username"]).contains("--require-certificate"));
}

#[test]
fn flag_password_file_and_allow_anonymous() {
    let c = parse(&["--password-file", "pw"]);
    assert_eq!(c.password_file, Some(PathBuf::from("pw")));
    assert!(!c.allow_anonymous, "a password file turns anonymous off");
    assert!(parse(&["--password-file", "pw", "--allow-anonymous"]).allow_anonymous);
}

#[test]
fn flag_and_key_acl_file() {
    assert_eq!(parse(&[]).acl_file, None);
    assert_eq!(
        parse(&["--acl-file", "acl"]).acl_file,
        Some(PathBuf::from("acl"))
    );
    for key in ["acl-file", "acl_file"] {
        let file = FileSettings::parse(&format!("{key} = \"/etc/acl\"\n"), Path::new("t.toml"))
            .expect("file key");
        let c = Config::resolve(Flags::default(), file).expect("consistent");
        assert_eq!(c.acl_file, Some(PathBuf::from("/etc/acl")), "{key}");
    }
    // The flag wins over the file.
    let file = FileSettings::parse("acl-file = \"file\"\n", Path::new("t.toml")).expect("key");
    let flags = Flags {
        acl_file: Some(PathBuf::from("flag")),
        ..Flags::default()
    };
    let c = Config::resolve(flags, file).expect("consistent");
    assert_eq!(c.acl_file, Some(PathBuf::from("flag")));
}

#[test]
fn flag_data_dir() {
    assert_eq!(
        parse(&["--data-dir", "/tmp/d"]).data_dir,
        Some(PathBuf::from("/tmp/d"))
    );
}

#[test]
fn flag_max_connections() {
    assert_eq!(parse(&["--max-connections", "5"]).max_connections, 5);
}

#[test]
fn flag_max_packet_size() {
    assert_eq!(parse(&["--max-packet-size", "1024"]).max_packet_size, 1024);
    assert!(refused(&["--max-packet-size", "1"]).contains("at least 2"));
}

#[test]
fn flag_max_inflight() {
    assert_eq!(parse(&["--max-inflight", "1"]).max_inflight, 1);
}

#[test]
fn flag_max_queued() {
    assert_eq!(parse(&["--max-queued", "7"]).max_queued, 7);
    assert!(refused(&["--max-queued", "lots"]).contains("--max-queued"));
}

#[test]
fn flag_max_queued_bytes() {
    assert_eq!(
        parse(&[]).max_queued_bytes,
        0,
        "no byte limit, as mosquitto"
    );
    assert_eq!(
        parse(&["--max-queued-bytes", "1048576"]).max_queued_bytes,
        1_048_576
    );
    assert!(refused(&["--max-queued-bytes", "1MB"]).contains("--max-queued-bytes"));
}

#[test]
fn flag_slow_client_timeout() {
    assert_eq!(
        parse(&[]).slow_client_timeout,
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse(&["--slow-client-timeout", "3"]).slow_client_timeout,
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        parse(&["--slow-client-timeout", "0"]).slow_client_timeout,
        None,
        "0: never disconnected"
    );
    assert!(refused(&["--slow-client-timeout", "10s"]).contains("--slow-client-timeout"));
    let file =
        FileSettings::parse("slow-client-timeout = 4\n", Path::new("test.toml")).expect("file key");
    let c = Config::resolve(Flags::default(), file).expect("consistent");
    assert_eq!(c.slow_client_timeout, Some(Duration::from_secs(4)));
}

#[test]
fn queue_limits_take_mosquitto_conf_names_in_the_file() {
    let file = FileSettings::parse(
        "max_queued_messages = 5\nmax_queued_bytes = 4096\n",
        Path::new("test.toml"),
    )
    .expect("mosquitto's names");
    let c = Config::resolve(Flags::default(), file).expect("consistent");
    assert_eq!((c.max_queued, c.max_queued_bytes), (5, 4096));
}

#[test]
fn flag_queue_qos0() {
    assert!(parse(&["--queue-qos0"]).queue_qos0);
}

#[test]
fn flag_sys_interval() {
    assert_eq!(
        parse(&["--sys-interval", "2"]).sys_interval,
        Some(Duration::from_secs(2))
    );
    assert_eq!(parse(&["--sys-interval", "0"]).sys_interval, None);
}

#[test]
fn flag_connect_timeout() {
    assert_eq!(
        parse(&["--connect-timeout", "3"]).connect_timeout,
        Duration::from_secs(3)
    );
}

#[test]
fn flag_autosave_interval() {
    assert_eq!(parse(&["--autosave-interval", "0"]).autosave_interval, None);
}

#[test]
fn flag_persistent_client_expiration() {
    assert_eq!(
        parse(&[]).persistent_client_expiration,
        None,
        "never by default"
    );
    assert_eq!(
        parse(&["--persistent-client-expiration", "2d"]).persistent_client_expiration,
        Some(Duration::from_secs(2 * 86_400))
    );
    assert_eq!(
        parse(&["--persistent-client-expiration", "1s"]).persistent_client_expiration,
        Some(Duration::from_secs(1))
    );
    let e = refused(&["--persistent-client-expiration", "12"]);
    assert!(
        e.contains("--persistent-client-expiration") && e.contains("has no unit"),
        "{e}"
    );
}

#[test]
fn file_persistent_client_expiration() {
    let file = FileSettings::parse(
        "persistent-client-expiration = \"1w\"\n",
        Path::new("test.toml"),
    )
    .expect("valid TOML");
    let flags = Flags::try_parse_from(["broker"]).expect("valid");
    let c = Config::resolve(flags, file).expect("consistent");
    assert_eq!(
        c.persistent_client_expiration,
        Some(Duration::from_secs(7 * 86_400))
    );
    let file = FileSettings::parse(
        "persistent-client-expiration = \"forever\"\n",
        Path::new("test.toml"),
    )
    .expect("valid TOML");
    let flags = Flags::try_parse_from(["broker"]).expect("valid");
    let e = Config::resolve(flags, file)
        .expect_err("bad value")
        .to_string();
    assert!(
        e.contains("persistent-client-expiration") && e.contains("\"forever\""),
        "{e}"
    );
}

#[test]
fn flag_verbose() {
    assert!(parse(&["--verbose"]).verbose);
    assert!(parse(&["-v"]).verbose);
}

#[test]
fn unknown_flag_is_refused() {
    assert!(refused(&["--colour"]).contains("--colour"));
}

#[test]
fn file_settings_apply_and_flags_win() {
    let file = FileSettings::parse(
        "port = 1999\nmax-inflight = 5\nno-ssl = true\nsys-interval = 0\n",
        Path::new("test.toml"),
    )
    .expect("valid TOML");
    let flags = Flags::try_parse_from(["broker", "--port", "2000"]).expect("valid");
    let c = Config::resolve(flags, file).expect("consistent");
    assert_eq!(plain_port(&c), Some(2000), "the flag wins");
    assert_eq!(c.max_inflight, 5, "the file fills in");
    assert_eq!(tls_port(&c), None);
    assert_eq!(c.sys_interval, None);
}

#[test]
fn config_file_is_read_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, "max-queued = 3\n").expect("write");
    let c = parse(&["--config", path.to_str().expect("utf-8 path")]);
    assert_eq!(c.max_queued, 3);
}

#[test]
fn file_errors_name_the_file_and_key() {
    let err = FileSettings::parse("max-inflite = 5\n", Path::new("b.toml")).expect_err("typo");
    let text = err.to_string();
    assert!(
        text.contains("b.toml") && text.contains("max-inflite"),
        "{text}"
    );
    let missing = refused(&["--config", "/nonexistent/broker.toml"]);
    assert!(missing.contains("/nonexistent/broker.toml"), "{missing}");
}

/// Issue 14: the broker is open to the network only when asked, by flag or
/// by file.
#[test]
fn bind_opens_the_broker_by_flag_or_file() {
    let c = parse(&["--bind", "0.0.0.0"]);
    assert_eq!(binds(&c), [ip("0.0.0.0")]);
    assert!(!c.bind_is_default);
    let file = FileSettings::parse("bind = \"0.0.0.0\"", Path::new("b.toml")).expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert_eq!(binds(&c), [ip("0.0.0.0")]);
    assert!(!c.bind_is_default);
}

#[test]
fn no_plain_leaves_tls_alone() {
    let c = parse(&["--no-plain"]);
    assert_eq!(plain_port(&c), None);
    assert_eq!(tls_port(&c), Some(8883));
    // The plain port no longer clashes with the TLS one.
    let c = parse(&["--no-plain", "--port", "8883"]);
    assert_eq!(plain_port(&c), None);
    let file = FileSettings::parse("no-plain = true", Path::new("p.toml")).expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert_eq!(plain_port(&c), None);
}

#[test]
fn no_plain_without_tls_is_refused() {
    assert_eq!(
        refused(&["--no-plain", "--no-ssl"]),
        "--no-plain and --no-ssl together leave no listener: drop one of them (or add --ws-port)"
    );
}

#[test]
fn use_username_as_clientid_by_flag_or_file() {
    assert!(parse(&["--use-username-as-clientid"]).use_username_as_clientid);
    let file = FileSettings::parse("use-username-as-clientid = true", Path::new("u.toml"))
        .expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert!(c.use_username_as_clientid);
    // mosquitto.conf's spelling is taken too.
    let file = FileSettings::parse("use_username_as_clientid = true", Path::new("u.toml"))
        .expect("parses");
    assert!(file.use_username_as_clientid == Some(true));
}

#[test]
fn flag_durability() {
    assert_eq!(parse(&[]).durability, Durability::None, "none by default");
    assert_eq!(
        parse(&["--durability", "batched"]).durability,
        Durability::Batched
    );
    let err = refused(&["--durability", "always"]);
    assert!(err.contains("batched"), "{err}");
}

#[test]
fn file_durability() {
    let file =
        FileSettings::parse("durability = \"batched\"\n", Path::new("d.toml")).expect("valid TOML");
    let flags = Flags::try_parse_from(["broker"]).expect("valid");
    let c = Config::resolve(flags, file).expect("consistent");
    assert_eq!(c.durability, Durability::Batched);
    let err = FileSettings::parse("durability = \"fast\"\n", Path::new("d.toml"))
        .expect_err("unknown level");
    assert!(err.to_string().contains("d.toml"), "{err}");
}

#[test]
fn flag_ws_and_wss_ports() {
    let c = parse(&["--ws-port", "9001", "--wss-port", "0", "--bind", "::"]);
    let ws = first(&c, ListenerTransport::WebSockets).expect("a ws listener");
    assert_eq!(
        (ws.port, ws.tls.is_some(), &ws.ws_path),
        (9001, false, &None)
    );
    let wss = first(&c, ListenerTransport::WebSocketsTls).expect("a wss listener");
    assert_eq!((wss.port, wss.tls.is_some()), (0, true));
    assert!(
        parse(&[])
            .listeners
            .iter()
            .all(|l| !l.transport.is_websockets())
    );
    assert!(refused(&["--ws-port", "1883"]).contains("--port and --ws-port are both 1883"));
    // --no-ssl drops the 8883 listener only: --wss-port still takes --cert.
    let c = parse(&[
        "--no-ssl",
        "--wss-port",
        "0",
        "--cert",
        "s.pem",
        "--key",
        "s.key",
    ]);
    assert_eq!(tls_port(&c), None);
    assert!(first(&c, ListenerTransport::WebSocketsTls).is_some());
}

const THREE_LISTENERS: &str = r#"
max-inflight = 7

[[listener]]
port = 1884

[[listener]]
port = 8884
bind = "0.0.0.0"
transport = "mqtt+tls"
cert = "s.pem"
key = "s.key"
cafile = "ca.pem"
require-certificate = true
identity-as-username = true

[[listener]]
port = 9001
bind = "::1"
transport = "websockets"
ws-path = "/mqtt"
"#;

#[test]
fn listener_sections_define_the_listeners() {
    let file = FileSettings::parse(THREE_LISTENERS, Path::new("l.toml")).expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert_eq!(c.max_inflight, 7);
    let summary: Vec<(String, u16, ListenerTransport)> = c
        .listeners
        .iter()
        .map(|l| (l.bind.to_string(), l.port, l.transport))
        .collect();
    assert_eq!(
        summary,
        [
            ("127.0.0.1".to_owned(), 1884, ListenerTransport::Mqtt),
            ("::1".to_owned(), 1884, ListenerTransport::Mqtt),
            ("0.0.0.0".to_owned(), 8884, ListenerTransport::MqttTls),
            ("::1".to_owned(), 9001, ListenerTransport::WebSockets),
        ]
    );
    assert!(!c.bind_is_default, "0.0.0.0 opens it");
    let t = c.listeners[2].tls.as_ref().expect("TLS settings");
    assert_eq!(
        t.cert_and_key,
        Some((PathBuf::from("s.pem"), PathBuf::from("s.key")))
    );
    assert!(t.require_certificate && t.identity_as_username);
    assert_eq!(c.listeners[3].ws_path.as_deref(), Some("/mqtt"));
}

/// Each contradiction in a section is one line naming the file, the line
/// of the section and the keys.
#[test]
fn listener_section_errors_name_file_line_and_key() {
    let cases = [
        (
            "[[listener]]\nport = 1\ntransport = \"mqtt\"\ncert = \"s.pem\"\nkey = \"k\"\n",
            "l.toml line 1: [[listener]] port 1: cert, key, cafile",
        ),
        (
            "\n\n[[listener]]\nport = 2\ntransport = \"mqtt+tls\"\ncert = \"s.pem\"\n",
            "l.toml line 3: [[listener]] port 2: cert needs key",
        ),
        (
            "[[listener]]\nport = 3\ntransport = \"websockets+tls\"\nrequire-certificate = true\n",
            "require-certificate needs cafile",
        ),
        (
            "[[listener]]\nport = 4\nws-path = \"/mqtt\"\n",
            "ws-path needs a websockets transport",
        ),
        (
            "[[listener]]\nport = 5\ntransport = \"websockets\"\nws-path = \"mqtt\"\n",
            "must start with /",
        ),
        (
            "[[listener]]\nport = 6\n[[listener]]\nport = 6\n",
            "both listen on 127.0.0.1 port 6",
        ),
        (
            "[[listener]]\nport = 7\nbind = \"not a host\"\n",
            "neither an IP address nor a host name",
        ),
    ];
    for (text, expected) in cases {
        let file = FileSettings::parse(text, Path::new("l.toml")).expect("parses");
        let err = Config::resolve(Flags::default(), file)
            .expect_err(expected)
            .to_string();
        assert!(err.contains(expected), "{err:?} should say {expected:?}");
        assert!(!err.contains('\n'), "one line: {err:?}");
    }
    let err = FileSettings::parse(
        "[[listener]]\nport = 8\ntransport = \"quic\"\n",
        Path::new("l.toml"),
    )
    .expect_err("unknown transport")
    .to_string();
    assert!(
        err.contains("l.toml") && err.contains("line 3") && err.contains("websockets+tls"),
        "{err}"
    );
    // Sections and listener flags together are a contradiction.
    let file = FileSettings::parse("[[listener]]\nport = 9\n", Path::new("l.toml")).expect("ok");
    let flags = Flags::try_parse_from(["broker", "--port", "1"]).expect("valid");
    let err = Config::resolve(flags, file).expect_err("both").to_string();
    assert!(
        err.contains("[[listener]] sections define the listeners"),
        "{err}"
    );
}

#[test]
fn file_bridge_tables_become_bridges() {
    let text = "[[bridge]]\nconnection = \"b1\"\naddress = \"127.0.0.1:1884\"\ntopic = [\"# both 1 l/ r/\"]\n\n[[bridge]]\nconnection = \"b2\"\naddress = \"h2\"\ntopic = \"x/# in 2\"\n";
    let file = FileSettings::parse(text, Path::new("test.toml")).expect("file");
    let c = Config::resolve(Flags::default(), file).expect("consistent");
    let names: Vec<&str> = c.bridges.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["b1", "b2"]);
    assert!(Config::default().bridges.is_empty());
}

#[test]
fn file_bridge_errors_name_the_table_and_directive() {
    let resolve = |text: &str| {
        let file = FileSettings::parse(text, Path::new("test.toml")).expect("file");
        Config::resolve(Flags::default(), file)
            .expect_err(text)
            .to_string()
    };
    assert_eq!(
        resolve("[[bridge]]\nconnection = \"b1\"\ntopic = \"#\"\n"),
        "[[bridge]] number 1 in --config: bridge b1: no address: add `address HOST[:PORT]`"
    );
    assert_eq!(
        resolve(
            "[[bridge]]\nconnection = \"b1\"\naddress = \"h\"\ntopic = \"#\"\nkeepalive_interval = 1.5\n"
        ),
        "[[bridge]] number 1 in --config: keepalive_interval: give a string, a number, a boolean or an array of them"
    );
    let twice = "[[bridge]]\nconnection = \"b\"\naddress = \"h\"\ntopic = \"#\"\n";
    assert!(resolve(&format!("{twice}{twice}")).contains("both named \"b\""));
}

#[test]
fn file_allow_anonymous_false_is_obeyed_without_a_password_file() {
    // Issue 16: mosquitto 2.0 refuses every client when a file says
    // allow_anonymous false and names no password file; the TOML key (and
    // the mosquitto.conf read into it) now means the same.
    let file = FileSettings::parse("allow-anonymous = false\n", Path::new("b.toml")).unwrap();
    let c = Config::resolve(Flags::default(), file.clone()).unwrap();
    assert!(!c.allow_anonymous);
    let flags = Flags {
        allow_anonymous: true,
        ..Flags::default()
    };
    assert!(
        Config::resolve(flags, file).unwrap().allow_anonymous,
        "the flag wins"
    );
    let file = FileSettings::parse("allow-anonymous = true\n", Path::new("b.toml")).unwrap();
    assert!(
        Config::resolve(Flags::default(), file)
            .unwrap()
            .allow_anonymous
    );
}
