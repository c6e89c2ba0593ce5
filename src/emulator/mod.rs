//! TEMPORARY compile stub (not committed).
use std::net::SocketAddr;
#[derive(Default)]
pub struct EmulatorConfig;
pub struct RunningEmulator;
impl RunningEmulator {
    pub async fn start(_c: EmulatorConfig, _a: SocketAddr) -> std::io::Result<RunningEmulator> {
        todo!()
    }
    pub fn url(&self) -> String {
        todo!()
    }
}
#[derive(clap::Args, Debug)]
pub struct EmulatorArgs {}
pub async fn serve_cli(_a: EmulatorArgs) -> std::io::Result<()> {
    todo!()
}
