//! One parse test per flag, plus the file and the contradictions.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
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

fn tls(c: &Config) -> &TlsSettings {
    c.tls.as_ref().expect("TLS listener on")
}

#[test]
fn defaults() {
    let c = parse(&[]);
    assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::LOCALHOST), "localhost only");
    assert!(c.bind_is_default);
    assert_eq!(c.port, Some(1883));
    assert!(!c.use_username_as_clientid);
    assert_eq!(tls(&c).port, 8883);
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
    assert_eq!(
        parse(&["--bind", "127.0.0.1"]).bind,
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    assert!(refused(&["--bind", "nowhere"]).contains("--bind"));
}

#[test]
fn flag_port() {
    assert_eq!(parse(&["--port", "0"]).port, Some(0));
    assert!(refused(&["--port", "70000"]).contains("--port"));
}

#[test]
fn flag_tls_port() {
    assert_eq!(tls(&parse(&["--tls-port", "8884"])).port, 8884);
    assert!(refused(&["--port", "9000", "--tls-port", "9000"]).contains("different ports"));
}

#[test]
fn flag_no_ssl() {
    assert_eq!(parse(&["--no-ssl"]).tls, None);
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
    assert_eq!(c.port, Some(2000), "the flag wins");
    assert_eq!(c.max_inflight, 5, "the file fills in");
    assert_eq!(c.tls, None);
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
    assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(!c.bind_is_default);
    let file = FileSettings::parse("bind = \"0.0.0.0\"", Path::new("b.toml")).expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(!c.bind_is_default);
}

#[test]
fn no_plain_leaves_tls_alone() {
    let c = parse(&["--no-plain"]);
    assert_eq!(c.port, None);
    assert_eq!(tls(&c).port, 8883);
    // The plain port no longer clashes with the TLS one.
    let c = parse(&["--no-plain", "--port", "8883"]);
    assert_eq!(c.port, None);
    let file = FileSettings::parse("no-plain = true", Path::new("p.toml")).expect("parses");
    let c = Config::resolve(Flags::default(), file).expect("valid");
    assert_eq!(c.port, None);
}

#[test]
fn no_plain_without_tls_is_refused() {
    assert_eq!(
        refused(&["--no-plain", "--no-ssl"]),
        "--no-plain and --no-ssl together leave no listener: drop one of them"
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
