//! `broker`: the reference MQTT 3.1.1 broker (work in progress, see issue 5).

fn main() -> std::process::ExitCode {
    eprintln!("broker: not implemented yet (issue 5)");
    std::process::ExitCode::FAILURE
}
