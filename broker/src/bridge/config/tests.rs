use super::*;

fn block(lines: &[(&str, &str)]) -> Result<BridgeConfig, BridgeConfigError> {
    let mut b = BridgeConfig::new("b1")?;
    for (d, v) in lines {
        b.apply(d, v)?;
    }
    b.finish()
}

#[test]
fn defaults_are_mosquittos() {
    let b = block(&[("address", "127.0.0.1"), ("topic", "#")]).expect("valid");
    assert_eq!(
        b.addresses,
        vec![Address {
            host: "127.0.0.1".into(),
            port: 1883
        }]
    );
    assert!(!b.clean_session && !b.local_clean());
    assert_eq!(b.keepalive, 60);
    assert!(b.try_private);
    assert_eq!(
        b.restart,
        RestartTimeout::Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(30)
        }
    );
    assert!(b.remote_client_id().ends_with(".b1"));
    assert!(b.local_client_id().starts_with("local."));
}

#[test]
fn directives_set_what_they_name() {
    let b = block(&[
        ("addresses", "a.example:1884 [::1]:1885 ::1"),
        ("topic", "# both 1 l/ r/"),
        ("remote_clientid", "far"),
        ("remote_username", "u"),
        ("remote_password", "p"),
        ("cleansession", "true"),
        ("keepalive_interval", "30"),
        ("restart_timeout", "2"),
        ("try_private", "false"),
        ("bridge_cafile", "/ca.pem"),
        ("bridge_insecure", "true"),
    ])
    .expect("valid");
    let hosts: Vec<String> = b.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(hosts, ["a.example:1884", "[::1]:1885", "[::1]:1883"]);
    assert_eq!(b.remote_client_id(), "far");
    assert_eq!(
        (b.remote_username.as_deref(), b.remote_password.as_deref()),
        (Some("u"), Some("p"))
    );
    assert!(b.clean_session && b.local_clean() && b.insecure && !b.try_private);
    assert_eq!(b.keepalive, 30);
    assert_eq!(b.restart, RestartTimeout::Constant(Duration::from_secs(2)));
}

#[test]
fn wrong_values_name_the_directive() {
    let err = |d: &str, v: &str| {
        let mut b = BridgeConfig::new("b1").expect("a name");
        b.apply(d, v).expect_err(v).to_string()
    };
    assert_eq!(
        err("address", "host:0"),
        "address: \"host:0\" is not HOST, HOST:PORT or [IPV6]:PORT with a port from 1 to 65535"
    );
    assert_eq!(
        err("cleansession", "yes"),
        "cleansession: \"yes\" is not true or false"
    );
    assert!(err("restart_timeout", "10 5").starts_with("restart_timeout: the cap"));
    assert!(err("restart_timeout", "0").starts_with("restart_timeout: give SECONDS"));
    assert!(err("keepalive_interval", "2").starts_with("keepalive_interval:"));
    assert!(err("topic", "a up").starts_with("topic \"a up\": direction"));
    assert_eq!(err("colour", "red"), "colour: not a bridge directive");
    assert!(err("bridge_protocol_version", "mqttv50").contains("mqttv311"));
}

#[test]
fn ignored_directives_say_so() {
    let mut b = BridgeConfig::new("b1").expect("a name");
    assert!(matches!(
        b.apply("round_robin", "true"),
        Ok(Applied::Ignored { .. })
    ));
    assert_eq!(b.apply("try_private", "true"), Ok(Applied::Set));
}

#[test]
fn a_block_needs_an_address_and_a_topic() {
    let no_address = block(&[("topic", "#")]).expect_err("incomplete");
    assert_eq!(
        no_address.to_string(),
        "bridge b1: no address: add `address HOST[:PORT]`"
    );
    let no_topic = block(&[("address", "h")]).expect_err("incomplete");
    assert!(no_topic.to_string().starts_with("bridge b1: no topic"));
    let half_tls = block(&[("address", "h"), ("topic", "#"), ("bridge_certfile", "/c")])
        .expect_err("incomplete");
    assert!(half_tls.to_string().contains("go together"));
}

#[test]
fn a_toml_table_uses_the_directive_names() {
    let table: toml::Table = toml::from_str(
        r##"
        connection = "b1"
        address = "127.0.0.1:1884"
        topic = ["# both 1 local/ remote/", "x/# in 2"]
        keepalive_interval = 20
        cleansession = true
        "##,
    )
    .expect("TOML");
    let b = BridgeConfig::from_toml(&table).expect("valid");
    assert_eq!(b.name, "b1");
    assert_eq!(b.topics.len(), 2);
    assert_eq!(b.keepalive, 20);
    assert!(b.clean_session);

    let nameless: toml::Table = toml::from_str("address = \"h\"").expect("TOML");
    let err = BridgeConfig::from_toml(&nameless).expect_err("no name");
    assert!(err.to_string().starts_with("connection: missing"));
}

#[test]
fn notifications_default_to_mosquittos_topic() {
    let mut b = BridgeConfig::new("b1").expect("a name");
    b.apply("remote_clientid", "far").expect("valid");
    assert_eq!(
        b.notification_topic().as_ref().map(|t| t.as_str()),
        Some("$SYS/broker/connection/far/state")
    );
    b.apply("notification_topic", "bridges/b1").expect("valid");
    assert_eq!(
        b.notification_topic().as_ref().map(|t| t.as_str()),
        Some("bridges/b1")
    );
    assert!(b.apply("notification_topic", "a/#").is_err());
    b.apply("notifications", "false").expect("valid");
    assert_eq!(b.notification_topic(), None);
}
