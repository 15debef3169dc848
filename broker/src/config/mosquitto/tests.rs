//! Each directive's translation, each wrong value's `file:line` error, the
//! warnings and notes, and mosquitto 2.0's defaults for listeners,
//! anonymous clients and persistence.

use std::path::Path;

use toml::Value;

use super::*;
use crate::config::tests::{plain_port, tls, tls_port};
use crate::config::{Config, FileSettings, Flags};

fn tr(text: &str) -> Translation {
    translate(text, Path::new("mosquitto.conf"))
        .unwrap_or_else(|e| panic!("{text:?} did not translate: {e}"))
}

fn err(text: &str) -> String {
    translate(text, Path::new("mosquitto.conf"))
        .expect_err("a wrong value")
        .to_string()
}

/// The settings as TOML text, sorted by key (`toml::Table` is ordered).
fn toml_of(t: &Translation) -> String {
    toml::to_string(&t.settings).expect("a table serializes")
}

/// The config the broker runs with for `text`, flags `args` on top.
fn config(text: &str, args: &[&str]) -> Config {
    let t = tr(text);
    let file = FileSettings::from_mosquitto(&t, Path::new("mosquitto.conf"))
        .unwrap_or_else(|e| panic!("settings refused: {e}"));
    let flags = <Flags as clap::Parser>::try_parse_from(
        std::iter::once("broker").chain(args.iter().copied()),
    )
    .expect("flags parse");
    Config::resolve(flags, file).expect("settings check")
}

fn get<'a>(t: &'a Translation, key: &str) -> Option<&'a Value> {
    t.settings.get(key)
}

#[test]
fn an_empty_file_is_mosquittos_local_only_mode() {
    // No listener: plain MQTT on localhost:1883, anonymous clients let in,
    // no TLS listener, nothing saved.
    let t = tr("# nothing\n\n");
    assert_eq!(toml_of(&t), "allow-anonymous = true\nno-ssl = true\n");
    let c = config("", &[]);
    assert_eq!(plain_port(&c), Some(1883));
    assert!(c.bind_is_default && tls_port(&c).is_none() && c.allow_anonymous);
    assert_eq!(c.data_dir, None);
}

#[test]
fn a_plain_listener_refuses_anonymous_clients_by_default() {
    let t = tr("listener 1884 127.0.0.1\n");
    assert_eq!(
        toml_of(&t),
        "allow-anonymous = false\nbind = \"127.0.0.1\"\nno-ssl = true\nport = 1884\n"
    );
    let c = config("listener 1884 127.0.0.1\n", &[]);
    assert!(
        !c.allow_anonymous,
        "mosquitto 2.0 refuses them, password file or not"
    );
    assert_eq!(plain_port(&c), Some(1884));
    assert!(tls_port(&c).is_none());
    assert!(config("listener 1884\nallow_anonymous true\n", &[]).allow_anonymous);
}

#[test]
fn a_listener_without_an_address_listens_everywhere() {
    let c = config("listener 1884\n", &[]);
    assert!(c.listeners.iter().all(|l| l.bind.to_string() == "::"));
    assert!(!c.bind_is_default);
}

#[test]
fn port_and_bind_address_make_the_default_listener() {
    let t = tr("bind_address 127.0.0.1\nport 1999\n");
    assert_eq!(get(&t, "port"), Some(&Value::Integer(1999)));
    assert_eq!(get(&t, "bind"), Some(&Value::from("127.0.0.1")));
    // bind_address alone: the default port.
    let t = tr("bind_address localhost\n");
    assert_eq!(get(&t, "port"), Some(&Value::Integer(1883)));
    assert_eq!(get(&t, "bind"), Some(&Value::from("localhost")));
    assert_eq!(get(&t, "allow-anonymous"), Some(&Value::Boolean(false)));
}

#[test]
fn flags_win_over_the_file() {
    let c = config(
        "listener 1884 127.0.0.1\nmax_inflight_messages 5\n",
        &["--port", "0", "--max-inflight", "7"],
    );
    assert_eq!(plain_port(&c), Some(0));
    assert_eq!(c.max_inflight, 7);
}

#[test]
fn plain_and_tls_listeners_on_one_address_fill_the_two_fixed_listeners() {
    let text = "\
listener 1884 127.0.0.1
listener 8884 127.0.0.1
certfile /tls/server.pem
keyfile /tls/server.key
cafile /tls/ca.pem
require_certificate true
use_identity_as_username true
";
    let t = tr(text);
    assert_eq!(
        toml_of(&t),
        "allow-anonymous = false\nbind = \"127.0.0.1\"\ncafile = \"/tls/ca.pem\"\ncert = \"/tls/server.pem\"\nidentity-as-username = true\nkey = \"/tls/server.key\"\nport = 1884\nrequire-certificate = true\ntls-port = 8884\n"
    );
    assert!(t.listeners.is_empty());
    let c = config(text, &[]);
    assert_eq!(tls_port(&c), Some(8884));
    let tls = tls(&c);
    assert!(tls.require_certificate && tls.identity_as_username);
    assert_eq!(
        tls.cert_and_key,
        Some(("/tls/server.pem".into(), "/tls/server.key".into()))
    );
}

#[test]
fn a_tls_listener_alone_turns_plain_off() {
    let t = tr("listener 8884\ncertfile c.pem\nkeyfile k.pem\n");
    assert_eq!(get(&t, "no-plain"), Some(&Value::Boolean(true)));
    assert_eq!(get(&t, "tls-port"), Some(&Value::Integer(8884)));
    assert_eq!(get(&t, "no-ssl"), None);
}

#[test]
fn listeners_that_do_not_fit_the_flags_become_listener_tables() {
    let text = "\
listener 1883
listener 8883 ::1
certfile c.pem
keyfile k.pem
listener 9001
protocol websockets
listener 9443 127.0.0.1
protocol websockets
certfile c.pem
keyfile k.pem
listener 1884 127.0.0.1
";
    let t = tr(text);
    // Two plain listeners, on three addresses: every one is a section.
    for key in ["port", "tls-port", "ws-port", "wss-port", "bind", "no-ssl"] {
        assert_eq!(get(&t, key), None, "{key}");
    }
    let tables: toml::Table = toml::from_str(
        r#"
[[listener]]
port = 1883
bind = "::"
transport = "mqtt"

[[listener]]
port = 8883
bind = "::1"
transport = "mqtt+tls"
cert = "c.pem"
key = "k.pem"

[[listener]]
port = 9001
bind = "::"
transport = "websockets"

[[listener]]
port = 9443
bind = "127.0.0.1"
transport = "websockets+tls"
cert = "c.pem"
key = "k.pem"

[[listener]]
port = 1884
bind = "127.0.0.1"
transport = "mqtt"
"#,
    )
    .unwrap();
    assert_eq!(get(&t, "listener"), tables.get("listener"));
    let lines: Vec<usize> = t.listeners.iter().map(|o| o.line).collect();
    assert_eq!(lines, [1, 2, 5, 7, 11]);
    let c = config(text, &[]);
    let served: Vec<(String, u16)> = c
        .listeners
        .iter()
        .map(|l| (l.bind.to_string(), l.port))
        .collect();
    assert_eq!(
        served,
        [
            ("::".to_owned(), 1883),
            ("::1".to_owned(), 8883),
            ("::".to_owned(), 9001),
            ("127.0.0.1".to_owned(), 9443),
            ("127.0.0.1".to_owned(), 1884)
        ]
    );
    // The listener flags would contradict the sections, as with TOML.
    let file = FileSettings::from_mosquitto(&t, Path::new("mosquitto.conf")).expect("settings");
    let flags = <Flags as clap::Parser>::try_parse_from(["broker", "--port", "1"]).expect("flags");
    assert!(Config::resolve(flags, file).is_err());
}

#[test]
fn one_listener_of_each_transport_on_one_address_fits_the_flags() {
    let t = tr("listener 1884 ::1
listener 9001 ::1
protocol websockets
");
    assert_eq!(get(&t, "port"), Some(&Value::Integer(1884)));
    assert_eq!(get(&t, "ws-port"), Some(&Value::Integer(9001)));
    assert_eq!(get(&t, "bind"), Some(&Value::from("::1")));
    assert_eq!(get(&t, "listener"), None);
    // So a flag still wins over the file.
    let c = config(
        "listener 1884 ::1
listener 9001 ::1
protocol websockets
",
        &["--ws-port", "9002"],
    );
    let ws: Vec<u16> = c
        .listeners
        .iter()
        .filter(|l| l.transport.is_websockets())
        .map(|l| l.port)
        .collect();
    assert_eq!(ws, [9002]);
}

#[test]
fn acl_file_is_the_acl_file_setting() {
    let t = tr("listener 1884\n\nacl_file /etc/mosquitto/acl\n");
    assert_eq!(t.sources["acl-file"].origin.line, 3);
    let c = config("listener 1884\n\nacl_file /etc/mosquitto/acl\n", &[]);
    assert_eq!(c.acl_file, Some("/etc/mosquitto/acl".into()));
}

#[test]
fn a_unix_socket_listener_is_skipped_with_a_warning() {
    let t = tr("listener 1884 127.0.0.1\nlistener 0 /run/mqtt.sock\ncertfile x\n");
    assert_eq!(t.warnings.len(), 1);
    // Port 0 with a name is one too, as mosquitto reads it.
    assert!(
        tr("listener 0 mqtt.sock\n").warnings[0]
            .message
            .contains("unix socket")
    );
    // Port 0 alone or with an IP address picks a free port (mosquitto
    // refuses the first and makes a unix socket named "127.0.0.1" of the
    // second, which no one means).
    assert_eq!(get(&tr("listener 0\n"), "port"), Some(&Value::Integer(0)));
    let ip = tr("listener 0 127.0.0.1\n");
    assert!(ip.warnings.is_empty());
    assert_eq!(get(&ip, "port"), Some(&Value::Integer(0)));
    assert_eq!(t.warnings[0].origin.line, 2);
    assert!(t.warnings[0].message.contains("unix socket"));
    // Its certfile went with it (no keyfile error).
    assert_eq!(get(&t, "no-ssl"), Some(&Value::Boolean(true)));
}

#[test]
fn listener_tls_mistakes_name_the_listener_line() {
    assert_eq!(
        err("listener 1883\nlistener 8883\ncertfile c.pem\n"),
        "mosquitto.conf:2: this listener has certfile but no keyfile: give both to turn TLS on"
    );
    assert!(
        err("listener 8883\nkeyfile k.pem\n")
            .starts_with("mosquitto.conf:1: this listener has keyfile but no certfile")
    );
    // mosquitto starts with these, ignoring them: a warning.
    let t = tr("listener 1883\ncafile ca.pem\nrequire_certificate true\n");
    assert_eq!(t.warnings.len(), 1);
    assert!(
        t.warnings[0]
            .to_string()
            .starts_with("mosquitto.conf:1: this listener has no certfile and keyfile, so no TLS")
    );
    assert_eq!(get(&t, "cafile"), None);
    assert!(
        err("listener 8883\ncertfile c\nkeyfile k\nrequire_certificate true\n")
            .contains("require_certificate true but no cafile")
    );
    assert!(
        err("listener 8883\ncertfile c\nkeyfile k\ncafile ca\nuse_identity_as_username true\n")
            .contains("without require_certificate true")
    );
}

#[test]
fn wrong_values_are_errors_with_file_and_line() {
    let cases = [
        ("port abc", "port \"abc\" is not a number from 0 to 65535"),
        (
            "port 70000",
            "port \"70000\" is not a number from 0 to 65535",
        ),
        (
            "listener x",
            "listener \"x\" is not a number from 0 to 65535",
        ),
        (
            "listener 1 a b",
            "listener \"1 a b\" has more than a port and an address",
        ),
        (
            "listener 1 bad_host!",
            "listener \"bad_host!\" is not an IP address or host name",
        ),
        (
            "bind_address -x",
            "bind_address \"-x\" is not an IP address or host name",
        ),
        (
            "protocol http",
            "protocol \"http\" is neither mqtt nor websockets",
        ),
        (
            "allow_anonymous yes",
            "allow_anonymous \"yes\" is not true or false",
        ),
        ("persistence 1", "persistence \"1\" is not true or false"),
        (
            "require_certificate on",
            "require_certificate \"on\" is not true or false",
        ),
        (
            "use_identity_as_username x",
            "use_identity_as_username \"x\" is not true or false",
        ),
        (
            "use_username_as_clientid x",
            "use_username_as_clientid \"x\" is not true or false",
        ),
        (
            "queue_qos0_messages x",
            "queue_qos0_messages \"x\" is not true or false",
        ),
        (
            "per_listener_settings x",
            "per_listener_settings \"x\" is not true or false",
        ),
        (
            "max_connections many",
            "max_connections \"many\" is not a whole number, -1 for no limit",
        ),
        (
            "max_inflight_messages 70000",
            "max_inflight_messages \"70000\" is not a number from 0 to 65535, 0 for no limit",
        ),
        (
            "max_queued_messages -1",
            "max_queued_messages \"-1\" is not a whole number, 0 for no limit",
        ),
        (
            "max_queued_bytes x",
            "max_queued_bytes \"x\" is not a whole number of bytes, 0 for no limit",
        ),
        (
            "max_packet_size x",
            "max_packet_size \"x\" is not a number of bytes, 0 for no limit",
        ),
        ("max_packet_size 10", "max_packet_size 10 is below 20 bytes"),
        (
            "autosave_interval soon",
            "autosave_interval \"soon\" is not a whole number of seconds",
        ),
        (
            "sys_interval -5",
            "sys_interval \"-5\" is not a whole number of seconds, 0 for no $SYS",
        ),
        (
            "persistent_client_expiration 3x",
            "persistent_client_expiration \"3x\" has no unit",
        ),
        ("log_type loud", "log_type \"loud\" is not one of debug"),
        ("password_file", "password_file needs a file or directory"),
        ("connection", "connection needs a name"),
        (
            "address 10.0.0.1:1883",
            "address is a bridge setting: put it after a `connection NAME` line",
        ),
    ];
    for (line, message) in cases {
        let e = err(&format!("# comment\n{line}\n"));
        assert!(
            e.starts_with(&format!("mosquitto.conf:2: {message}")),
            "{line:?} gave {e:?}"
        );
    }
}

#[test]
fn global_directives_map_to_their_settings() {
    let text = "\
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
allow_anonymous true
use_username_as_clientid true
autosave_interval 0
persistent_client_expiration 2d
max_inflight_messages 20
max_queued_messages 0
max_queued_bytes 1048576
max_packet_size 0
max_connections -1
queue_qos0_messages true
sys_interval 30
per_listener_settings false
log_type error
log_type debug
";
    let t = tr(text);
    assert_eq!(
        toml_of(&t),
        "\
acl-file = \"/etc/mosquitto/acl\"
allow-anonymous = true
autosave-interval = 0
max-connections = 0
max-inflight = 20
max-queued = 0
max-queued-bytes = 1048576
no-ssl = true
password-file = \"/etc/mosquitto/passwd\"
persistent-client-expiration = \"2d\"
queue-qos0 = true
sys-interval = 30
use-username-as-clientid = true
verbose = true
"
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        tr("max_packet_size 4096\nmax_connections 50\n")
            .settings
            .get("max-packet-size"),
        Some(&Value::Integer(4096))
    );
    assert_eq!(
        get(&tr("max_connections 50\n"), "max-connections"),
        Some(&Value::Integer(50))
    );
}

#[test]
fn settings_the_broker_has_reach_the_config() {
    // Everything but acl_file (not a setting of this broker yet).
    let c = config(
        "listener 1884 127.0.0.1\npassword_file pw\nallow_anonymous true\nuse_username_as_clientid true\nautosave_interval 5\npersistent_client_expiration 1h\nmax_inflight_messages 20\nmax_queued_messages 50\nmax_queued_bytes 4096\nmax_packet_size 1000\nmax_connections 9\nqueue_qos0_messages true\nsys_interval 0\nlog_type all\npersistence true\npersistence_location /var/lib/mqtt/\n",
        &[],
    );
    assert_eq!(c.password_file.as_deref(), Some(Path::new("pw")));
    assert!(c.allow_anonymous && c.use_username_as_clientid && c.queue_qos0 && c.verbose);
    assert_eq!(c.autosave_interval, Some(std::time::Duration::from_secs(5)));
    assert_eq!(
        c.persistent_client_expiration,
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(
        (c.max_inflight, c.max_queued, c.max_queued_bytes),
        (20, 50, 4096)
    );
    assert_eq!((c.max_packet_size, c.max_connections), (1000, 9));
    assert_eq!(c.sys_interval, None);
    assert_eq!(c.data_dir.as_deref(), Some(Path::new("/var/lib/mqtt/")));
}

#[test]
fn persistence_false_keeps_nothing_even_with_a_location() {
    let t = tr("persistence_location /var/lib/mqtt/\n");
    assert_eq!(get(&t, "data-dir"), None);
    assert_eq!(t.notes.len(), 1);
    assert!(t.notes[0].message.contains("persistence is false"));
    let t = tr("persistence false\npersistence_location /var/lib/mqtt/\n");
    assert_eq!(get(&t, "data-dir"), None);
    // persistence true without a location: mosquitto's working directory.
    assert_eq!(
        get(&tr("persistence true\n"), "data-dir"),
        Some(&Value::from("."))
    );
}

#[test]
fn unknown_and_unsupported_directives_are_one_warning_each() {
    let t = tr("\
retain_available false
listener 1884
mount_point a/
socket_domain ipv4
per_listener_settings true
frobnicate 3
");
    let got: Vec<(usize, &str)> = t
        .warnings
        .iter()
        .map(|w| (w.origin.line, w.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                "retain_available is unknown or not supported by this broker: ignored"
            ),
            (3, "mount_point is not supported: this listener ignores it"),
            (
                4,
                "socket_domain is not supported: this listener ignores it"
            ),
            (
                5,
                "per_listener_settings true is not supported: password_file, acl_file and allow_anonymous apply to every listener"
            ),
            (
                6,
                "frobnicate is unknown or not supported by this broker: ignored"
            ),
        ]
    );
    assert_eq!(
        t.warnings[0].to_string(),
        "mosquitto.conf:1: retain_available is unknown or not supported by this broker: ignored"
    );
}

#[test]
fn ignored_directives_get_a_note() {
    let t = tr(
        "user mosquitto\nlog_dest stderr\nlog_timestamp true\nconnection_messages true\nlog_type information\nlog_type none\n",
    );
    let lines: Vec<usize> = t.notes.iter().map(|n| n.origin.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5]);
    assert!(t.notes[0].message.contains("drops no privileges"));
    assert!(t.warnings.is_empty());
    assert_eq!(get(&t, "verbose"), None);
}

#[test]
fn bridge_directives_are_kept_block_by_block() {
    let t = tr("\
connection east
address 10.0.0.1:1883
topic sensors/# out 1 local/ remote/
try_private false
bridge_cafile /tls/ca.pem
sys_interval 5
connection west
remote_username bob
");
    assert_eq!(t.bridges.len(), 2);
    let east = &t.bridges[0];
    assert_eq!((east.name.as_str(), east.origin.line), ("east", 1));
    let got: Vec<(&str, &str, usize)> = east
        .directives
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str(), d.origin.line))
        .collect();
    assert_eq!(
        got,
        [
            ("address", "10.0.0.1:1883", 2),
            ("topic", "sensors/# out 1 local/ remote/", 3),
            ("try_private", "false", 4),
            ("bridge_cafile", "/tls/ca.pem", 5),
        ]
    );
    // A broker setting inside a block is still the broker's.
    assert_eq!(get(&t, "sys-interval"), Some(&Value::Integer(5)));
    assert_eq!(t.bridges[1].directives[0].name, "remote_username");
}

#[test]
fn include_dir_reads_conf_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let inc = dir.path().join("conf.d");
    std::fs::create_dir(&inc).unwrap();
    std::fs::write(inc.join("b.conf"), "sys_interval 2\nbogus 1\n").unwrap();
    std::fs::write(
        inc.join("A.conf"),
        "sys_interval 1\nmax_queued_messages 7\n",
    )
    .unwrap();
    std::fs::write(inc.join("skipped.txt"), "sys_interval 99\n").unwrap();
    std::fs::write(inc.join("c.conf"), "port nope\n").unwrap();
    let main = dir.path().join("mosquitto.conf");
    std::fs::write(&main, format!("include_dir {}\n", inc.display())).unwrap();
    // c.conf's error names c.conf and its line.
    let e = translate_file(&main)
        .expect_err("c.conf is wrong")
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:1: port \"nope\" is not a number from 0 to 65535",
            inc.join("c.conf").display()
        )
    );
    std::fs::remove_file(inc.join("c.conf")).unwrap();
    let t = translate_file(&main).unwrap();
    // A.conf before b.conf: b's value wins; the .txt is not read.
    assert_eq!(get(&t, "sys-interval"), Some(&Value::Integer(2)));
    assert_eq!(get(&t, "max-queued"), Some(&Value::Integer(7)));
    assert_eq!(t.warnings.len(), 1);
    assert_eq!(t.warnings[0].origin.path, inc.join("b.conf"));
    assert_eq!(t.warnings[0].origin.line, 2);
    // include_dir in an included file is skipped, as mosquitto skips it
    // (which also ends a directory including itself), with a warning.
    std::fs::write(
        inc.join("self.conf"),
        format!("include_dir {}\n", inc.display()),
    )
    .unwrap();
    let t = translate_file(&main).unwrap();
    assert_eq!(t.warnings.len(), 2);
    assert_eq!(t.warnings[1].origin.path, inc.join("self.conf"));
    assert!(
        t.warnings[1]
            .message
            .starts_with("include_dir is read only in the main file")
    );
    assert!(
        err("include_dir /no/such/dir\n")
            .starts_with("mosquitto.conf:1: include_dir /no/such/dir:")
    );
}

#[test]
fn a_mosquitto_conf_given_as_toml_gets_a_hint() {
    assert!(looks_like_mosquitto_conf(
        "# c\nlistener 1883\nallow_anonymous true\n"
    ));
    assert!(!looks_like_mosquitto_conf("port = 1883\n"));
    assert!(!looks_like_mosquitto_conf("[table]\n"));
    assert!(!looks_like_mosquitto_conf("# only a comment\n"));
    let e = FileSettings::parse("listener 1883\n", Path::new("m.conf"))
        .expect_err("not TOML")
        .to_string();
    assert!(
        e.ends_with("this looks like a mosquitto.conf: use -c (--config-file) to read it"),
        "{e}"
    );
    let e = FileSettings::parse("port = \n", Path::new("b.toml"))
        .expect_err("not TOML")
        .to_string();
    assert!(!e.contains("mosquitto"), "{e}");
}

#[test]
fn dash_c_reads_the_file_and_keeps_its_notices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mosquitto.conf");
    std::fs::write(&path, "listener 1884 127.0.0.1\nuser nobody\nretain_available false\nconnection east\naddress h:1\ntopic # both 1\nround_robin true\n").unwrap();
    let p = path.to_str().unwrap();
    for flag in ["-c", "--config-file"] {
        let c = Config::from_args(["broker", flag, p]).expect("reads");
        assert_eq!(plain_port(&c), Some(1884));
        let bridges: Vec<&str> = c.bridges.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(bridges, ["east"]);
        let lines: Vec<String> = c
            .file_notices
            .iter()
            .map(|n| match n {
                crate::config::FileNotice::Warning(d) => format!("warn {d}"),
                crate::config::FileNotice::Note(d) => format!("note {d}"),
            })
            .collect();
        assert_eq!(
            lines,
            [
                format!(
                    "warn {p}:3: retain_available is unknown or not supported by this broker: ignored"
                ),
                format!(
                    "note {p}:2: user is ignored: the broker runs as the user that starts it and drops no privileges"
                ),
                format!(
                    "note {p}:7: round_robin: bridges start at once and try their addresses in turn"
                ),
            ]
        );
    }
    let e = Config::from_args(["broker", "-c", p, "--config", p])
        .expect_err("one file at a time")
        .to_string();
    assert!(e.contains("cannot be used with"), "{e}");
    let e = Config::from_args(["broker", "-c", "/no/such.conf"])
        .expect_err("missing")
        .to_string();
    assert!(e.starts_with("reading config file /no/such.conf"), "{e}");
}

#[test]
fn listener_settings_before_any_listener_line_are_a_warning() {
    // mosquitto gives them to the default listener, which only `port` or
    // `bind_address` opens: this TLS setting does not reach 8883.
    let t = tr("certfile c.pem\nkeyfile k.pem\nlistener 8883\n");
    assert_eq!(get(&t, "port"), Some(&Value::Integer(8883)));
    assert_eq!(get(&t, "cert"), None);
    assert_eq!(t.warnings.len(), 1);
    assert_eq!(t.warnings[0].origin.line, 1);
    assert!(
        t.warnings[0]
            .message
            .contains("move it below its listener line")
    );
    // With `port`, they are the default listener's: no warning.
    let t = tr("port 8883\ncertfile c.pem\nkeyfile k.pem\n");
    assert!(t.warnings.is_empty());
    assert_eq!(get(&t, "tls-port"), Some(&Value::Integer(8883)));
}

#[test]
fn a_value_the_settings_refuse_is_reported_at_its_line() {
    // The translator checks values as mosquitto reads them; should one
    // still not fit the settings, the error names its line.
    let mut t = tr("# limits
max_inflight_messages 5
");
    t.settings
        .insert("max-inflight".into(), Value::from("five"));
    let e = FileSettings::from_mosquitto(&t, Path::new("mosquitto.conf"))
        .expect_err("not a number")
        .to_string();
    assert!(
        e.starts_with("mosquitto.conf:2: max_inflight_messages gives max-inflight = \"five\", which this broker cannot take: "),
        "{e}"
    );
}

#[test]
fn include_dir_orders_each_letters_upper_case_first() {
    // mosquitto 2.0.11 loads A.conf, a.conf, B.conf, b.conf, c.conf (seen
    // in its "Loading config file" log lines); byte order would read B.conf
    // before a.conf.
    let dir = tempfile::tempdir().unwrap();
    for (name, secs) in [("b", 4), ("B", 3), ("a", 2), ("A", 1)] {
        std::fs::write(
            dir.path().join(format!("{name}.conf")),
            format!("sys_interval {secs}\nmax_queued_messages {secs}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("b.conf"), "max_queued_messages 4\n").unwrap();
    let t = tr(&format!("include_dir {}\n", dir.path().display()));
    // B.conf is the last to set sys_interval, b.conf max_queued_messages.
    assert_eq!(get(&t, "sys-interval"), Some(&Value::Integer(3)));
    assert_eq!(get(&t, "max-queued"), Some(&Value::Integer(4)));
    assert_eq!(
        t.sources["sys-interval"].origin.path,
        dir.path().join("B.conf")
    );
}
